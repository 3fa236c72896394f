"""The host side of `process.terminal`: where the pty master goes, chosen as runc does.

runc's rules (utils_linux.go checkTerminal/setupIO), for create, run and exec:
- detached (create, `run -d`, `exec -d`) with a terminal needs --console-socket:
  the runtime connects to it before anything is made, and the container's
  init (or exec process) sends the master there (tty.py);
- in the foreground (`run`, `exec` without -d) a terminal is pyrunc's own: the
  master comes back over a socketpair and ttyproxy.py relays it to the
  caller's terminal; --console-socket is then refused, as it is without a
  terminal.

A socket that does not exist, is not a socket or has no listener fails here,
in one line, before any process or pty exists.
"""

from __future__ import annotations

import _socket  # not `socket`: its enum/selectors imports cost ms on the hot path
import errno
import os
import struct

from pyrunc.errors import ChildError, PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.spec import Process

_SOL_SOCKET, _SCM_RIGHTS = 1, 1


class Console:
    """What the process entering the container needs: the socket to send the
    master on (an fd it inherits), and the size to give the pty."""

    __slots__ = ("child_fd", "rows", "cols", "parent", "host")

    def __init__(self, child_fd: int, rows: int, cols: int, parent: _socket.socket | None = None,
                 host: object = None) -> None:
        self.child_fd = child_fd
        self.rows = rows
        self.cols = cols
        self.parent = parent  # foreground only: our end of the socketpair
        self.host = host      # foreground only: the caller's terminal (ttyproxy.HostConsole)

    def sent(self) -> None:
        """The child has its copy: close ours of the socket it writes to."""
        if self.child_fd >= 0:
            os.close(self.child_fd)
            self.child_fd = -1

    def close(self) -> None:
        """Release everything; a master still queued on the pair is freed with it."""
        self.sent()
        if self.parent is not None:
            self.parent.close()
            self.parent = None
        if self.host is not None:
            self.host.restore()
            self.host = None

    def relay(self):
        """The foreground relay: the master received, our sockets closed."""
        from pyrunc.ttyproxy import Relay

        try:
            master = self.receive_master()
        except BaseException:
            self.close()
            raise
        host, self.host = self.host, None
        self.close()
        return Relay(master, host)

    def receive_master(self) -> int:
        """The master, which the child sent before it reported ready."""
        assert self.parent is not None
        try:
            _data, anc, _flags, _addr = self.parent.recvmsg(64, _socket.CMSG_SPACE(struct.calcsize("i")),
                                                            _socket.MSG_DONTWAIT)
        except BlockingIOError:
            raise ChildError("terminal: the container did not send its pty master") from None
        fds = [fd for level, kind, data in anc if level == _SOL_SOCKET and kind == _SCM_RIGHTS
               for fd in struct.unpack(f"{len(data) // 4}i", data[: len(data) - len(data) % 4])]
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise ChildError("terminal: the container did not send its pty master")
        os.set_inheritable(fds[0], False)
        return fds[0]


def console_size(proc: Process) -> tuple[int, int]:
    """process.consoleSize as runc applies it (uint16 each; both or nothing)."""
    size = proc.console_size
    if size is None:
        return 0, 0
    rows, cols = size.height & 0xFFFF, size.width & 0xFFFF
    return (rows, cols) if rows and cols else (0, 0)


def plan(proc: Process, socket_path: str | None, detach: bool) -> Console | None:
    """runc's checks, then the console: a connected --console-socket, a
    foreground pair (with the caller's terminal found and checked first), or
    None without a terminal. In the foreground the caller's terminal size
    wins over process.consoleSize, as runc resizes the pty to it."""
    if detach and proc.terminal and not socket_path:
        raise PyruncError("cannot allocate tty if pyrunc will detach without setting console socket")
    if (not detach or not proc.terminal) and socket_path:
        raise PyruncError("cannot use console socket if pyrunc will not detach or allocate tty")
    if not proc.terminal:
        return None
    rows, cols = console_size(proc)
    if detach:
        return Console(connect(socket_path or ""), rows, cols)
    from pyrunc.ttyproxy import HostConsole

    host = HostConsole.find()
    host_rows, host_cols = host.size()
    if host_rows and host_cols:
        rows, cols = host_rows, host_cols
    parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    return Console(child.detach(), rows, cols, parent, host)


def connect(path: str) -> int:
    """An fd connected to the console socket at `path` (close-on-exec).

    Non-blocking connect: a listener whose queue is full (one that never
    accepts) is an error now, not a hang."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.connect(path)
        sock.setblocking(True)
    except OSError as err:
        sock.close()
        if isinstance(err, (BlockingIOError, InterruptedError)) or err.errno == errno.EAGAIN:
            reason = "the listener does not accept connections"
        else:
            reason = (err.strerror or str(err)).lower()
        raise PyruncError(f"--console-socket {path}: connect: {reason}") from None
    return sock.detach()
