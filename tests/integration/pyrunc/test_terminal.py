"""process.terminal and exec -t, with runc 1.1.5 as the oracle.

Two ways a terminal reaches its user, as with runc:
- a --console-socket listener (conmon, containerd's shim; here ttylib.ConsoleListener)
  receives the pty master and reads what the container writes: `tty`, `stty
  size` (process.consoleSize), /dev/console, the stdio fds, the controlling tty;
- in the foreground the runtime relays its own terminal, driven here through a
  pty pair (ttylib.drive): the size comes from the caller's terminal, SIGWINCH
  resizes, the terminal is raw while the container runs and restored after.
The same script runs under both runtimes and the bytes must match.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

from testlib import PYRUNC
from ttylib import DEVPTS_SUPER_MAGIC, ConsoleListener, drive, is_raw

PROBE = ("tty; stty size; ls -l /dev/console | cut -c1-10,35-43; "
         "for n in 0 1 2; do readlink /proc/self/fd/$n; done; cut -d' ' -f7 /proc/$$/stat; echo END")


def _terminal(bundle, *args: str, size: tuple[int, int] | None = (33, 77)) -> None:
    bundle.config["process"]["terminal"] = True
    if size:
        bundle.config["process"]["consoleSize"] = {"height": size[0], "width": size[1]}
    bundle.set_args(*args)


def _lines(out: bytes) -> list[str]:
    return out.decode(errors="replace").replace("\r\n", "\n").strip().split("\n")


def _nothing_left(runtime, cid: str) -> None:
    assert runtime("state", cid).returncode != 0
    assert cid not in runtime("list", "-q").stdout.decode().split()


# ---------------------------------------------------------------- --console-socket
def _run_detached(runtime, bundle, cid, tmp_path) -> tuple[ConsoleListener, list[str]]:
    """`run -d --console-socket`: the listener (with the master it got) and the lines read from it."""
    listener = ConsoleListener(str(tmp_path / "console.sock"))
    try:
        runtime("run", "-d", "--console-socket", listener.path, "-b", bundle.path, cid, check=True)
        return listener, _lines(listener.wait())
    finally:
        listener.close()
        runtime("delete", "-f", cid)


def test_console_socket_receives_the_master(runtime, bundle, cid, tmp_path):
    _terminal(bundle, "sh", "-c", PROBE)
    listener, out = _run_detached(runtime, bundle, cid, tmp_path)
    assert listener.name == b"/dev/ptmx"
    assert len(listener.fds) == 1
    assert out == ["/dev/pts/0", "33 77", "crw--w---- 136,   0", "/dev/pts/0", "/dev/pts/0", "/dev/pts/0",
                   "34816", "END"], out
    # the pty is the container's devpts instance, not the host's
    assert listener.master_fs == DEVPTS_SUPER_MAGIC
    assert listener.master_stat.st_dev != os.stat("/dev/pts/ptmx").st_dev


def test_create_start_with_console_socket(runtime, bundle, cid, tmp_path):
    _terminal(bundle, "sh", "-c", "tty; echo $TERM; id -u", size=None)
    listener = ConsoleListener(str(tmp_path / "c.sock"))
    try:
        runtime("create", "--console-socket", listener.path, "-b", bundle.path, cid, check=True)
        assert listener.got_master.wait(10), "the master came during create"
        runtime("start", cid, check=True)
        out = _lines(listener.wait())
    finally:
        listener.close()
        runtime("delete", "-f", cid)
    assert out == ["/dev/pts/0", "xterm", "0"], out


def test_console_size_of_a_non_root_process(runtime, bundle, cid, tmp_path):
    """The slave belongs to the process's user (runc fixStdioPermissions)."""
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    _terminal(bundle, "sh", "-c", "stty size; stat -c '%u %a' $(tty); echo hi > /dev/stdout")
    _listener, out = _run_detached(runtime, bundle, cid, tmp_path)
    assert out == ["33 77", "1000 620", "hi"], out


def test_exec_with_console_socket(runtime, bundle, cid, tmp_path):
    bundle.set_args("sleep", "60")
    runtime("run", "-d", "-b", bundle.path, cid, check=True)
    listener = ConsoleListener(str(tmp_path / "c.sock"))
    try:
        proc = runtime("exec", "-d", "-t", "--console-socket", listener.path, cid, "sh", "-c",
                       "tty; cut -d' ' -f7 /proc/$$/stat; ls /dev/pts | sort | tr '\\n' ' '")
        assert proc.returncode == 0, proc.stderr
        out = _lines(listener.wait())
        # the exec'd process had its own pty; once it exited, only ptmx is left in the devpts
        left = runtime("exec", cid, "ls", "/dev/pts").stdout.decode().split()
    finally:
        listener.close()
        runtime("delete", "-f", cid)
    assert out == ["/dev/pts/0", "34816", "0 ptmx"], out
    assert left == ["ptmx"], left


