"""`pyrunc kill [--all] ID [SIGNAL]`: signal init through a pidfd.

The pidfd is opened and the pid's start time checked afterwards, so a pid
that was recycled since the container stopped is never signalled.
"""

from __future__ import annotations

import os
import _signal  # not `signal`: its enum conversions cost ms per kill

from pyrunc.errors import InvalidState, PyruncError
from pyrunc.state import State, StateStore, Status, proc_start_time
from pyrunc.verbs import GlobalOptions


def parse_signal(text: str) -> int:
    """runc accepts 9, KILL and SIGKILL (any case)."""
    if text.isdigit():
        num = int(text)
        if 0 < num < _signal.NSIG:
            return num
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        if not name.startswith("SIG_") and isinstance(getattr(_signal, name, None), int):
            return getattr(_signal, name)
    raise PyruncError(f"unknown signal {text!r}")


def kill(store: StateStore, container_id: str, sig: int, all_processes: bool = False) -> None:
    state = store.load(container_id)
    if all_processes:
        if not state.cgroup:
            raise PyruncError("kill --all: the container has no cgroup")
        from pyrunc.cgroups import load_manager

        load_manager(state.cgroup).kill_all(sig)
        return
    if state.status is Status.STOPPED:
        raise InvalidState("container not running")
    signal_init(state, sig)


def signal_init(state: State, sig: int) -> bool:
    """Signal init if it is still the same process; False if it is gone."""
    try:
        pidfd = os.pidfd_open(state.pid)  # os/_signal, not syscalls: no ctypes import (~1.6 ms)
    except ProcessLookupError:
        return False
    try:
        if proc_start_time(state.pid) != state.pid_start:
            return False
        _signal.pidfd_send_signal(pidfd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)


def kill_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc kill [-a] ID [SIGNAL]`."""
    from pyrunc.verbs import store

    kill(store(g), v["container_id"], parse_signal(v.get("signal") or "SIGTERM"), bool(v.get("all")))
    return 0
