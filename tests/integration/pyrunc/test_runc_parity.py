"""Issue 12: the differences from runc a runc user would hit, one test each.

Where runc 1.1.5 has the behaviour the test runs under both runtimes (the
`runtime` fixture, runc as the oracle); where it does not (idmapped mounts,
nested real-time cgroups, a mount onto /, spec 1.3 poststart), pyrunc only.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess

import pytest

from testlib import PYRUNC


def _run(rt, bundle, cid, *args: str):
    bundle.set_args(*args) if args else bundle.write()
    return rt("run", "-b", bundle.path, cid)


# ---------------------------------------------------------------- rootfsPropagation
@pytest.mark.parametrize("value", ["rprivate", "rslave", "rshared", "runbindable"])
def test_recursive_rootfs_propagation_is_accepted(runtime, bundle, cid, value):
    if runtime.name == "runc" and value == "runbindable":
        pytest.skip("runc 1.1.5 fails it: the rootfs cannot be bound onto itself out of an unbindable /")
    bundle.config["linux"]["rootfsPropagation"] = value
    proc = _run(runtime, bundle, cid, "true")
    assert proc.returncode == 0, proc.stderr


def _propagation_probe(bundle, value: str) -> None:
    """runtime-tools' check: rbind / to /t, then mount on /m; a shared root
    shows it at /t/m too, an unbindable root refuses the rbind."""
    bundle.config["linux"]["rootfsPropagation"] = value
    bundle.config["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN"] for k in (
        "bounding", "effective", "permitted")}
    os.makedirs(os.path.join(bundle.rootfs, "t"), exist_ok=True)
    os.makedirs(os.path.join(bundle.rootfs, "m"), exist_ok=True)
    bundle.set_args("sh", "-c", "mount --rbind / /t || { echo unbindable; exit 0; }; "
                    "mount -t tmpfs none /m && touch /m/x && ls /t/m")


@pytest.mark.parametrize("value,expect", [("shared", "x"), ("private", ""), ("unbindable", "unbindable")])
def test_root_propagation_is_what_was_asked(pyrunc, bundle, cid, value, expect):
    """runc 1.1.5 fails shared (pivot) and unbindable (self-bind): pyrunc only."""
    _propagation_probe(bundle, value)
    proc = pyrunc("run", "-b", bundle.path, cid)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == expect


# ---------------------------------------------------------------- hooks
def test_hook_without_env_gets_the_runtimes_env(runtime, bundle, cid, tmp_path):
    out_absent, out_empty = tmp_path / "absent", tmp_path / "empty"
    bundle.config["hooks"] = {"prestart": [
        {"path": "/bin/sh", "args": ["sh", "-c", f"env > {out_absent}"]},
        {"path": "/bin/sh", "args": ["sh", "-c", f"env > {out_empty}"], "env": []},
    ]}
    os.environ["PYRUNC_PARITY_MARK"] = "here"
    try:
        proc = _run(runtime, bundle, cid, "true")
    finally:
        del os.environ["PYRUNC_PARITY_MARK"]
    assert proc.returncode == 0, proc.stderr
    assert "PYRUNC_PARITY_MARK=here" in out_absent.read_text()
    assert "PYRUNC_PARITY_MARK" not in out_empty.read_text()


# ---------------------------------------------------------------- mount destinations
def test_mount_onto_a_dangling_symlink_creates_its_target_inside(runtime, bundle, cid):
    os.symlink("/target/inner", os.path.join(bundle.rootfs, "data"))
    bundle.config["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs"})
    proc = _run(runtime, bundle, cid, "sh", "-c", "grep -c ' /target/inner ' /proc/self/mounts")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == "1"
    assert os.path.isdir(os.path.join(bundle.rootfs, "target", "inner"))  # inside the rootfs
    assert not os.path.exists("/target/inner")


def test_bind_mount_onto_root_replaces_the_root(pyrunc, bundle, cid, tmp_path, busybox_rootfs):
    """runc 1.1.5 binds it under what follows and then fails ('error closing
    exec fds'); pyrunc makes the later steps land on the new root."""
    other = tmp_path / "other"
    shutil.copytree(busybox_rootfs, other, symlinks=True)
    (other / "MARK").write_text("other root\n")
    bundle.config["mounts"].insert(0, {"destination": "/", "type": "bind", "source": str(other),
                                       "options": ["rbind"]})
    proc = _run(pyrunc, bundle, cid, "sh", "-c", "cat /MARK; test -c /dev/null && grep -c ' /proc ' /proc/mounts")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split() == ["other", "root", "1"]


@pytest.fixture
def open_bundle(busybox_rootfs):
    """A bundle the container's root (host uid 100000) can reach: pytest's
    tmp_path lives under a 0700 directory, which no runtime can enter from a
    user namespace (its rootfs is bound from inside it)."""
    import tempfile

    from testlib import Bundle

    top = tempfile.mkdtemp(prefix="pyrunc-parity-", dir="/var/tmp")
    os.chmod(top, 0o711)
    try:
        yield Bundle(os.path.join(top, "bundle"), busybox_rootfs).write()
    finally:
        shutil.rmtree(top)


def test_user_namespace_bind_source_under_a_root_only_dir(runtime, open_bundle, cid, tmp_path):
    bundle = open_bundle
    secret = tmp_path / "secret"
    (secret / "data").mkdir(parents=True)
    (secret / "data" / "f").write_text("hello\n")
    secret.chmod(0o700)
    _userns(bundle)
    bundle.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(secret / "data"),
                                    "options": ["bind", "ro"]})
    proc = _run(runtime, bundle, cid, "sh", "-c", "cat /mnt/f; touch /mnt/g 2>/dev/null || echo ro")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split() == ["hello", "ro"]


