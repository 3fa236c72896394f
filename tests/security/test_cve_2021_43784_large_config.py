"""SECURITY-ANCHORS §14, CVE-2021-43784: a config large enough to overflow a 16-bit
length in the parent/init channel must not drop a namespace.

The container either runs with exactly the namespaces it asked for (every
/proc/self/ns link differs from the host's) or fails cleanly.
"""

from __future__ import annotations

import os


def test_huge_fields_keep_every_namespace(rt, make_bundle, host) -> None:
    b = make_bundle()
    b.config["annotations"] = {"big": "a" * 70000}
    b.process["env"] += [f"BIG{i}=" + "e" * 70000 for i in range(2)]
    b.config["mounts"].append({"destination": "/big", "type": "tmpfs", "source": "s" * 4000})
    b.sh("for n in pid net ipc uts mnt; do echo $n $(readlink /proc/self/ns/$n); done")
    out = rt.run(b)
    if out.returncode != 0:
        return  # a clean failure is allowed; H1-H5 still hold
    inside = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    for name in ("pid", "net", "ipc", "uts", "mnt"):
        assert inside[name] != os.readlink(f"/proc/self/ns/{name}"), f"{rt.name} shares the host {name} ns"
