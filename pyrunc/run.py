"""`pyrunc run`: create + start + wait + delete, as runc.

pyrunc is made a child subreaper before init is forked, so init (whose parent,
the intermediate, exits) becomes our child and its exit status is ours:
`run` exits with the container's status, 128+N when signal N killed it.
Signals sent to pyrunc are forwarded to init while it runs.
"""

from __future__ import annotations

import os
import _signal as signal  # not `signal`: its enum conversions cost ms per run

from pyrunc.create import CreateOptions, create
from pyrunc.delete import destroy, stop
from pyrunc.errors import PyruncError
from pyrunc.start import _poststart, release
from pyrunc.state import StateStore, Status

FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGALRM, signal.SIGCONT, signal.SIGTSTP, signal.SIGTTIN,
             signal.SIGTTOU, signal.SIGWINCH, signal.SIGPIPE, signal.SIGVTALRM, signal.SIGPROF,
             signal.SIGIO, signal.SIGPWR, signal.SIGSYS, signal.SIGXCPU, signal.SIGXFSZ)


def run(store: StateStore, container_id: str, opts: CreateOptions, *, detach: bool = False,
        keep: bool = False, systemd_cgroup: bool = False, rootless: bool = False) -> int:
    if keep and detach:
        raise PyruncError("--keep and --detach cannot be used together")
    state = create(store, container_id, opts, systemd_cgroup=systemd_cgroup, rootless=rootless)
    try:
        if not detach:
            for sig in FORWARDED:
                signal.signal(sig, lambda n, _f: _forward(state.pid, n))
        with store.lock(container_id):
            release(state)
            state.status = Status.RUNNING
        if state.hooks.get("poststart"):
            _poststart(state)
    except BaseException:
        stop(state)
        destroy(store, state)
        raise
    if detach:
        return 0
    status = _wait(state.pid)
    if not keep:
        state.status = Status.STOPPED
        destroy(store, state)  # kills stragglers of a shared pid namespace first
    return status


def _forward(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass  # it just exited; _wait collects its status


def _wait(pid: int) -> int:
    """Wait for init; reap any orphan reparented to us on the way."""
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

