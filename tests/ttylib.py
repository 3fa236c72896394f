"""Terminal helpers for the tests: a --console-socket listener, and a pty pair
that plays the caller's terminal for a foreground `run`/`exec -t` or a client
(`podman run -t`, `ctr run -t`, `docker run -t`)."""

from __future__ import annotations

import array
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios
import threading
import time

DEVPTS_SUPER_MAGIC = 0x1CD1


class ConsoleListener:
    """A --console-socket receiver (what conmon or containerd's shim do): accept
    one connection, take the pty master sent with SCM_RIGHTS and read it until
    every slave is closed (EIO)."""

    def __init__(self, path: str, accept: bool = True) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(0 if not accept else 1)
        self.name = b""
        self.fds: list[int] = []
        self.master_stat: os.stat_result | None = None
        self.master_fs = 0
        self.output = b""
        self.got_master = threading.Event()
        self.thread = None
        if accept:
            self.thread = threading.Thread(target=self._serve, daemon=True)
            self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(60)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        fds = array.array("i")
        try:
            msg, anc, _flags, _addr = conn.recvmsg(1024, socket.CMSG_LEN(4 * fds.itemsize))
        finally:
            conn.close()
        self.name = msg
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        self.fds = list(fds)
        if self.fds:
            self.master_stat = os.fstat(self.fds[0])
            self.master_fs = _fs_magic(self.fds[0])
        self.got_master.set()
        for fd in self.fds:
            try:
                while chunk := os.read(fd, 4096):
                    self.output += chunk
            except OSError:
                pass  # EIO: every slave is closed
            os.close(fd)

    def wait(self, timeout: float = 30) -> bytes:
        if self.thread is not None:
            self.thread.join(timeout)
        return self.output

    def close(self) -> None:
        self.sock.close()
        if self.thread is not None:
            self.thread.join(5)


def _fs_magic(fd: int) -> int:
    """f_type of the filesystem `fd` is on (os.fstatvfs has none)."""
    from pyrunc.syscalls import fstatfs_type

    return fstatfs_type(fd)


class Result:
    def __init__(self, status: int, output: bytes, restored: bool, attrs_during: list | None) -> None:
        self.status, self.output, self.restored, self.attrs_during = status, output, restored, attrs_during

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")


def drive(argv: list[str], steps: tuple = (), rows: int = 40, cols: int = 120, timeout: float = 60,
          env: dict | None = None) -> Result:
    """Run argv with a new pty pair as its terminal (controlling tty, stdio) and
    play `steps`: each (marker, action) waits until `marker` (bytes) appeared in
    the output, then `action` is bytes to type, ("winch", rows, cols) to resize
    the terminal and send SIGWINCH as a terminal emulator does, ("raw?",) to
    record the terminal's settings while the program runs, or ("call", fn). Returns the exit
    status, everything written to the terminal, and whether the terminal's
    settings were restored at the end."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    before = termios.tcgetattr(slave)
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
            for fd in (0, 1, 2):
                os.dup2(slave, fd)
            os.closerange(3, 1024)
            os.execvpe(argv[0], argv, env if env is not None else os.environ)
        finally:
            os._exit(127)
    out = b""
    pending = list(steps)
    during = None
    status = None
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    data = os.read(master, 4096)
                except OSError as err:
                    if err.errno != errno.EIO:
                        raise
                    data = b""
                out += data
            while pending and pending[0][0] in out:
                _marker, action = pending.pop(0)
                if isinstance(action, bytes):
                    os.write(master, action)
                elif action[0] == "winch":
                    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", action[1], action[2], 0, 0))
                    os.killpg(pid, signal.SIGWINCH)
                elif action[0] == "raw?":
                    during = termios.tcgetattr(slave)
                elif action[0] == "call":
                    action[1]()
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid:
                status = os.waitstatus_to_exitcode(st)
                while select.select([master], [], [], 0.3)[0]:
                    try:
                        data = os.read(master, 4096)
                    except OSError:
                        break
                    if not data:
                        break
                    out += data
                break
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"{argv} did not finish in {timeout}s; output so far: {out!r}")
        after = termios.tcgetattr(slave)
    finally:
        os.close(master)
        os.close(slave)
    return Result(status, out, before == after, during)


def is_raw(attrs: list) -> bool:
    """Raw input as runc's console sets it: no echo, no canonical mode, no signals
    (output processing stays on: containerd/console's SetRaw keeps OPOST)."""
    return not (attrs[3] & (termios.ECHO | termios.ICANON | termios.ISIG | termios.IEXTEN)) \
        and not (attrs[0] & (termios.ICRNL | termios.IXON))
