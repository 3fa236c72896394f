"""SECURITY-ANCHORS §13, CVE-2023-25809: a container in a user namespace without its
own cgroup namespace must not get a writable host cgroup hierarchy.

The config mounts cgroup at /sys/fs/cgroup *without* "ro"; the container's root
(uid 0, mapped to 100000) tries to create files and cgroups there.
"""

from __future__ import annotations

import glob
import os


def test_cgroupfs_not_writable_in_userns(rt, make_bundle, host) -> None:
    b = make_bundle()
    b.config["linux"]["namespaces"].append({"type": "user"})
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.config["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                               "options": ["nosuid", "noexec", "nodev", "relatime"]})
    tag = os.path.basename(b.path) + str(os.getpid())
    b.sh(f"touch /sys/fs/cgroup/x{tag} 2>&1; echo t=$?; mkdir /sys/fs/cgroup/y{tag} 2>&1; echo m=$?; "
         f"for d in /sys/fs/cgroup/*/; do mkdir $d/z{tag} 2>/dev/null && echo made $d; done; echo probed")
    before = set(glob.glob("/sys/fs/cgroup/*")) | set(glob.glob("/sys/fs/cgroup/*/*"))
    out = rt.run(b)
    after = set(glob.glob("/sys/fs/cgroup/*")) | set(glob.glob("/sys/fs/cgroup/*/*"))
    assert not [p for p in after - before if tag in p], sorted(after - before)
    if out.returncode == 0:
        assert "probed" in out.stdout
        assert "t=0" not in out.stdout and "m=0" not in out.stdout and "made" not in out.stdout, out.stdout
