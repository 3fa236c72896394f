"""`pyrunc features` checked against what pyrunc does on this host (issue 12).

Not the tables again (tests/unit/pyrunc/test_features.py does that): each
advertised namespace, mount option, hook, seccomp action and flag,
capability and extension is used by a real container here, and each
feature reported as not enabled is refused by create with an error.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from testlib import PYRUNC

REPORT = json.loads(subprocess.run([PYRUNC, "features"], capture_output=True, check=True).stdout)
LINUX = REPORT["linux"]
PROC_NS = {"cgroup": "cgroup", "ipc": "ipc", "mount": "mnt", "network": "net", "pid": "pid", "time": "time",
           "user": "user", "uts": "uts"}


def _run(pyrunc, bundle, cid, *args: str):
    bundle.set_args(*args)
    return pyrunc("run", "-b", bundle.path, cid)


def _userns(bundle) -> None:
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]


def test_every_advertised_namespace_is_made(pyrunc, bundle, cid):
    types = LINUX["namespaces"]
    bundle.config["linux"]["namespaces"] = [{"type": t} for t in types]
    if "user" in types:
        _userns(bundle)
    names = [PROC_NS[t] for t in types]
    proc = _run(pyrunc, bundle, cid, "sh", "-c", " ".join(f"readlink /proc/self/ns/{n};" for n in names))
    assert proc.returncode == 0, proc.stderr
    inside = proc.stdout.decode().split()
    host = [os.readlink(f"/proc/self/ns/{n}") for n in names]
    assert len(inside) == len(host)
    assert [n for n, a, b in zip(names, inside, host) if a == b] == []


# options that need a bind source, or act on one, or are tested on their own below
NOT_ON_TMPFS = {"bind", "rbind", "remount", "tmpcopyup", "idmap", "ridmap", "unbindable", "runbindable"}


def test_every_advertised_mount_option_mounts(pyrunc, bundle, cid, tmp_path):
    """One tmpfs per option that applies to a new mount, the bind ones on a
    bind mount; the container sees each of them mounted."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    opts = REPORT["mountOptions"]
    mounts = []
    for i, opt in enumerate(o for o in opts if o not in NOT_ON_TMPFS):
        mounts.append({"destination": f"/m/t{i}", "type": "tmpfs", "source": "tmpfs", "options": [opt]})
    for opt in ("bind", "rbind", "remount", "unbindable", "runbindable"):
        if opt in opts:
            extra = [opt] if opt in ("bind", "rbind") else ["bind", opt]
            mounts.append({"destination": f"/m/{opt}", "type": "bind", "source": str(src), "options": extra})
    bundle.config["mounts"] += mounts
    checks = " && ".join(f"grep -q ' {m['destination']} ' /proc/self/mounts" for m in mounts)
    proc = _run(pyrunc, bundle, cid, "sh", "-c", checks + " && echo all")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == "all"


@pytest.mark.parametrize("opt,probe,expect", [
    ("ro", "touch /m/x/f 2>/dev/null && echo rw || echo ro", "ro"),
    ("noexec", "cp /bin/busybox /m/x/b && /m/x/b true 2>/dev/null && echo exec || echo noexec", "noexec"),
    ("rro", "touch /m/x/f 2>/dev/null && echo rw || echo ro", "ro"),
])
def test_mount_options_take_effect(pyrunc, bundle, cid, opt, probe, expect):
    bundle.config["mounts"].append({"destination": "/m/x", "type": "tmpfs", "source": "tmpfs", "options": [opt]})
    proc = _run(pyrunc, bundle, cid, "sh", "-c", probe)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == expect


def test_tmpcopyup(pyrunc, bundle, cid):
    assert "tmpcopyup" in REPORT["mountOptions"]
    os.makedirs(os.path.join(bundle.rootfs, "seed"))
    with open(os.path.join(bundle.rootfs, "seed", "kept"), "w") as f:
        f.write("from the image\n")
    bundle.config["mounts"].append({"destination": "/seed", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["tmpcopyup"]})
    proc = _run(pyrunc, bundle, cid, "sh", "-c", "cat /seed/kept; grep -c ' /seed tmpfs ' /proc/self/mounts")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split("\n")[:2] == ["from the image", "1"]


