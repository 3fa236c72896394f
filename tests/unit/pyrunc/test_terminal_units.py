"""Pure parts of terminals and exec: runc's console rules, consoleSize, the
console-socket client's errors, exec's flags (--user, -g, --cgroup)."""

from __future__ import annotations

import os
import socket

import pytest

from pyrunc import consolesock, exec as execmod, spec as specmod
from pyrunc.errors import PyruncError


def _proc(terminal: bool, size=None) -> specmod.Process:
    return specmod.Process(args=("sh",), cwd="/", terminal=terminal,
                           console_size=specmod.ConsoleSize(*size) if size else None)


@pytest.mark.parametrize("terminal,socket_path,detach,message", [
    (True, None, True, "cannot allocate tty if pyrunc will detach without setting console socket"),
    (False, "/x", True, "cannot use console socket if pyrunc will not detach or allocate tty"),
    (True, "/x", False, "cannot use console socket if pyrunc will not detach or allocate tty"),
    (False, "/x", False, "cannot use console socket if pyrunc will not detach or allocate tty"),
])
def test_runc_console_rules(terminal, socket_path, detach, message):
    with pytest.raises(PyruncError, match=message):
        consolesock.plan(_proc(terminal), socket_path, detach)


def test_no_terminal_no_console():
    assert consolesock.plan(_proc(False), None, True) is None
    assert consolesock.plan(_proc(False), None, False) is None


@pytest.mark.parametrize("size,expect", [(None, (0, 0)), ((24, 80), (24, 80)), ((0, 80), (0, 0)),
                                         ((65536 + 24, 80), (24, 80)), ((65536, 80), (0, 0))])
def test_console_size_is_runcs_uint16_pair(size, expect):
    assert consolesock.console_size(_proc(True, size)) == expect


def test_connect_errors_are_one_line(tmp_path):
    missing = str(tmp_path / "missing.sock")
    with pytest.raises(PyruncError, match=f"--console-socket {missing}: connect: no such file or directory"):
        consolesock.connect(missing)
    plain = tmp_path / "plain"
    plain.write_text("")
    with pytest.raises(PyruncError, match="connection refused"):
        consolesock.connect(str(plain))
    with pytest.raises(PyruncError, match="--console-socket"):
        consolesock.connect("/" + "x" * 200)


