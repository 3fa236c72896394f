"""Container verbs of the pybuild CLI: ps, stop, rm, logs, commit (docker's flags and output).

They work on the records of containers.py and on the OCI runtime's own state
(`<runtime> state|kill|delete`); none needs a daemon.
"""

from __future__ import annotations

import shlex
import subprocess
import time

import click

from pybuild.containers import MONITOR_GRACE, Container, ContainerError, ContainerStore, wait_exited


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return "Less than a second" if seconds < 1 else f"{int(seconds)} second{'s' if int(seconds) != 1 else ''}"


def status_text(c: Container, status: str) -> str:
    if status == "running":
        return f"Up {_ago(time.time() - c.created)}"
    if status == "paused":
        return f"Up {_ago(time.time() - c.created)} (Paused)"
    if status == "created":
        return "Created"
    code = c.exit_code()
    when = c.exited_at()
    ago = f" {_ago(time.time() - when)} ago" if when else ""
    return f"Exited ({code if code is not None else 'unknown'}){ago}"


def _ports_text(c: Container) -> str:
    from pybuild.net.model import parse_port

    return ", ".join(parse_port(p).docker_text() for p in c.ports)


@click.command("ps")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show all containers (default: running ones).")
@click.option("-q", "--quiet", is_flag=True, help="Only IDs.")
@click.option("--no-trunc", is_flag=True, help="Do not truncate IDs and commands.")
@click.pass_context
def ps(ctx: click.Context, show_all: bool, quiet: bool, no_trunc: bool) -> None:
    """List containers."""
    rows = []
    for c in ContainerStore(ctx.obj["root"]).list():
        status = c.status()
        if not show_all and status not in ("running", "paused"):
            continue
        cid = c.id if no_trunc else c.id[:12]
        if quiet:
            click.echo(cid)
            continue
        command = shlex.join(c.command)
        if not no_trunc and len(command) > 20:
            command = command[:19] + "…"
        rows.append((cid, c.image, f'"{command}"', f"{_ago(time.time() - c.created)} ago",
                     status_text(c, status), _ports_text(c), c.name))
    if quiet:
        return
    header = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("   ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _kill(c: Container, sig: str) -> None:
    subprocess.run(c.runtime_cmd("kill", c.id, sig), capture_output=True, stdin=subprocess.DEVNULL)


def stop_container(c: Container, timeout: float) -> None:
    """docker stop: the stop signal, `timeout` seconds, then SIGKILL."""
    if c.status() not in ("running", "paused", "created"):
        return
    if c.status() == "paused":
        subprocess.run(c.runtime_cmd("resume", c.id), capture_output=True, stdin=subprocess.DEVNULL)
    _kill(c, c.stop_signal)
    if not wait_exited(c, timeout):
        _kill(c, "SIGKILL")
        if not wait_exited(c, 10):
            raise ContainerError(f"stop {c.name}: the container did not exit after SIGKILL")


@click.command("stop")
@click.option("-t", "--time", "timeout", default=10, show_default=True, type=click.IntRange(0),
              help="Seconds to wait before killing the container.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def stop(ctx: click.Context, timeout: int, containers: tuple[str, ...]) -> None:
    """Stop running containers (the image's stop signal, then SIGKILL)."""
    store = ContainerStore(ctx.obj["root"])
    for ref in containers:
        stop_container(store.get(ref), timeout)
        click.echo(ref)


def remove_container(store: ContainerStore, c: Container, force: bool, volumes: bool = False) -> None:
    """Delete the runtime's container (its poststop hook tears the network
    down; idempotent when the monitor did it already) and the directory;
    its anonymous volumes too with `volumes` (rm -v) or when it ran with --rm."""
    status = c.status()
    if status in ("running", "paused") and not force:
        raise ContainerError(f"cannot remove container {c.name}: it is {status}: stop it first or use -f")
    if status in ("running", "paused", "created"):
        _kill(c, "SIGKILL")
        wait_exited(c, 10)
    if not c.wait_monitor_done(MONITOR_GRACE):
        raise ContainerError(f"remove container {c.name}: its monitor is still tearing it down after "
                             f"{MONITOR_GRACE:.0f} s; try again")
    res = subprocess.run(c.runtime_cmd("delete", "-f", c.id), capture_output=True, stdin=subprocess.DEVNULL)
    if res.returncode != 0 and c.runtime_state() is not None:
        raise ContainerError(f"remove container {c.name}: {res.stderr.decode(errors='replace').strip()}")
    if c.network == "bridge":  # idempotent; does the monitor's teardown if it was killed
        from pybuild.net import plumbing
        from pybuild.commands.run import net_request

        plumbing.teardown(net_request(c))
    store.remove(c, volumes=volumes or c.remove)


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Kill a running container first.")
@click.option("-v", "--volumes", is_flag=True, help="Remove the container's anonymous volumes too.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, force: bool, volumes: bool, containers: tuple[str, ...]) -> None:
    """Remove containers."""
    store = ContainerStore(ctx.obj["root"])
    for ref in containers:
        remove_container(store, store.get(ref), force, volumes)
        click.echo(ref)


@click.command("logs")
@click.option("-f", "--follow", is_flag=True, help="Follow the output until the container exits.")
@click.argument("container")
@click.pass_context
def logs(ctx: click.Context, follow: bool, container: str) -> None:
    """Print the output of a detached container."""
    import sys

    c = ContainerStore(ctx.obj["root"]).get(container)
    if not c.detached:
        raise ContainerError(f"logs {c.name}: the container ran in the foreground; its output went to its terminal")
    out = sys.stdout.buffer
    try:
        fh = open(c.log, "rb")
    except FileNotFoundError:
        return
    with fh:
        while True:
            chunk = fh.read(65536)
            if chunk:
                out.write(chunk)
                out.flush()
                continue
            # the monitor writes exit.json when the container ends; no monitor left means no more output
            if not follow or c.exit_code() is not None or not c.monitor_alive():
                rest = fh.read()
                out.write(rest)
                out.flush()
                return
            time.sleep(0.1)


@click.command("commit")
@click.option("-m", "--message", default=None, help="Commit message (history comment).")
@click.option("-a", "--author", default=None, help="Author.")
@click.option("-p/--no-pause", "pause", default=True, show_default=True, help="Pause a running container meanwhile.")
@click.argument("container")
@click.argument("name", required=False)
@click.pass_context
def commit(ctx: click.Context, message: str | None, author: str | None, pause: bool, container: str,
           name: str | None) -> None:
    """Make an image of a container's changes: a new layer on its image."""
    from pybuild.commit import commit_container
    from pybuild.store import Store

    c = ContainerStore(ctx.obj["root"]).get(container)
    store = Store(ctx.obj["root"])
    paused = False
    if pause and c.status() == "running":
        res = subprocess.run(c.runtime_cmd("pause", c.id), capture_output=True, stdin=subprocess.DEVNULL)
        paused = res.returncode == 0
    try:
        image_id = commit_container(store, c, name, message, author)
    finally:
        if paused:
            subprocess.run(c.runtime_cmd("resume", c.id), capture_output=True, stdin=subprocess.DEVNULL)
    click.echo(image_id)