# ---------------------------------------------------------------- the foreground terminal
def test_foreground_run_relays_the_terminal(runtime, bundle, cid):
    # the sleep lets runc 1.1.5 make its first resize, which races with the process
    _terminal(bundle, "sh", "-c", "sleep 0.5; stty size; tty; echo READY; read x; echo GOT $x; echo SIZE; "
              "sleep 0.3; stty size; exit 3")
    res = drive([runtime.binary, "--root", runtime.root, "run", "-b", bundle.path, cid],
                steps=((b"READY", ("raw?",)), (b"READY", b"hello\r"), (b"SIZE", ("winch", 50, 132))))
    runtime.ids.add(cid)
    assert res.status == 3
    assert res.text == ("40 120\r\n/dev/pts/0\r\nREADY\r\nhello\r\nGOT hello\r\nSIZE\r\n50 132\r\n"), repr(res.text)
    assert is_raw(res.attrs_during), "the caller's terminal is raw while the container runs"
    assert res.restored, "the caller's terminal is restored after"
    _nothing_left(runtime, cid)


def test_foreground_run_signal_status_and_restore(runtime, bundle, cid):
    """A container killed by a signal: 128+N, and the terminal is restored."""
    _terminal(bundle, "sh", "-c", "echo READY; exec sleep 60")
    res = drive([runtime.binary, "--root", runtime.root, "run", "-b", bundle.path, cid],
                steps=((b"READY", ("call", lambda: runtime("kill", cid, "KILL", check=True))),))
    runtime.ids.add(cid)
    assert res.status == 137 and res.restored, (res.status, res.text)


def test_foreground_exec_tty(runtime, bundle, cid):
    bundle.set_args("sleep", "60")
    runtime("run", "-d", "-b", bundle.path, cid, check=True)
    try:
        # the sleep lets runc 1.1.5 finish its own raw-mode switch and first resize,
        # which race with the process there (pyrunc does both before the process runs)
        res = drive([runtime.binary, "--root", runtime.root, "exec", "-t", cid, "sh", "-c",
                     "sleep 0.5; stty size; tty; echo READY; read x; echo GOT $x; echo SIZE; sleep 0.3; "
                     "stty size; exit 5"],
                    steps=((b"READY", ("raw?",)), (b"READY", b"abc\r"), (b"SIZE", ("winch", 30, 90))))
        procs = runtime("exec", cid, "ps", "-o", "comm=").stdout.decode().split()
    finally:
        runtime("delete", "-f", cid)
    assert res.status == 5, res.text
    assert res.text == "40 120\r\n/dev/pts/0\r\nREADY\r\nabc\r\nGOT abc\r\nSIZE\r\n30 90\r\n", repr(res.text)
    assert is_raw(res.attrs_during) and res.restored
    assert procs == ["sleep", "ps"], procs


def test_pyrunc_exec_tty_has_the_size_from_its_first_instruction(pyrunc, bundle, cid):
    """No race: the pty has the caller's size and the caller's terminal is raw
    before the process runs (runc 1.1.5 shows consoleSize and cooked output
    for a moment)."""
    bundle.config["process"]["consoleSize"] = {"height": 10, "width": 20}
    bundle.set_args("sleep", "60")
    pyrunc("run", "-d", "-b", bundle.path, cid, check=True)
    try:
        res = drive([PYRUNC, "--root", pyrunc.root, "exec", "-t", cid, "stty", "size"], rows=44, cols=99)
    finally:
        pyrunc("delete", "-f", cid)
    assert res.status == 0 and res.text == "44 99\r\n", repr(res.text)


def test_foreground_terminal_without_size_uses_console_size(pyrunc, bundle, cid):
    _terminal(bundle, "stty", "size", size=(12, 34))
    res = drive([PYRUNC, "--root", pyrunc.root, "run", "-b", bundle.path, cid], rows=0, cols=0)
    pyrunc.ids.add(cid)
    assert res.status == 0 and res.text == "12 34\r\n", repr(res.text)


