"""pybuild exec, with podman as the oracle: the same flags and exit codes, the bad input of
issue 16 (one line, non-zero, nothing changed); `exec -it` through a real pty pair (the pty
module), `exec -d`."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import time

import pytest

from netlib import Pb, free_port
from podmanlib import (SLEEP, ULIMITS, add_data, busybox_pb, container_id as _cid, one_line, podman,  # noqa: F401
                       podman_images, tar_of)
from test_build_common import make_busybox_rootfs, needs_busybox, needs_root

pytestmark = [needs_root, needs_busybox]


def _codes(runner, name: str, cases) -> list[int]:
    return [runner("exec", *opts, name, *cmd).returncode for opts, cmd in cases]


EXEC_CASES = [((), ("sh", "-c", "exit 3")), ((), ("nope",)), ((), ("true",)),
              (("-w", "/nonexistent"), ("pwd",)), (("-u", "app"), ("true",))]


def test_exec_exit_codes_and_options_as_podman(pb, podman):
    pb("run", "-d", "--name", "c1", "--network", "none", "busybox", *SLEEP)
    theirs = podman.run_d("--network", "none")
    mine = _codes(lambda *a: pb(*a, check=False), "c1", EXEC_CASES)
    assert mine == _codes(podman, theirs, EXEC_CASES) == [3, 127, 0, 127, 0]
    for opts, cmd in ((("-u", "app"), ("id",)), (("-u", "app:staff"), ("id",)), (("-u", "1000"), ("id", "-G")),
                      (("-w", "/tmp", "-e", "A=1", "-e", "PATH=/bin"), ("sh", "-c", "pwd; echo $A $PATH")),
                      ((), ("sh", "-c", "echo err >&2; echo out"))):
        got, want = pb("exec", *opts, "c1", *cmd), podman("exec", *opts, theirs, *cmd)
        assert (got.stdout, got.stderr) == (want.stdout, want.stderr), (opts, cmd)
    # stdin only with -i
    assert pb("exec", "-i", "c1", "cat", input="hello\n").stdout == "hello\n"
    assert pb("exec", "c1", "cat", input="hello\n").stdout == ""
    # a command that never starts: one line from the runtime's reason, podman's code
    line = one_line(pb("exec", "c1", "nope", check=False))
    assert "nope" in line and "not found" in line


def test_exec_not_executable_is_126(pb, podman, tmp_path):
    """podman's 126 for a file that cannot be executed, checked with runc as the container's runtime
    (and with pyrunc below)."""
    theirs = podman.run_d("--network", "none")
    assert podman("exec", theirs, "/etc/passwd").returncode == 126
    pb("--runtime", "runc", "run", "-d", "--name", "r", "--network", "none", "busybox", *SLEEP)
    res = pb("exec", "r", "/etc/passwd", check=False)
    assert res.returncode == 126 and "permission denied" in one_line(res)


def test_exec_not_executable_is_126_with_pyrunc(pb):
    pb("run", "-d", "--name", "p", "--network", "none", "busybox", *SLEEP)
    assert pb("exec", "p", "/etc/passwd", check=False).returncode == 126


def test_exec_bad_input_one_line_nothing_changed(pb, podman):
    pb("run", "-d", "--name", "c1", "--network", "none", "busybox", *SLEEP)
    home = os.path.join(pb.root, "containers")

    def state() -> dict:
        return {d: sorted(os.listdir(os.path.join(home, d))) for d in os.listdir(home) if len(d) == 64}

    before = state()
    assert podman("exec", "nosuch-pbt16", "true").returncode == 125
    for args, needle in ((("nosuch", "true"), "no such container: nosuch"),
                         (("-u", "nobody-here", "c1", "id"), "unable to find user nobody-here"),
                         (("-w", "relative", "c1", "pwd"), "must be an absolute path"),
                         (("-e", "=x", "c1", "true"), "expected KEY=VALUE"),
                         (("-d", "-i", "c1", "true"), "-d and -i cannot be used together")):
        res = pb("exec", *args, check=False)
        assert res.returncode == 125 and needle in one_line(res), (args, res.stderr)
    assert state() == before
    # a stopped container: podman says "container state improper"; ours names the state
    pb("kill", "c1")
    pb("wait", "c1")
    res = pb("exec", "c1", "true", check=False)
    assert res.returncode == 125 and "is not running (it is exited)" in one_line(res)


def _through_pty(argv: list[str], keys: bytes, rows: int = 33, cols: int = 101, env: dict | None = None):
    """Run argv on the slave of a new pty (its controlling terminal), type `keys`, return
    (output, exit status)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def session() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, preexec_fn=session, close_fds=True,
                            env=env)
    os.close(slave)
    out = b""
    sent = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the last slave fd closed
                break
            if not chunk:
                break
            out += chunk
        if not sent and (b"# " in out or b"not supported" in out or proc.poll() is not None):
            os.write(master, keys)
            sent = True
        if proc.poll() is not None and not ready:
            break
    os.close(master)
    return out.decode(errors="replace"), proc.wait(timeout=30)


TTY_KEYS = b"tty; stty size; echo $((6*7)); exit 5\r"


@pytest.mark.parametrize("runtime", ["runc", "pyrunc"])
def test_exec_it_through_a_pty(pb, runtime):
    if shutil.which(runtime) is None and runtime == "runc":
        pytest.skip("runc is not installed")
    pb("--runtime", runtime, "run", "-d", "--name", "t", "--network", "none", "busybox", *SLEEP)
    out, code = _through_pty([sys.executable, "-m", "pybuild", "--root", pb.root, "exec", "-it", "t", "sh"], TTY_KEYS,
                             env=pb.env)
    lines = [line.strip() for line in out.splitlines()]
    assert "/dev/pts/0" in lines and "33 101" in lines and "42" in lines, out
    assert code == 5


def test_exec_it_as_podman_through_a_pty(podman):
    theirs = podman.run_d("--network", "none")
    out, code = _through_pty(["podman", "exec", "-it", theirs, "sh"], TTY_KEYS)
    lines = [line.strip() for line in out.splitlines()]
    assert "33 101" in lines and "42" in lines and code == 5, out  # what the test above expects of pybuild


def test_exec_detached(pb):
    pb("run", "-d", "--name", "c1", "--network", "none", "busybox", *SLEEP)
    start = time.monotonic()
    res = pb("exec", "-d", "c1", "sh", "-c", "sleep 4; echo done > /tmp/marker")
    assert res.stdout == "" and time.monotonic() - start < 4  # it did not wait for the process
    assert pb("exec", "c1", "cat", "/tmp/marker", check=False).returncode != 0
    for _ in range(100):
        if pb("exec", "c1", "cat", "/tmp/marker", check=False).stdout == "done\n":
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the detached exec never ran to its end")
    assert pb("exec", "-d", "c1", "nope", check=False).returncode == 127
    assert not [n for n in os.listdir(os.path.join(pb.root, "containers", _cid(pb, "c1"))) if "exec" in n]
