"""Waiting for, signalling and killing the processes pyrunc started: one place for run, exec and create.

`run` and `exec` without -d stay in the foreground: they are the child
subreaper, so the process (init, or the exec'd process, whose parent was the
intermediate) becomes their child; signals sent to pyrunc are forwarded to it;
its exit status becomes pyrunc's, 128+N when signal N killed it (runc). With a
foreground terminal (ttyproxy.Relay) the caller's stdio is relayed until the
process exits, and SIGWINCH resizes the pty instead of being forwarded (runc
signals.go).
"""

from __future__ import annotations

import os
import _signal as signal  # not `signal`: its enum conversions cost ms per run

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.ttyproxy import Relay

FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGALRM, signal.SIGCONT, signal.SIGTSTP, signal.SIGTTIN,
             signal.SIGTTOU, signal.SIGWINCH, signal.SIGPIPE, signal.SIGVTALRM, signal.SIGPROF,
             signal.SIGIO, signal.SIGPWR, signal.SIGSYS, signal.SIGXCPU, signal.SIGXFSZ)


def forward_signals(pid: int, relay: Relay | None = None) -> None:
    """Forward the signals a runtime forwards to `pid`; with a foreground
    terminal SIGWINCH resizes the pty instead."""
    for sig in FORWARDED:
        signal.signal(sig, lambda n, _f: _forward(pid, n))
    if relay is not None:
        signal.signal(signal.SIGWINCH, lambda _n, _f: relay.resize())


def _forward(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass  # it just exited; wait() collects its status


def kill(pid: int, reap: bool = True) -> None:
    """SIGKILL `pid` (and reap it when it is our child); gone already is fine."""
    try:
        os.kill(pid, 9)
        if reap:
            os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass  # already gone / not our child: nothing left to reap


def reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # already reaped (by a SIGCHLD handler of an embedding program)


def wait(pid: int, relay: Relay | None = None) -> int:
    """The exit code of `pid` (128+N for signal N); reaps orphans reparented
    to us on the way. With a relay, the terminal is relayed until the exit
    and restored before this returns."""
    if relay is not None:
        from pyrunc import syscalls as s

        try:
            pidfd = s.pidfd_open(pid)
        except ProcessLookupError:
            pidfd = -1
        try:
            if pidfd >= 0:
                relay.run(pidfd)
        finally:
            if pidfd >= 0:
                os.close(pidfd)
            relay.close()
    while True:
        try:
            wpid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if wpid == pid:
            break
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    code = os.WEXITSTATUS(status)
    _reap_orphans()
    return code


def _reap_orphans() -> None:
    while True:
        try:
            wpid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if wpid == 0:
            return
