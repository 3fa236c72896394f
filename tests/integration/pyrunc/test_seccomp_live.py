"""Filters compiled by pyrunc, loaded into a real process.

Each case forks: the child sets no_new_privs, calls pyrunc.seccomp.load() and
then makes the syscall under test with raw ctypes; it reports through its exit
status (0 = expected outcome, 10+errno = an unexpected errno) or dies by the
signal a KILL action sends. Nothing is created outside the child.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import tempfile

import pytest

from pyrunc import seccomp
from pyrunc.seccomp import profiles
from pyrunc.seccomp.arches import native
from pyrunc.spec import parse_seccomp

if os.uname().machine != "x86_64":
    pytest.skip("syscall numbers below are x86_64", allow_module_level=True)

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "data", "seccomp")
NR = {"mkdir": 83, "unshare": 272, "mount": 165, "clone": 56, "getpid": 39, "getppid": 110,
      "personality": 135, "uname": 63}
CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000
PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _raw(name: str, *args: int) -> tuple[int, int]:
    ctypes.set_errno(0)
    res = _libc.syscall(ctypes.c_long(NR[name]), *(ctypes.c_ulong(a) for a in args))
    return res, ctypes.get_errno()


def run_child(prepared: seccomp.Prepared, name: str, *args: int, expect_errno: int | None) -> int:
    """Fork, load, call; returns the raw wait status."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            seccomp.load(prepared)
            res, err = _raw(name, *args)
            if expect_errno is None:
                code = 0 if res >= 0 else 10 + err
            else:
                code = 0 if res == -1 and err == expect_errno else 10 + err if res == -1 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def prepare(obj: dict) -> seccomp.Prepared:
    """seccomp.prepare of a linux.seccomp object, checked as config.json's is."""
    return seccomp.prepare(parse_seccomp(obj))


def oci(*rules: dict, default: str = "SCMP_ACT_ALLOW") -> dict:
    return {"defaultAction": default, "syscalls": list(rules)}


@pytest.fixture(scope="module")
def docker_default() -> seccomp.Prepared:
    with open(os.path.join(DATA, "docker-default.json")) as f:
        profile, _ = profiles.load_any(json.load(f), native())
    return prepare(profile)


