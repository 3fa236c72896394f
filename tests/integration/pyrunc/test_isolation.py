"""Namespaces, mounts, /dev, read-only root, user namespaces and process settings, probed from inside."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest


def run_ok(rt, bundle, cid, *args: str) -> str:
    bundle.set_args(*args)
    proc = rt("run", "-b", bundle.path, cid)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def test_readonly_root(runtime, bundle, cid):
    bundle.config["root"]["readonly"] = True
    out = run_ok(runtime, bundle, cid, "sh", "-c", "touch /x 2>&1; echo rc=$?; touch /dev/shm/y && echo shm-ok")
    assert "Read-only file system" in out and "rc=1" in out and "shm-ok" in out


def test_default_dev_nodes_and_links(runtime, bundle, cid):
    out = run_ok(runtime, bundle, cid, "sh", "-c",
                 "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done;"
                 "for l in ptmx fd stdin stdout stderr; do readlink /dev/$l; done")
    lines = out.splitlines()
    assert lines[:6] == ["/dev/null character special file 1:3 666", "/dev/zero character special file 1:5 666",
                         "/dev/full character special file 1:7 666", "/dev/random character special file 1:8 666",
                         "/dev/urandom character special file 1:9 666", "/dev/tty character special file 5:0 666"]
    assert lines[6:] == ["pts/ptmx", "/proc/self/fd", "/proc/self/fd/0", "/proc/self/fd/1", "/proc/self/fd/2"]


def test_linux_devices_created(runtime, bundle, cid):
    bundle.config["linux"]["devices"] = [{"path": "/dev/fuse-like", "type": "c", "major": 10, "minor": 229,
                                          "fileMode": 0o620, "uid": 0, "gid": 0}]
    out = run_ok(runtime, bundle, cid, "stat", "-c", "%F %t:%T %a", "/dev/fuse-like")
    assert out.strip() == "character special file a:e5 620"


def test_mounts_tmpfs_bind_and_options(runtime, bundle, cid, tmp_path):
    src = tmp_path / "shared"
    src.mkdir()
    (src / "hello").write_text("from host\n")
    bundle.config["mounts"] += [
        {"destination": "/data", "type": "bind", "source": str(src), "options": ["rbind", "ro"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m", "mode=700"]},
    ]
    out = run_ok(runtime, bundle, cid, "sh", "-c",
                 "cat /data/hello; touch /data/x 2>/dev/null || echo data-ro; stat -c %a /scratch;"
                 "grep ' /scratch ' /proc/self/mountinfo | grep -o 'nosuid' | head -1")
    assert out.split() == ["from", "host", "data-ro", "700", "nosuid"]
    assert not (src / "x").exists()


def test_mount_destination_symlink_stays_inside(runtime, bundle, cid, tmp_path):
    """A symlink in the image pointing at a host path must not redirect a mount."""
    victim = tmp_path / "victim"
    victim.mkdir()
    os.symlink(str(victim), os.path.join(bundle.rootfs, "evil"))
    bundle.config["mounts"].append({"destination": "/evil", "type": "tmpfs", "source": "tmpfs", "options": []})
    bundle.set_args("sh", "-c", "touch /evil/planted; echo done")
    proc = runtime("run", "-b", bundle.path, cid)
    assert not (victim / "planted").exists()
    assert proc.returncode == 0 or proc.stderr


def test_proc_symlink_is_refused(pyrunc, bundle, cid):
    os.rmdir(os.path.join(bundle.rootfs, "proc"))
    os.symlink("/tmp", os.path.join(bundle.rootfs, "proc"))
    bundle.set_args("true")
    proc = pyrunc("run", "-b", bundle.path, cid)
    assert proc.returncode != 0
    assert b"symlink" in proc.stderr
    assert pyrunc("state", cid).returncode != 0


def test_hostname_domainname_and_uts(pyrunc, bundle, cid):
    """(runc 1.1 ignores `domainname`, so pyrunc only.)"""
    runtime = pyrunc
    bundle.config["hostname"] = "h1"
    bundle.config["domainname"] = "example.org"
    out = run_ok(runtime, bundle, cid, "sh", "-c", "hostname; cat /proc/sys/kernel/domainname")
    assert out.split() == ["h1", "example.org"]


def test_network_namespace_has_lo_up(runtime, bundle, cid):
    out = run_ok(runtime, bundle, cid, "sh", "-c", "ip -o link | cut -d: -f2; cat /sys/class/net/lo/operstate")
    names = out.split()
    assert names[0] == "lo" and len(names) == 2 and names[1] in ("unknown", "up")


def test_user_cwd_env_umask(runtime, bundle, cid):
    proc = bundle.config["process"]
    proc["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 6], "umask": 0o077}
    proc["cwd"] = "/work/dir"
    proc["env"] = ["PATH=/bin", "FOO=bar baz"]
    out = run_ok(runtime, bundle, cid, "sh", "-c", "id -u; id -g; id -G; pwd; echo $FOO; umask; echo $HOME")
    assert out.splitlines() == ["1000", "1000", "1000 5 6", "/work/dir", "bar baz", "0077", "/"]


def test_rlimits(runtime, bundle, cid):
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256},
                                            {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}]
    out = run_ok(runtime, bundle, cid, "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c")
    assert out.split() == ["256", "512", "0"]


def test_oom_score_adj(runtime, bundle, cid):
    bundle.config["process"]["oomScoreAdj"] = 123
    assert run_ok(runtime, bundle, cid, "cat", "/proc/self/oom_score_adj").strip() == "123"


def test_user_namespace_mapping_seen_from_host(runtime, bundle, cid, tmp_path):
    linux = bundle.config["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    subprocess.run(["chown", "-R", "100000:100000", bundle.rootfs], check=True)
    path = bundle.path
    while path != "/":  # the mapped root must be able to reach its rootfs
        os.chmod(path, os.stat(path).st_mode | 0o011)
        path = os.path.dirname(path)
    bundle.set_args("sh", "-c", "cat /proc/self/uid_map; id -u; sleep 30")
    runtime("run", "-d", "-b", bundle.path, cid, check=True)
    try:
        pid = json.loads(runtime("state", cid).stdout)["pid"]
        with open(f"/proc/{pid}/status") as f:
            uids = [l for l in f if l.startswith("Uid:")][0].split()[1:]
        assert uids == ["100000"] * 4
        with open(f"/proc/{pid}/uid_map") as f:
            assert f.read().split() == ["0", "100000", "65536"]
    finally:
        runtime("delete", "-f", cid)


def test_join_namespace_by_path(runtime, bundle, cid, tmp_path, busybox_rootfs):
    from testlib import Bundle

    bundle.config["hostname"] = "shared-uts"
    bundle.set_args("sleep", "30")
    runtime("run", "-d", "-b", bundle.path, cid, check=True)
    try:
        pid = json.loads(runtime("state", cid).stdout)["pid"]
        other = Bundle(str(tmp_path / "b2"), busybox_rootfs)
        for ns in other.config["linux"]["namespaces"]:
            if ns["type"] in ("uts", "network", "ipc"):
                kind = {"uts": "uts", "network": "net", "ipc": "ipc"}[ns["type"]]
                ns["path"] = f"/proc/{pid}/ns/{kind}"
        other.config["hostname"] = None
        del other.config["hostname"]
        other.config["process"]["args"] = ["hostname"]
        other.write()
        proc = runtime("run", "-b", other.path, cid + "b")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.decode().strip() == "shared-uts"
    finally:
        runtime("delete", "-f", cid)


def test_time_namespace_offsets(pyrunc, bundle, cid):
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365, "nanosecs": 0}}
    out = run_ok(pyrunc, bundle, cid, "cut", "-d.", "-f1", "/proc/uptime")
    with open("/proc/uptime") as f:
        host = int(f.read().split(".")[0])
    assert int(out.strip()) - host >= 86400 * 365 - 5


def test_container_cgroup_placement_and_removal(runtime, bundle, cid):
    bundle.config["linux"]["cgroupsPath"] = f"/pyrunc-it/{cid}"
    bundle.set_args("sleep", "30")
    runtime("run", "-d", "-b", bundle.path, cid, check=True)
    pid = json.loads(runtime("state", cid).stdout)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read()
    assert f":memory:/pyrunc-it/{cid}\n" in lines
    assert os.path.isdir(f"/sys/fs/cgroup/memory/pyrunc-it/{cid}")
    runtime("delete", "-f", cid, check=True)
    assert not os.path.exists(f"/sys/fs/cgroup/memory/pyrunc-it/{cid}")
    for ctl in os.listdir("/sys/fs/cgroup"):  # the parent this test named, in every hierarchy
        parent = f"/sys/fs/cgroup/{ctl}/pyrunc-it"
        if os.path.isdir(parent):
            os.rmdir(parent)


def test_masked_and_readonly_paths(runtime, bundle, cid):
    out = run_ok(runtime, bundle, cid, "sh", "-c",
                 "stat -c '%F %t:%T' /proc/keys; ls /proc/acpi 2>/dev/null | wc -l;"
                 "echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo sys-ro")
    lines = out.splitlines()
    assert lines[0] == "character special file 1:3"
    assert lines[1].strip() == "0" and lines[2] == "sys-ro"


def test_cgroup_mount_inside(runtime, bundle, cid):
    out = run_ok(runtime, bundle, cid, "sh", "-c", "ls /sys/fs/cgroup | sort | tr '\\n' ' '; cat /sys/fs/cgroup/pids/cgroup.procs | head -1")
    names = out.split()
    assert "memory" in names and "pids" in names
    assert names[-1] == "1"


def test_scheduler_iopriority_affinity(pyrunc, bundle, cid):
    proc = bundle.config["process"]
    proc["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5}
    proc["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    proc["execCPUAffinity"] = {"initial": "0", "final": "0"}
    out = run_ok(pyrunc, bundle, cid, "sh", "-c",
                 "cut -d' ' -f19,41 /proc/self/stat; grep Cpus_allowed_list /proc/self/status")
    nice_policy, aff = out.splitlines()
    assert nice_policy.split() == ["5", "3"]  # nice 5, SCHED_BATCH
    assert aff.split()[1] == "0"


def test_bad_scheduler_policy_names_field(pyrunc, bundle, cid):
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_FIFO", "priority": 1, "flags": ["NOPE"]}
    bundle.set_args("true")
    proc = pyrunc("run", "-b", bundle.path, cid)
    assert proc.returncode != 0
    assert b".process.scheduler" in proc.stderr


def test_cgroup_namespace(runtime, bundle, cid):
    bundle.config["linux"]["namespaces"].append({"type": "cgroup"})
    out = run_ok(runtime, bundle, cid, "sh", "-c", "grep -E ':(memory|pids):' /proc/self/cgroup")
    assert sorted(out.split()) == sorted(l.split(":", 1)[0] + ":" + l.split(":", 1)[1]
                                         for l in out.split()) and all(l.endswith(":/") for l in out.split())


def test_no_pivot(runtime, bundle, cid):
    out = run_ok(runtime, bundle, cid, "sh", "-c", "ls /; echo $$")
    bundle.set_args("sh", "-c", "ls /; echo $$")
    proc = runtime("run", "--no-pivot", "-b", bundle.path, cid + "np")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == out


def test_rootfs_propagation_private(runtime, bundle, cid):
    bundle.config["linux"]["rootfsPropagation"] = "private"
    out = run_ok(runtime, bundle, cid, "sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo")
    assert out.strip()
    assert "shared:" not in out and "master:" not in out


def test_user_namespace_maps_and_devices(pyrunc, bundle, cid):
    """In a user namespace device nodes are bind mounts of the host's (mknod is not allowed)."""
    linux = bundle.config["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    out = run_ok(pyrunc, bundle, cid, "sh", "-c", "head -c 4 /dev/zero | wc -c; stat -c '%t:%T' /dev/null")
    assert out.split() == ["4", "1:3"]