def test_forwarded_signal(runtime, bundle, cid):
    """SIGTERM to the runtime reaches the container; the relay survives it."""
    _terminal(bundle, "sh", "-c", "trap 'echo TERM; exit 7' TERM; echo READY; while :; do sleep 0.1; done")
    proc = {}
    res = drive([runtime.binary, "--root", runtime.root, "run", "-b", bundle.path, cid],
                steps=((b"READY", ("call", lambda: _signal_runtime(runtime, bundle, proc))),), timeout=60)
    runtime.ids.add(cid)
    assert res.status == 7 and "TERM" in res.text, (res.status, res.text)


def _signal_runtime(runtime, bundle, proc) -> None:
    """SIGTERM the `run` process of this bundle (the child of drive's fork)."""
    out = subprocess.run(["pgrep", "-f", f"{runtime.root} run -b {bundle.path}"], capture_output=True, text=True)
    for pid in out.stdout.split():
        os.kill(int(pid), signal.SIGTERM)


# ---------------------------------------------------------------- refusals: one line, nothing left
def _one_line_failure(proc, needle: str) -> None:
    assert proc.returncode != 0
    err = proc.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and needle in err, err


@pytest.mark.parametrize("verb", ["run", "create"])
def test_detached_terminal_needs_a_console_socket(runtime, bundle, cid, verb):
    _terminal(bundle, "true")
    args = (verb, "-d") if verb == "run" else (verb,)
    _one_line_failure(runtime(*args, "-b", bundle.path, cid),
                      "cannot allocate tty if " + runtime.name + " will detach without setting console socket")
    _nothing_left(runtime, cid)


def test_console_socket_without_a_terminal_or_in_the_foreground(runtime, bundle, cid, tmp_path):
    bundle.set_args("true")
    listener = ConsoleListener(str(tmp_path / "c.sock"), accept=False)
    try:
        msg = "cannot use console socket if " + runtime.name + " will not detach or allocate tty"
        _one_line_failure(runtime("run", "-d", "--console-socket", listener.path, "-b", bundle.path, cid), msg)
        _terminal(bundle, "true")
        _one_line_failure(runtime("run", "--console-socket", listener.path, "-b", bundle.path, cid), msg)
    finally:
        listener.close()
    _nothing_left(runtime, cid)


def _full_listener(path: str) -> list:
    """A listener at `path` that never accepts, its queue already full (the sockets to close)."""
    import socket

    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(0)
    held = [listener]
    for _ in range(4):
        c = socket.socket(socket.AF_UNIX)
        c.setblocking(False)
        try:
            c.connect(path)
        except BlockingIOError:
            c.close()
            break
        held.append(c)
    return held


@pytest.mark.parametrize("kind", ["missing", "not-a-socket", "no-listener", "never-accepts"])
def test_bad_console_socket(runtime, bundle, cid, tmp_path, kind):
    import socket

    _terminal(bundle, "true")
    path = str(tmp_path / "c.sock")
    held = []
    if kind == "not-a-socket":
        open(path, "w").close()
    elif kind == "no-listener":
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        held.append(s)
    elif kind == "never-accepts":
        held += _full_listener(path)
    try:
        proc = runtime("create", "--console-socket", path, "-b", bundle.path, cid, timeout=30)
    finally:
        for s in held:
            s.close()
    assert proc.returncode != 0, proc.stdout
    err = proc.stderr.decode().strip()
    assert len(err.splitlines()) == 1 and path in err, err
    _nothing_left(runtime, cid)


def test_foreground_terminal_with_stdin_closed(pyrunc, bundle, cid):
    """pyrunc refuses in one line (runc relays nothing in then); nothing is made."""
    _terminal(bundle, "true")
    master, slave = os.openpty()
    try:
        proc = subprocess.run(f"exec 0<&- {PYRUNC} --root {pyrunc.root} run -b {bundle.path} {cid}",
                              shell=True, stdout=slave, stderr=subprocess.PIPE, timeout=30)
    finally:
        os.close(master)
        os.close(slave)
    pyrunc.ids.add(cid)
    err = proc.stderr.decode().strip()
    assert proc.returncode == 1 and len(err.splitlines()) == 1 and "stdin is closed" in err, err
    _nothing_left(pyrunc, cid)


def test_foreground_terminal_without_any_terminal(runtime, bundle, cid):
    """No terminal on stdio and no controlling terminal: both refuse (open /dev/tty)."""
    _terminal(bundle, "true")
    proc = subprocess.run([runtime.binary, "--root", runtime.root, "run", "-b", bundle.path, cid],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          start_new_session=True, timeout=30)
    runtime.ids.add(cid)
    assert proc.returncode != 0
    assert b"/dev/tty" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    _nothing_left(runtime, cid)


