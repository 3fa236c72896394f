"""`pyrunc delete [-f] ID`: kill (with -f), destroy the cgroup, run poststop
hooks, remove the state dir.

A stopped container is destroyed; a created one (or any with -f) is killed
first. A container whose create was killed reads as stopped (state.py): its
pre-state names init (killed here if it is somehow still there) and the
cgroups that create was making, and those go like any other. An unknown ID
with -f is not an error (runc).
"""

from __future__ import annotations

import os
import select
import _signal  # not `signal`: its enum conversions cost ms

from pyrunc import fault_point
from pyrunc.errors import ContainerNotFound, InvalidState, PyruncError
from pyrunc.state import CorruptState, State, StateStore, Status
from pyrunc.verbs import GlobalOptions


def delete(store: StateStore, container_id: str, force: bool = False) -> None:
    store.dir_of(container_id)  # the ID is checked before anything is touched
    store.sweep_staging()
    try:
        state = store.load(container_id)
    except ContainerNotFound:
        path = store.dir_of(container_id)
        if os.path.isdir(path):
            store.remove(container_id)  # left by an older pyrunc's create that died
            return
        if force:
            return
        raise
    except CorruptState as err:
        if not force:
            raise
        from pyrunc import logs

        logs.warning(f"{err}: its cgroups and processes are unknown; removing the state only")
        store.remove(container_id)
        return
    with store.lock(container_id):
        if state.status is Status.CREATING:  # its create still runs: killing that is not ours to do
            raise InvalidState(f"cannot delete container {container_id}: it is being created "
                               f"(pyrunc create, pid {state.creator_pid})")
        if state.status in (Status.RUNNING, Status.PAUSED) and not force:
            raise InvalidState(f"cannot delete container {container_id} that is not stopped: {state.status}")
        if state.pid:
            stop(state)  # a no-op unless init (same pid and start time) is still there
        fault_point("delete.stopped")
        destroy(store, state)


def stop(state: State, timeout: float = 10.0) -> None:
    """SIGKILL init and wait until it is gone (thawing a paused container so
    the signal can be delivered)."""
    from pyrunc.state import proc_start_time

    try:
        pidfd = os.pidfd_open(state.pid)  # os/_signal, not syscalls: no ctypes import (~1.6 ms)
    except ProcessLookupError:
        return
    try:
        if proc_start_time(state.pid) != state.pid_start:
            return
        _signal.pidfd_send_signal(pidfd, 9)
        if state.status is Status.PAUSED:
            from pyrunc.cgroups import load_manager

            load_manager(state.cgroup).thaw()
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(int(timeout * 1000)):
            raise PyruncError(f"container {state.id}: init (pid {state.pid}) did not die after SIGKILL")
        _reap_if_child(state.pid)
    finally:
        os.close(pidfd)


def _reap_if_child(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # not our child (create's parent exited): its new parent reaps it


def destroy(store: StateStore, state: State) -> None:
    """Remove the container's cgroups, run poststop hooks, remove the state.

    As runc's destroy(): the state dir goes even when a cgroup cannot be
    removed (a process stuck in it), and that error is reported afterwards;
    otherwise `delete -f` would fail on it forever."""
    error: BaseException | None = None
    if state.cgroup:
        from pyrunc.cgroups import load_manager

        try:
            load_manager(state.cgroup).destroy(kill=state.shares_pidns)
        except (PyruncError, OSError) as err:
            error = err
    fault_point("delete.cgroups")
    if state.hooks.poststop:
        from pyrunc import hooks

        hooks.run_all_warn("poststop", state.hooks.poststop,
                           state.hook_state(Status.STOPPED))
    if "mount" not in state.namespaces:
        from pyrunc.rootfs import release_host_mounts

        release_host_mounts(state.state_dir)  # made without a mount namespace
    fault_point("delete.hooks-run")
    store.remove(state.id)
    if error is not None:
        raise error


def delete_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc delete [-f] ID`."""
    from pyrunc.verbs import store

    delete(store(g), v["container_id"], bool(v.get("force")))
    return 0
