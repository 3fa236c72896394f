"""`pyrunc ps [-f table|json] ID [ps args]`: the container's host PIDs.

As runc: json prints the PID list; table runs the host's `ps` (default
`-ef`) and keeps the header and the lines whose PID column is in the
container's cgroup.
"""

from __future__ import annotations

import json
import subprocess

import click

from pyrunc.errors import PyruncError
from pyrunc.rootless import warn_rootless_cgroups


def container_pids(root: str, container_id: str) -> list[int]:
    from pyrunc.cgroups import load_manager
    from pyrunc.state import StateStore

    state = StateStore(root).load(container_id)
    if not state.cgroup:
        raise PyruncError(f"ps: container {container_id} has no cgroup")
    warn_rootless_cgroups("ps", state.cgroup)
    manager = load_manager(state.cgroup)
    if not manager.placed():
        raise PyruncError(f"ps: container {container_id} has no cgroup (rootless, none delegated): "
                          "its processes cannot be listed")
    return sorted(manager.pids())


def filter_ps(output: str, pids: list[int]) -> str:
    lines = output.split("\n")
    header = lines[0].split()
    try:
        index = header.index("PID")
    except ValueError:
        raise PyruncError("ps: couldn't find PID field in ps output") from None
    wanted = set(pids)
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= index:
            continue
        try:
            pid = int(fields[index])
        except ValueError:
            raise PyruncError(f"ps: unexpected pid {fields[index]!r} in ps output") from None
        if pid in wanted:
            out.append(line)
    return "\n".join(out) + "\n"


@click.command("ps", help="Display the processes running inside a container.",
               context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-f", "--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              help="select one of: table or json")
@click.argument("container_id", metavar="ID")
@click.argument("ps_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def ps(ctx: click.Context, fmt: str, container_id: str, ps_args: tuple[str, ...]) -> None:
    pids = container_pids(ctx.obj.root, container_id)
    if fmt == "json":
        click.echo(json.dumps(pids or None, separators=(",", ":")))  # Go encodes an empty slice as null
        return
    try:
        proc = subprocess.run(["ps", *(ps_args or ("-ef",))], capture_output=True, text=True)
    except FileNotFoundError:
        raise PyruncError("ps: the ps command is not installed") from None
    if proc.returncode != 0:
        raise PyruncError(f"ps {' '.join(ps_args or ('-ef',))}: {(proc.stderr or proc.stdout).strip()}")
    click.echo(filter_ps(proc.stdout, pids), nl=False)