def test_configured_errno_is_returned() -> None:
    prepared = prepare(oci({"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}))
    with tempfile.TemporaryDirectory() as tmp:
        path = ctypes.c_char_p(os.path.join(tmp, "d").encode())
        status = run_child(prepared, "mkdir", ctypes.cast(path, ctypes.c_void_p).value or 0, 0o755,
                           expect_errno=errno.EACCES)
        assert os.waitstatus_to_exitcode(status) == 0
        assert not os.path.exists(os.path.join(tmp, "d"))


def test_allowed_syscalls_work() -> None:
    prepared = prepare(oci({"names": ["getpid", "getppid", "exit_group", "exit", "prctl",
                                              "seccomp"], "action": "SCMP_ACT_ALLOW"},
                                   default="SCMP_ACT_ERRNO"))
    assert os.waitstatus_to_exitcode(run_child(prepared, "getppid", expect_errno=None)) == 0
    assert os.waitstatus_to_exitcode(run_child(prepared, "uname", 0, expect_errno=errno.EPERM)) == 0


@pytest.mark.parametrize("action, sig", [("SCMP_ACT_KILL_PROCESS", signal.SIGSYS),
                                         ("SCMP_ACT_KILL", signal.SIGSYS),
                                         ("SCMP_ACT_TRAP", signal.SIGSYS)])
def test_kill_actions_kill(action: str, sig: int) -> None:
    prepared = prepare(oci({"names": ["getppid"], "action": action}))
    status = run_child(prepared, "getppid", expect_errno=None)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == sig


def test_argument_checks_on_64_bit_values() -> None:
    prepared = prepare(oci({"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                                    "errnoRet": 22, "args": [{"index": 0, "value": 1 << 32,
                                                              "op": "SCMP_CMP_EQ"}]}))
    assert os.waitstatus_to_exitcode(run_child(prepared, "personality", 1 << 32,
                                               expect_errno=errno.EINVAL)) == 0
    assert os.waitstatus_to_exitcode(run_child(prepared, "personality", 0xFFFFFFFF,
                                               expect_errno=None)) == 0


def test_docker_default_denies_unshare_mount_and_clone_newuser(docker_default: seccomp.Prepared) -> None:
    assert docker_default.flags & 4  # SPEC_ALLOW by default, as runc
    for name, args in (("unshare", (CLONE_NEWUSER,)), ("unshare", (CLONE_NEWNS,)),
                       ("mount", (0, 0, 0, 0, 0)), ("clone", (CLONE_NEWUSER | signal.SIGCHLD, 0, 0, 0, 0))):
        status = run_child(docker_default, name, *args, expect_errno=errno.EPERM)
        assert os.waitstatus_to_exitcode(status) == 0, (name, status)
    assert os.waitstatus_to_exitcode(run_child(docker_default, "getppid", expect_errno=None)) == 0


def test_notify_listener_gets_fd_and_state_and_answers() -> None:
    """End to end as in a container: the child loads a NOTIFY filter and hands the
    listener fd to its parent over SCM_RIGHTS (as init does); the parent sends it
    with the state to listenerPath; the listener receives the child's getppid()
    call on that fd and answers it with 4242."""
    import array
    import fcntl
    import socket
    import struct

    notif_recv, notif_send = 0xC0502100, 0xC0182101  # SECCOMP_IOCTL_NOTIF_RECV / _SEND
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "listener.sock")
        prepared = prepare({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path,
                                    "listenerMetadata": "meta", "syscalls": [
                                        {"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]})
        assert prepared.needs_notify and prepared.flags & 8
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server, parent_end, child_end:
            server.bind(path)
            server.listen(1)
            pid = os.fork()
            if pid == 0:
                code = 99
                try:
                    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
                    fd = seccomp.load(prepared)
                    socket.send_fds(child_end, [b"fd"], [fd])
                    os.close(fd)
                    res, _ = _raw("getppid")
                    code = 0 if res == 4242 else 3
                finally:
                    os._exit(code)
            try:
                _, fds, _, _ = socket.recv_fds(parent_end, 16, 1)
                state = {"ociVersion": "1.0.2", "id": "c1", "status": "creating", "pid": pid,
                         "bundle": tmp}
                seccomp.send_to_listener(prepared, fds[0], json.dumps(state).encode())
                os.close(fds[0])
                conn, _ = server.accept()
                with conn:
                    got = array.array("i")
                    msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
                    for level, kind, data in anc:
                        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                            got.frombytes(data)
                body = json.loads(msg)
                assert body["fds"] == ["seccompFd"] and body["metadata"] == "meta"
                assert body["pid"] == pid and body["state"]["id"] == "c1"
                assert len(got) == 1
                listener = got[0]
                try:
                    req = bytearray(80)
                    fcntl.ioctl(listener, notif_recv, req)
                    notif_id, notif_pid = struct.unpack_from("=QI", req)
                    assert struct.unpack_from("=i", req, 16)[0] == NR["getppid"]
                    assert notif_pid == pid
                    fcntl.ioctl(listener, notif_send, bytearray(struct.pack("=QqiI", notif_id, 4242, 0, 0)))
                finally:
                    os.close(listener)
            finally:
                _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0


# --- real containers (pyrunc, and runc as the oracle with -m peer) --------------------------
ADMIN_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]


def _docker_oci() -> dict:
    with open(os.path.join(DATA, "docker-default.json")) as f:
        profile, _ = profiles.load_any(json.load(f), native())  # Docker's 14 default caps
    return profile


def _with_caps(bundle, caps: list[str]) -> None:  # type: ignore[no-untyped-def]
    bundle.config["process"]["capabilities"] = {k: list(caps) for k in
                                                ("bounding", "effective", "permitted")}


def test_container_gets_configured_errno(runtime, bundle, cid) -> None:  # type: ignore[no-untyped-def]
    bundle.config["linux"]["seccomp"] = oci(
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13})
    bundle.set_args("sh", "-c", "echo start; mkdir /tmp/x; echo rc=$?")
    proc = runtime("run", "-b", bundle.path, cid)
    assert proc.returncode == 0, proc.stderr
    assert b"start" in proc.stdout and b"rc=1" in proc.stdout
    assert b"Permission denied" in proc.stderr
    assert not os.path.exists(os.path.join(bundle.rootfs, "tmp", "x"))


def test_container_kill_action_kills(runtime, bundle, cid) -> None:  # type: ignore[no-untyped-def]
    bundle.config["linux"]["seccomp"] = oci(
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"})
    bundle.set_args("mkdir", "/tmp/x")
    proc = runtime("run", "-b", bundle.path, cid)
    assert proc.returncode == 128 + signal.SIGSYS, proc.stderr


def test_container_under_docker_default(runtime, bundle, cid) -> None:  # type: ignore[no-untyped-def]
    """CAP_SYS_ADMIN is granted, yet Docker's profile (resolved for Docker's default
    caps) denies unshare(CLONE_NEWUSER), mount and clone with namespace flags;
    ordinary work goes on."""
    _with_caps(bundle, ADMIN_CAPS)
    bundle.config["linux"]["seccomp"] = _docker_oci()
    bundle.set_args("sh", "-c", "echo ok; cat /proc/self/stat > /dev/null && echo read=ok; "
                    "unshare -U true; echo unshare=$?; "
                    "mount -t tmpfs none /tmp; echo mount=$?; "
                    "unshare -m true; echo unshare_m=$?")
    proc = runtime("run", "-b", bundle.path, cid)
    out = proc.stdout.decode()
    assert proc.returncode == 0, proc.stderr
    assert "read=ok" in out and "unshare=1" in out and "unshare_m=1" in out, out
    assert "mount=" in out and "mount=0" not in out, out
    assert b"Operation not permitted" in proc.stderr


def test_container_without_profile_can_do_the_same(runtime, bundle, cid) -> None:  # type: ignore[no-untyped-def]
    """The control for the test above: the denials come from the filter, not from caps."""
    _with_caps(bundle, ADMIN_CAPS)
    bundle.config["linux"].pop("seccomp", None)
    bundle.set_args("sh", "-c", "mount -t tmpfs none /tmp; echo mount=$?; unshare -m true; echo unshare_m=$?")
    proc = runtime("run", "-b", bundle.path, cid)
    out = proc.stdout.decode()
    assert "mount=0" in out and "unshare_m=0" in out, (out, proc.stderr)


def test_bad_profile_fails_naming_the_field(runtime, bundle, cid) -> None:  # type: ignore[no-untyped-def]
    bundle.config["linux"]["seccomp"] = oci(
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]})
    bundle.set_args("true")
    proc = runtime("run", "-b", bundle.path, cid)
    assert proc.returncode != 0
    if runtime.name == "pyrunc":
        assert b".linux.seccomp.syscalls[0].args[0].op" in proc.stderr, proc.stderr
    assert runtime("state", cid).returncode != 0  # nothing was created


def test_container_notify_reaches_listener(runtime, bundle, cid, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A container whose mkdir is SCMP_ACT_NOTIFY: the runtime passes the notify fd
    and the state to listenerPath; the listener answers mkdir with EXDEV (18)."""
    import array
    import fcntl
    import socket
    import struct
    import threading

    path = str(tmp_path / "agent.sock")
    seen: dict = {}

    def agent(server: socket.socket) -> None:
        conn, _ = server.accept()
        with conn:
            fds = array.array("i")
            msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data)
        seen["body"] = json.loads(msg)
        try:
            req = bytearray(80)
            fcntl.ioctl(fds[0], 0xC0502100, req)
            notif_id = struct.unpack_from("=Q", req)[0]
            seen["nr"] = struct.unpack_from("=i", req, 16)[0]
            fcntl.ioctl(fds[0], 0xC0182101, bytearray(struct.pack("=QqiI", notif_id, 0, -18, 0)))
        finally:
            for fd in fds:
                os.close(fd)

    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": path, "listenerMetadata": "m1",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}
    bundle.set_args("sh", "-c", "mkdir /tmp/x; echo rc=$?")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        thread = threading.Thread(target=agent, args=(server,), daemon=True)
        thread.start()
        proc = runtime("run", "-b", bundle.path, cid, timeout=30)
        thread.join(10)
    assert proc.returncode == 0, proc.stderr
    assert b"rc=1" in proc.stdout and b"Invalid cross-device link" in proc.stderr, proc.stderr
    assert seen["body"]["fds"] == ["seccompFd"] and seen["body"]["metadata"] == "m1"
    assert seen["body"]["state"]["id"] == cid
    assert seen["nr"] in (NR["mkdir"], 258)  # mkdir or mkdirat
