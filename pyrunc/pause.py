"""`pyrunc pause ID` / `pyrunc resume ID`: the cgroup freezer.

runc's rules: pause needs a running or created container ("container not
running" otherwise), resume a paused one ("container not paused"). The
paused status itself is never stored: `state.refresh` derives it from the
freezer, so these commands only flip the freezer, under the container lock.
"""

from __future__ import annotations

import click

from pyrunc.errors import InvalidState
from pyrunc.rootless import warn_rootless_cgroups


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


@click.command("pause", help="Suspend all processes inside the container (cgroup freezer).")
@click.argument("container_id", metavar="ID")
@click.pass_context
def pause(ctx: click.Context, container_id: str) -> None:
    pause_container(ctx.obj.root, container_id)


@click.command("resume", help="Resume all processes that were suspended by pause.")
@click.argument("container_id", metavar="ID")
@click.pass_context
def resume(ctx: click.Context, container_id: str) -> None:
    resume_container(ctx.obj.root, container_id)