def test_connect_to_a_listener_that_never_accepts(tmp_path):
    path = str(tmp_path / "full.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(0)
    held = []
    try:
        with pytest.raises(PyruncError, match="does not accept"):
            for _ in range(8):
                held.append(consolesock.connect(path))
    finally:
        for fd in held:
            os.close(fd)
        listener.close()


def test_connect_gives_a_connected_cloexec_fd(tmp_path):
    path = str(tmp_path / "ok.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)
    try:
        fd = consolesock.connect(path)
        try:
            assert not os.get_inheritable(fd)
            conn, _ = listener.accept()
            os.write(fd, b"x")
            assert conn.recv(1) == b"x"
            conn.close()
        finally:
            os.close(fd)
    finally:
        listener.close()


# ---------------------------------------------------------------- exec flags
def _opts(**kw) -> execmod.ExecOptions:
    return execmod.ExecOptions(**{"args": ("id",), **kw})


def test_additional_gids_append_to_the_configs():
    base = specmod.Process(args=("sh",), cwd="/", user=specmod.User(uid=0, gid=0, additional_gids=(10,)))
    proc = execmod.build_process(base, _opts(user="1000:1000", additional_gids=("5", "7")))
    assert (proc.user.uid, proc.user.gid, proc.user.additional_gids) == (1000, 1000, (10, 5, 7))


@pytest.mark.parametrize("user", ["abc", "1000:", ":1000", "-1", "4294967295", "1000:4294967296", " 1000",
                                  "nobody"])
def test_bad_users_are_refused(user):
    with pytest.raises(PyruncError):
        execmod.build_process(None, _opts(user=user))


@pytest.mark.parametrize("gid", ["abc", "-1", "4294967295"])
def test_bad_additional_gids_are_refused(gid):
    with pytest.raises(PyruncError, match="--additional-gids"):
        execmod.build_process(None, _opts(additional_gids=(gid,)))


def test_exec_without_args():
    with pytest.raises(PyruncError, match="process args cannot be empty"):
        execmod.build_process(None, _opts(args=()))


def test_relative_cwd_is_refused():
    with pytest.raises(PyruncError, match="Cwd must be an absolute path"):
        execmod.build_process(None, _opts(cwd="tmp"))


def test_tty_flag_sets_the_terminal_and_unset_clears_it():
    base = specmod.Process(args=("sh",), cwd="/", terminal=True)
    assert execmod.build_process(base, _opts(tty=True)).terminal is True
    assert execmod.build_process(base, _opts()).terminal is False  # runc: false unless -t


@pytest.mark.parametrize("args,expect", [
    (("sub",), {"": "sub"}),
    (("memory:a", "cpu,cpuacct:b"), {"memory": "a", "cpu": "b", "cpuacct": "b"}),
])
def test_sub_cgroup_paths(args, expect):
    assert execmod.sub_cgroup_paths(args) == expect


@pytest.mark.parametrize("args,message", [
    (("a:b:c",), "invalid --cgroup argument: a:b:c"),
    (("a", "b"), "missing <controller>: prefix"),
    ((":x",), "empty <controller> prefix"),
    (("memory:a", "memory:b"), "controller memory specified multiple times"),
])
def test_bad_sub_cgroup_arguments(args, message):
    with pytest.raises(PyruncError, match=message):
        execmod.sub_cgroup_paths(args)


def test_sub_dirs_stay_inside_and_must_exist(tmp_path):
    base = tmp_path / "mem" / "ctr"
    (base / "sub").mkdir(parents=True)
    cpu = tmp_path / "cpu" / "ctr"
    cpu.mkdir(parents=True)
    dirs = {"memory": str(base), "cpu": str(cpu)}
    assert execmod.sub_dirs(dirs, {"memory": "sub"}) == {"memory": str(base / "sub"), "cpu": str(cpu)}
    with pytest.raises(PyruncError, match="leaves the container's cgroup"):
        execmod.sub_dirs(dirs, {"memory": "../other"})
    with pytest.raises(PyruncError, match="does not exist"):
        execmod.sub_dirs(dirs, {"": "sub"})  # cpu/ctr/sub is missing
    with pytest.raises(PyruncError, match="unknown controller pids"):
        execmod.sub_dirs(dirs, {"pids": "sub"})


def test_unknown_cap_flag_is_refused():
    with pytest.raises(PyruncError, match="--cap CAP_FOO: unknown capability"):
        execmod.build_process(None, _opts(caps=("CAP_FOO",)))
    proc = execmod.build_process(None, _opts(caps=("CAP_NET_ADMIN",)))
    assert "CAP_NET_ADMIN" in proc.capabilities.bounding and "CAP_NET_ADMIN" in proc.capabilities.effective


def test_exec_cgroup_dirs_of_both_managers():
    from pyrunc import process

    class Doc:
        def __init__(self, doc):
            self.doc = doc

        def to_state(self):
            return self.doc

    v1 = Doc({"version": "v1", "paths": {"cpu": "/c/cpu/x", "cpuacct": "/c/cpu/x", "memory": "/c/memory/x",
                                         "": "/c/unified/x"}})
    assert process._cgroup_dirs(v1) == (("/c/cpu/x", "/c/memory/x"), "/c/unified/x")
    v2 = Doc({"version": "v2", "mount": "/sys/fs/cgroup", "path": "/pyrunc/x"})
    assert process._cgroup_dirs(v2) == ((), "/sys/fs/cgroup/pyrunc/x")
    assert process._cgroup_dirs(None) == ((), "")
