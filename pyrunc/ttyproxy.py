"""The foreground terminal: `pyrunc run` / `pyrunc exec -t` without -d, as runc's tty.go.

pyrunc holds the pty master (sent back by the container over a socketpair,
consolesock.py), puts the caller's terminal in raw mode, relays its stdin to
the master and the master to its stdout, and resizes the pty to the caller's
terminal on SIGWINCH (the kernel then signals the container's foreground
process group; SIGWINCH itself is not forwarded). The caller's terminal is
restored on every way out: the process exits, a signal ends it, an error.

The caller's terminal is the first of stderr, stdout, stdin that is a
terminal, else /dev/tty (runc's initHostConsole). Its size is given to the pty
when it is made (tty.setup), so the process sees it from its first
instruction; process.consoleSize applies when the caller's terminal has no size.
"""

from __future__ import annotations

import errno
import os
import select
import termios

from pyrunc import tty
from pyrunc.errors import PyruncError

_CHUNK = 65536
_QUIET_MS = 100  # after the process exits: how long a still-open slave may stay silent


class HostConsole:
    """The caller's terminal, raw while the container runs, restored after."""

    __slots__ = ("fd", "own", "saved")

    def __init__(self, fd: int, own: bool) -> None:
        self.fd, self.own, self.saved = fd, own, None

    @classmethod
    def find(cls) -> "HostConsole":
        """Refuse, before anything is made, what cannot be a foreground terminal."""
        try:
            os.fstat(0)
        except OSError:
            raise PyruncError("terminal: stdin is closed; a foreground terminal needs one "
                              "(or run detached with --console-socket)") from None
        for fd in (2, 1, 0):
            if os.isatty(fd):
                return cls(fd, False)
        try:
            fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as err:
            raise PyruncError(f"terminal: stdin, stdout and stderr are not terminals and there is no "
                              f"controlling terminal: open /dev/tty: {(err.strerror or '').lower()}") from None
        return cls(fd, True)

    def size(self) -> tuple[int, int]:
        try:
            return tty.size_of(self.fd)
        except OSError:
            return 0, 0

    def make_raw(self) -> None:
        """cfmakeraw, but output processing (OPOST) stays on, as containerd/console's
        SetRaw that runc uses: the container's pty sends "\\n" (ONLCR cleared on
        the master, Relay.start) and the caller's terminal turns it into "\\r\\n"."""
        self.saved = termios.tcgetattr(self.fd)
        new = [list(x) if isinstance(x, list) else x for x in self.saved]
        new[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR
                    | termios.IGNCR | termios.ICRNL | termios.IXON)
        new[1] |= termios.OPOST
        new[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
        new[2] = (new[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        new[6][termios.VMIN] = 1
        new[6][termios.VTIME] = 0
        termios.tcsetattr(self.fd, termios.TCSANOW, new)

    def restore(self) -> None:
        if self.saved is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSANOW, self.saved)
            except termios.error:
                pass  # the terminal went away (hangup): nothing left to restore
            self.saved = None
        if self.own:
            os.close(self.fd)
            self.own = False


class Relay:
    """Copies between the caller's stdio and the pty master until the process exits."""

    __slots__ = ("master", "host", "stdin_open", "pending")

    def __init__(self, master: int, host: HostConsole) -> None:
        self.master, self.host = master, host
        self.stdin_open = True
        self.pending = b""  # caller's input the pty has not taken yet

    def start(self) -> None:
        """Raw mode on the caller's terminal, as runc (tty.go). The pty's -onlcr was set
        by the child before the process ran (tty.clear_onlcr), so the bytes reaching the
        caller's stdout are runc's from the first: "\\n" where the container wrote "\\n"."""
        os.set_blocking(self.master, False)
        self.host.make_raw()

    def resize(self) -> None:
        rows, cols = self.host.size()
        if rows and cols:
            try:
                tty.set_size(self.master, rows, cols)
            except OSError:
                pass  # the pty is gone: the process is exiting

    def close(self) -> None:
        """Restore the caller's terminal and drop the master: on every path."""
        try:
            self.host.restore()
        finally:
            if self.master >= 0:
                os.close(self.master)
                self.master = -1

    def run(self, pidfd: int) -> None:
        """Relay until `pidfd` reports the process's exit, then drain the master."""
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.register(0, select.POLLIN)
        master_events = select.POLLIN
        poller.register(self.master, master_events)
        while True:
            for fd, events in poller.poll():
                if fd == pidfd:
                    self._drain()
                    return
                if fd == 0:
                    if not self._read_stdin():
                        poller.unregister(0)
                elif fd == self.master and master_events:
                    if events & select.POLLOUT:
                        self._input(b"")
                    if events & (select.POLLIN | select.POLLHUP | select.POLLERR) and self._output() is None:
                        poller.unregister(self.master)  # every slave is closed; the exit comes next
                        master_events = 0
            if master_events:
                wanted = select.POLLIN | (select.POLLOUT if self.pending else 0)
                if wanted != master_events:
                    poller.modify(self.master, wanted)
                    master_events = wanted

    def _read_stdin(self) -> bool:
        try:
            data = os.read(0, _CHUNK)
        except OSError:
            data = b""
        if not data:  # EOF: the container keeps running, as with runc
            self.stdin_open = False
            return False
        self._input(data)
        return True

    def _input(self, data: bytes) -> None:
        self.pending += data
        while self.pending:
            try:
                n = os.write(self.master, self.pending)
            except BlockingIOError:
                return
            except OSError:
                self.pending = b""  # the slave side is gone
                return
            self.pending = self.pending[n:]

    def _output(self) -> int | None:
        """Copy what the master has; None when every slave is closed (EIO)."""
        total = 0
        while True:
            try:
                data = os.read(self.master, _CHUNK)
            except BlockingIOError:
                return total
            except OSError as err:
                if err.errno == errno.EIO:
                    return None
                raise
            if not data:
                return None
            _write_all(1, data)
            total += len(data)

    def _drain(self) -> None:
        """What the process wrote before it exited: until every slave is closed
        (EIO), or until the pty stays quiet (another process still holds it)."""
        poller = select.poll()
        poller.register(self.master, select.POLLIN)
        while True:
            if self._output() is None:
                return
            if not poller.poll(_QUIET_MS):
                return


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except OSError as err:
            if err.errno == errno.EPIPE:
                return  # the reader went away; the container runs on, as with runc
            raise
        view = view[n:]
