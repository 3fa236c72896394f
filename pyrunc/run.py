"""`pyrunc run`: create + start + wait + delete, as runc.

pyrunc is made a child subreaper before init is forked, so init (whose parent,
the intermediate, exits) becomes our child and its exit status is ours:
`run` exits with the container's status, 128+N when signal N killed it.
Signals sent to pyrunc are forwarded to init while it runs (monitor.py). With
`process.terminal` in the foreground, pyrunc relays the caller's terminal to
the container's pty (ttyproxy.py) and restores it however the run ends.
"""

from __future__ import annotations

from pyrunc import fault_point, monitor
from pyrunc.create import CreateOptions, create
from pyrunc.delete import destroy, stop
from pyrunc.errors import PyruncError
from pyrunc.start import _poststart, release
from pyrunc.state import StateStore, Status
from pyrunc.verbs import GlobalOptions

FORWARDED = monitor.FORWARDED  # the signals `run` forwards (kept here for callers of the old name)


def run(store: StateStore, container_id: str, opts: CreateOptions, *, detach: bool = False,
        keep: bool = False, systemd_cgroup: bool = False, rootless: bool = False) -> int:
    if keep and detach:
        raise PyruncError("--keep and --detach cannot be used together")
    opts.detach = detach
    state = create(store, container_id, opts, systemd_cgroup=systemd_cgroup, rootless=rootless)
    relay = None
    try:
        if state.console is not None:  # a foreground terminal: the master came back to us
            relay, state.console = state.console.relay(), None
            relay.start()
        if not detach:
            monitor.forward_signals(state.pid, relay)
        with store.lock(container_id):
            release(state)
            state.status = Status.RUNNING
        fault_point("run.started")
        if state.hooks.poststart:
            _poststart(state)
    except BaseException:
        if relay is not None:
            relay.close()
        stop(state)
        destroy(store, state)
        raise
    if detach:
        return 0
    try:
        status = monitor.wait(state.pid, relay)
    except BaseException:
        stop(state)
        destroy(store, state)
        raise
    fault_point("run.exited")
    if not keep:
        state.status = Status.STOPPED
        destroy(store, state)  # kills stragglers of a shared pid namespace first
    return status


def _wait(pid: int) -> int:
    """Wait for init (monitor.wait; kept for callers of the old name)."""
    return monitor.wait(pid)


def run_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc run [--bundle B] [-d] [--keep] ID`: the container's exit code."""
    from pyrunc.create import create_options
    from pyrunc.verbs import bundle_and_id, rootless_cgroups, store

    bundle, cid = bundle_and_id(v)
    return run(store(g), cid, create_options(v, bundle), detach=bool(v.get("detach")), keep=bool(v.get("keep")),
               systemd_cgroup=g.systemd_cgroup, rootless=rootless_cgroups(g))
