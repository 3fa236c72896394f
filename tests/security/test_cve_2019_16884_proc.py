"""SECURITY-ANCHORS §6 and §7: a fake /proc (CVE-2019-16884, CVE-2019-19921) and a
symlinked /proc or /sys (CVE-2023-27561, CVE-2023-28642).

Only procfs may be mounted on /proc, nothing but a few regular files inside it,
and procfs/sysfs only on a real directory of the rootfs. The runtime refuses;
the planted files stay as they were and no host path is touched.
"""

from __future__ import annotations

import os

import pytest


def test_bind_over_proc_with_lsm_label_is_refused(rt, make_bundle, host) -> None:
    b = make_bundle()
    fake = os.path.join(b.path, "fakeproc")
    os.makedirs(os.path.join(fake, "self", "attr"))
    attr = os.path.join(fake, "self", "attr", "exec")
    with open(attr, "w") as f:
        f.write("")
    b.config["mounts"].append({"destination": "/proc", "type": "bind", "source": fake, "options": ["rbind"]})
    b.process["apparmorProfile"] = "pyrunc-test"
    b.sh("cat /proc/self/attr/current; echo ran")
    out = rt.run(b)
    assert out.returncode != 0, f"{rt.name} ran unconfined: {out.stdout}"
    assert open(attr).read() == ""


@pytest.mark.parametrize("mount", [
    {"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"},
    {"destination": "/proc/self", "type": "tmpfs", "source": "tmpfs"},
], ids=["proc-sys-tmpfs", "proc-self-tmpfs"])
def test_non_proc_mounts_inside_proc_are_refused(rt, make_bundle, host, mount: dict) -> None:
    if mount["destination"] == "/proc/sys":
        rt.oracle_gap("it accepts a tmpfs over /proc/sys (later runc refuses non-procfs mounts inside /proc)")
    b = make_bundle()
    b.config["mounts"].append(mount)
    b.sh("mount | grep -c tmpfs; echo ran")
    out = rt.run(b)
    assert out.returncode != 0, f"{rt.name} accepted {mount['destination']}: {out.stdout}"


@pytest.mark.parametrize("name", ["proc", "sys"])
def test_proc_or_sys_symlink_is_refused(rt, make_bundle, host, name: str) -> None:
    b = make_bundle()
    b.replace(name)
    os.makedirs(os.path.join(b.rootfs, f"bad-{name}"))
    os.symlink(f"/bad-{name}", os.path.join(b.rootfs, name))
    b.sh("echo ran")
    out = rt.run(b)
    assert out.returncode != 0, f"{rt.name} mounted {name} through a symlink"
    assert os.listdir(os.path.join(b.rootfs, f"bad-{name}")) == []


@pytest.mark.parametrize("name", ["proc", "sys"])
def test_escaping_proc_or_sys_symlink(rt, make_bundle, host, host_dir, name: str) -> None:
    target = os.path.join(host_dir, "x")
    os.makedirs(target)
    b = make_bundle()
    b.replace(name)
    os.symlink("../" * 12 + target.lstrip("/"), os.path.join(b.rootfs, name))
    b.sh("echo ran")
    out = rt.run(b)
    assert os.listdir(target) == []
    assert out.returncode != 0, f"{rt.name} mounted {name} through a symlink"