@pytest.mark.parametrize("flags", [("-t", "-d"), ("-d", "--tty"), ("--detach", "-t")])
def test_exec_detached_tty_needs_a_socket(runtime, bundle, cid, flags):
    bundle.set_args("sleep", "60")
    runtime("run", "-d", "-b", bundle.path, cid, check=True)
    try:
        proc = runtime("exec", *flags, cid, "true")
        procs = runtime("exec", cid, "ps", "-o", "comm=").stdout.decode().split()
    finally:
        runtime("delete", "-f", cid)
    assert proc.returncode == 255
    assert re.search(r"cannot allocate tty if \w+ will detach without setting console socket", proc.stderr.decode())
    assert procs == ["sleep", "ps"]


def test_exec_tty_failure_leaves_no_pty_and_no_process(runtime, bundle, cid, tmp_path):
    """A failing exec -t (cwd missing): 255, nothing left in the container, its
    devpts holds no pty."""
    bundle.set_args("sleep", "60")
    runtime("run", "-d", "-b", bundle.path, cid, check=True)
    listener = ConsoleListener(str(tmp_path / "c.sock"))
    try:
        proc = runtime("exec", "-d", "-t", "--console-socket", listener.path, "--cwd", "/nonexistent", cid, "true")
        ptys = runtime("exec", cid, "ls", "/dev/pts").stdout.decode().split()
        procs = runtime("exec", cid, "ps", "-o", "comm=").stdout.decode().split()
    finally:
        listener.close()
        runtime("delete", "-f", cid)
    assert proc.returncode == 255, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert ptys == ["ptmx"] and procs == ["sleep", "ps"], (ptys, procs)


def test_foreground_terminal_restored_when_start_fails(runtime, bundle, cid):
    """A failure after the terminal went raw (a startContainer hook fails): the
    run fails, the container is gone and the caller's terminal is restored."""
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    _terminal(bundle, "true")
    res = drive([runtime.binary, "--root", runtime.root, "run", "-b", bundle.path, cid], timeout=60)
    runtime.ids.add(cid)
    assert res.status != 0 and res.restored, (res.status, res.text)
    _nothing_left(runtime, cid)


@pytest.mark.parametrize("case", ["socket-missing", "socket-never-accepts", "stdin-closed", "missing-cwd",
                                  "unknown-user", "missing-binary"])
def test_exec_tty_bad_input(runtime, bundle, cid, tmp_path, case):
    """One line, non-zero, no process left in the container, no pty left in its devpts."""
    if case == "stdin-closed" and runtime.name == "runc":
        pytest.skip("runc 1.1.5 relays nothing in and runs (pyrunc refuses)")
    bundle.set_args("sleep", "60")
    runtime("run", "-d", "-b", bundle.path, cid, check=True)
    held = []
    path = str(tmp_path / "c.sock")
    try:
        if case == "socket-never-accepts":
            held += _full_listener(path)
        listener = None if case.startswith("socket") or case == "stdin-closed" else ConsoleListener(path)
        args = {"socket-missing": ("-d", "-t", "--console-socket", path, cid, "true"),
                "socket-never-accepts": ("-d", "-t", "--console-socket", path, cid, "true"),
                "missing-cwd": ("-d", "-t", "--console-socket", path, "--cwd", "/nonexistent", cid, "true"),
                "unknown-user": ("-d", "-t", "--console-socket", path, "--user", "nobody", cid, "true"),
                "missing-binary": ("-d", "-t", "--console-socket", path, cid, "/nonexistent")}
        if case == "stdin-closed":
            master, slave = os.openpty()
            try:
                proc = subprocess.run(f"exec 0<&- {runtime.binary} --root {runtime.root} exec -t {cid} true",
                                      shell=True, stdout=slave, stderr=subprocess.PIPE, timeout=30)
            finally:
                os.close(master)
                os.close(slave)
        else:
            proc = runtime("exec", *args[case], timeout=30)
        if listener is not None:
            listener.close()
        ptys = runtime("exec", cid, "ls", "/dev/pts").stdout.decode().split()
        procs = runtime("exec", cid, "ps", "-o", "comm=").stdout.decode().split()
    finally:
        for s in held:
            s.close()
        runtime("delete", "-f", cid)
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert ptys == ["ptmx"] and procs == ["sleep", "ps"], (ptys, procs)