def test_idmap_extension_matches_behaviour(pyrunc, bundle, cid, tmp_path):
    src = tmp_path / "idsrc"
    src.mkdir()
    bundle.config["mounts"].append({"destination": "/idm", "type": "bind", "source": str(src),
                                    "options": ["bind", "idmap"], "uidMappings": [
                                        {"containerID": 0, "hostID": 4242, "size": 1}],
                                    "gidMappings": [{"containerID": 0, "hostID": 4242, "size": 1}]})
    proc = _run(pyrunc, bundle, cid, "stat", "-c", "%u", "/idm")
    if LINUX["mountExtensions"]["idmap"]["enabled"]:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.decode().strip() == "4242"  # host root's dir seen through the mapping
    else:
        assert proc.returncode != 0


@pytest.mark.parametrize("kind", REPORT["hooks"])
def test_every_advertised_hook_runs(pyrunc, bundle, cid, tmp_path, kind):
    mark = tmp_path / f"{kind}.ran"
    if kind in ("createContainer", "startContainer"):  # run in the container's mount namespace
        bundle.config["mounts"].append({"destination": str(tmp_path), "type": "bind", "source": str(tmp_path),
                                        "options": ["rbind"]})
    bundle.config["hooks"] = {kind: [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {mark}"]}]}
    proc = _run(pyrunc, bundle, cid, "true")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(mark.read_text())["id"] == cid


def test_every_advertised_seccomp_action_and_flag_loads(pyrunc, bundle, cid):
    sc = LINUX["seccomp"]
    assert sc["enabled"]
    rules = []
    harmless = iter(["getppid", "getpgid", "getsid", "getpriority", "sched_getscheduler", "sched_getparam",
                     "getitimer", "times", "sysinfo", "getrusage"])
    for action in sc["actions"]:
        if action in ("SCMP_ACT_NOTIFY", "SCMP_ACT_ALLOW"):
            continue  # NOTIFY needs a listener (test_seccomp_live.py); ALLOW is the default here
        rules.append({"names": [next(harmless)], "action": action})
    bundle.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules,
                                         "flags": [f for f in sc["supportedFlags"]
                                                   if f != "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}
    proc = _run(pyrunc, bundle, cid, "true")
    assert proc.returncode == 0, proc.stderr
    for flag in set(sc["knownFlags"]) - set(sc["supportedFlags"]):  # the kernel lacks them: refused
        bundle.config["linux"]["seccomp"]["flags"] = [flag]
        assert _run(pyrunc, bundle, cid, "true").returncode != 0


def test_every_advertised_capability_can_be_held(pyrunc, bundle, cid):
    """Every name is accepted; the ones this host's root holds end up in the
    bounding set (root here lacks CAP_SYS_RESOURCE: asked, it is refused)."""
    with open("/proc/self/status") as f:
        held = int(next(ln for ln in f if ln.startswith("CapBnd:")).split()[1], 16)
    names = [n for i, n in enumerate(LINUX["capabilities"]) if held >> i & 1]
    bundle.config["process"]["capabilities"] = {"bounding": names}
    proc = _run(pyrunc, bundle, cid, "grep", "CapBnd", "/proc/self/status")
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[1], 16) == held


def test_lsm_reports_match_refusals(pyrunc, bundle, cid):
    for key, field in (("apparmor", "apparmorProfile"), ("selinux", "selinuxLabel")):
        bundle.config["process"][field] = "unconfined" if key == "apparmor" else "system_u:system_r:container_t:s0"
        proc = _run(pyrunc, bundle, cid, "true")
        del bundle.config["process"][field]
        if LINUX[key]["enabled"]:
            assert proc.returncode == 0, proc.stderr
        else:
            assert proc.returncode != 0 and b"not" in proc.stderr


def test_disabled_extensions_are_refused(pyrunc, bundle, cid):
    assert LINUX["intelRdt"]["enabled"] is False and LINUX["netDevices"]["enabled"] is False
    bundle.config["linux"]["intelRdt"] = {"closID": "x"}
    assert _run(pyrunc, bundle, cid, "true").returncode != 0
    del bundle.config["linux"]["intelRdt"]
    bundle.config["linux"]["netDevices"] = {"dummy0": {}}
    assert _run(pyrunc, bundle, cid, "true").returncode != 0


def test_cgroup_drivers_match(pyrunc, bundle, cid):
    cg = LINUX["cgroup"]
    assert cg["v1"] or cg["v2"]
    assert _run(pyrunc, bundle, cid, "true").returncode == 0  # the host's own version works
    bundle.config["linux"]["cgroupsPath"] = "system.slice:pyrunc:x"
    proc = pyrunc("--systemd-cgroup", "run", "-b", bundle.path, cid)
    assert (proc.returncode == 0) is cg["systemd"]
