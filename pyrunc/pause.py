"""`pyrunc pause ID` / `pyrunc resume ID`: the cgroup freezer.

runc's rules: pause needs a running or created container ("container not
running" otherwise), resume a paused one ("container not paused"). The
paused status itself is never stored: `state.refresh` derives it from the
freezer, so these commands only flip the freezer, under the container lock.
"""

from __future__ import annotations

from pyrunc.errors import InvalidState
from pyrunc.rootless import warn_rootless_cgroups
from pyrunc.verbs import GlobalOptions, state_root


def pause_container(root: str, container_id: str) -> None:
    from pyrunc.cgroups import load_manager
    from pyrunc.state import StateStore, Status

    store = StateStore(root)
    with store.lock(container_id):
        state = store.load(container_id)
        if state.status not in (Status.RUNNING, Status.CREATED):
            raise InvalidState("container not running")
        warn_rootless_cgroups("pause", state.cgroup)
        load_manager(state.cgroup).freeze()


def resume_container(root: str, container_id: str) -> None:
    from pyrunc.cgroups import load_manager
    from pyrunc.state import StateStore, Status

    store = StateStore(root)
    with store.lock(container_id):
        state = store.load(container_id)
        if state.status is not Status.PAUSED:
            raise InvalidState("container not paused")
        warn_rootless_cgroups("resume", state.cgroup)
        load_manager(state.cgroup).thaw()


def pause_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc pause ID`."""
    pause_container(state_root(g), v["container_id"])
    return 0


def resume_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc resume ID`."""
    resume_container(state_root(g), v["container_id"])
    return 0