def _userns(bundle, base: int = 100000) -> None:
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": base, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": base, "size": 65536}]
    for dirpath, dirnames, filenames in os.walk(bundle.rootfs):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), base, base)
    os.lchown(bundle.rootfs, base, base)


def test_idmapped_mount(pyrunc, open_bundle, cid, tmp_path):
    """runc 1.1.5 ignores idmap (the file shows as nobody): pyrunc only."""
    bundle = open_bundle
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")  # owned by host root
    _userns(bundle)
    bundle.config["mounts"].append({"destination": "/idm", "type": "bind", "source": str(src),
                                    "options": ["bind", "idmap"]})
    bundle.config["mounts"].append({"destination": "/plain", "type": "bind", "source": str(src),
                                    "options": ["bind"]})
    proc = _run(pyrunc, bundle, cid, "sh", "-c", "stat -c %u /idm/f /plain/f")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split() == ["0", "65534"]  # mapped by the mount; overflow id without


def test_idmap_on_a_non_bind_mount_is_refused(pyrunc, bundle, cid):
    bundle.config["mounts"].append({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["idmap"]})
    proc = _run(pyrunc, bundle, cid, "true")
    assert proc.returncode != 0 and b"bind mounts only" in proc.stderr


# ---------------------------------------------------------------- devices, tmpfs
def test_device_outside_dev(runtime, bundle, cid):
    bundle.config["linux"]["devices"] = [{"path": "/mydev/null2", "type": "c", "major": 1, "minor": 3,
                                          "fileMode": 0o666}]
    proc = _run(runtime, bundle, cid, "sh", "-c", "test -c /mydev/null2 && echo x > /mydev/null2 && echo ok")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == "ok"


def test_tmpfs_without_mode_keeps_the_mount_points_mode(runtime, bundle, cid):
    os.makedirs(os.path.join(bundle.rootfs, "tm"))
    os.chmod(os.path.join(bundle.rootfs, "tm"), 0o750)
    bundle.config["mounts"].append({"destination": "/tm", "type": "tmpfs", "source": "tmpfs"})
    bundle.config["mounts"].append({"destination": "/tm2", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["mode=1777"]})
    proc = _run(runtime, bundle, cid, "stat", "-c", "%a", "/tm", "/tm2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split() == ["750", "1777"]


# ---------------------------------------------------------------- real time (cgroup v1)
def _rt_capable() -> bool:
    return os.path.exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us")


@pytest.mark.skipif(not _rt_capable(), reason="no cgroup v1 cpu controller with RT group scheduling here")
def test_realtime_scheduler_nested_under_pyrunc(pyrunc, bundle, cid):
    """runc 1.1.5 has no process.scheduler: pyrunc only."""
    bundle.config["process"]["scheduler"] = {"policy": "SCHED_FIFO", "priority": 10}
    bundle.config["linux"]["resources"] = {"cpu": {"realtimeRuntime": 10000, "realtimePeriod": 1000000}}
    bundle.config["linux"]["cgroupsPath"] = f"/pyrunc/{cid}-parent/{cid}"
    # field 41 of /proc/PID/stat is the policy: 1 = SCHED_FIFO
    proc = _run(pyrunc, bundle, cid, "sh", "-c", "cut -d' ' -f41 /proc/self/stat")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == "1"
    assert not os.path.exists(f"/sys/fs/cgroup/cpu/pyrunc/{cid}-parent")  # delete removed what it made


# ---------------------------------------------------------------- ioPriority
def _ioprio_get(pid: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.syscall(252, 1, pid)  # SYS_ioprio_get on x86_64, IOPRIO_WHO_PROCESS


def test_io_priority_class_without_priority(pyrunc, bundle, cid):
    """runc 1.1.5 has no ioPriority: pyrunc only (priority defaults to 0)."""
    bundle.config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE"}
    bundle.set_args("sleep", "30")
    assert pyrunc("create", "-b", bundle.path, cid).returncode == 0
    try:
        pid = json.loads(pyrunc("state", cid).stdout)["pid"]
        assert _ioprio_get(pid) == 3 << 13  # IDLE, 0
    finally:
        pyrunc("delete", "-f", cid)


# ---------------------------------------------------------------- poststart failure
def _failing_poststart(bundle, version: str) -> None:
    bundle.config["ociVersion"] = version
    bundle.config["hooks"] = {"poststart": [{"path": "/bin/false"}]}
    bundle.set_args("sleep", "30")


def test_failing_poststart_destroys_the_container_from_spec_1_3(runtime, bundle, cid):
    """runc 1.1 does it for every version (its poststart runs inside create)."""
    _failing_poststart(bundle, "1.3.0")
    create = runtime("create", "-b", bundle.path, cid)
    if create.returncode == 0:
        start = runtime("start", cid)
        assert start.returncode != 0 and start.stderr
    else:
        assert create.stderr
    assert runtime("state", cid).returncode != 0  # no record left behind


def test_failing_poststart_warns_before_spec_1_3(pyrunc, bundle, cid):
    _failing_poststart(bundle, "1.0.2")
    assert pyrunc("create", "-b", bundle.path, cid).returncode == 0
    start = pyrunc("start", cid)
    assert start.returncode == 0 and b"warning" in start.stderr and b"poststart" in start.stderr
    assert json.loads(pyrunc("state", cid).stdout)["status"] == "running"
    pyrunc("delete", "-f", cid)


# ---------------------------------------------------------------- exec, stdio
def test_exec_without_terminal_leads_its_process_group(runtime, bundle, cid):
    bundle.set_args("sleep", "30")
    assert runtime("run", "-d", "-b", bundle.path, cid).returncode == 0
    try:
        proc = runtime("exec", cid, "sh", "-c", "cut -d' ' -f5 /proc/self/stat")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.decode().strip() not in ("", "0")
    finally:
        runtime("delete", "-f", cid)


def test_stdio_belongs_to_the_process_user(runtime, bundle, cid):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    proc = _run(runtime, bundle, cid, "stat", "-L", "-c", "%u", "/proc/self/fd/1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == "1000"


# ---------------------------------------------------------------- CLI and config errors
@pytest.mark.parametrize("flags", [["--log-format", "invalid"], ["--log=invalid:/path"]])
def test_bad_log_flags_are_refused(runtime, flags):
    proc = runtime(*flags, "list")
    assert proc.returncode != 0
    assert proc.stderr.strip()


def test_user_namespace_without_mappings_says_so(runtime, bundle, cid):
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    proc = _run(runtime, bundle, cid, "true")
    assert proc.returncode != 0
    assert b"uid" in proc.stderr.lower() and b"mapping" in proc.stderr.lower()
    assert b"Errno" not in proc.stderr


# ---------------------------------------------------------------- no mount namespace
def _host_mounts_under(path: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [ln.split()[4] for ln in f if ln.split()[4].startswith(path)]


def test_no_mount_namespace_still_lives_in_the_rootfs(pyrunc, bundle, cid):
    """runc and crun chroot into the rootfs too, but leave its mounts behind
    (runtime-tools' linux_ns_itype cannot clean its bundle): pyrunc detaches
    what it mounted at delete."""
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"]
                                            if ns["type"] != "mount"]
    bundle.config["root"]["readonly"] = False
    with open(os.path.join(bundle.rootfs, "MARK"), "w") as f:
        f.write("in the rootfs\n")
    bundle.set_args("sleep", "30")
    assert pyrunc("create", "-b", bundle.path, cid).returncode == 0
    try:
        pid = json.loads(pyrunc("state", cid).stdout)["pid"]
        assert os.readlink(f"/proc/{pid}/root") == os.path.realpath(bundle.rootfs)
        assert os.path.realpath(bundle.rootfs) + "/proc" in _host_mounts_under(os.path.realpath(bundle.rootfs))
    finally:
        assert pyrunc("delete", "-f", cid).returncode == 0
    assert _host_mounts_under(os.path.realpath(bundle.rootfs)) == []


def test_no_mount_namespace_refuses_a_readonly_root(pyrunc, bundle, cid):
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"]
                                            if ns["type"] != "mount"]
    bundle.config["root"]["readonly"] = True
    proc = _run(pyrunc, bundle, cid, "true")
    assert proc.returncode != 0 and b"root.readonly" in proc.stderr
    assert _host_mounts_under(os.path.realpath(bundle.rootfs)) == []


def test_pyrunc_binary_is_the_one_under_test():
    assert os.access(PYRUNC, os.X_OK)
    assert subprocess.run([PYRUNC, "--version"], capture_output=True).returncode == 0


def test_exec_without_mount_namespace_lives_in_the_rootfs(pyrunc, bundle, cid):
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"]
                                            if ns["type"] != "mount"]
    bundle.config["root"]["readonly"] = False
    with open(os.path.join(bundle.rootfs, "MARK"), "w") as f:
        f.write("in the rootfs\n")
    bundle.set_args("sleep", "30")
    assert pyrunc("create", "-b", bundle.path, cid).returncode == 0
    try:
        proc = pyrunc("exec", cid, "cat", "/MARK")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == b"in the rootfs\n"
    finally:
        pyrunc("delete", "-f", cid)
