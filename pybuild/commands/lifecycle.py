"""Verbs on a container's life: top, port, wait, kill, restart (podman's flags and exit codes).

    top NAME [ps options]     the runtime's `ps` (the host's ps, filtered to the container's cgroup)
    port NAME [PORT[/PROTO]]  published ports, `1234/tcp -> 0.0.0.0:8088`
    wait NAME…                block until each exits; print its exit code
    kill [-s SIG] NAME…       a signal through the runtime (default SIGKILL)
    restart [-t N] NAME…      stop (as `stop`), then start again on the same upper dir and volumes

A container that does not exist, or is not running where that is required, is one line and
exit status 125, as podman; nothing is changed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import click

from pybuild.containers import Container, ContainerError, ContainerStore, NoSuchContainer


class CommandError(ContainerError):
    exit_code = 125


def find(root: str, ref: str) -> Container:
    try:
        return ContainerStore(root).get(ref)
    except NoSuchContainer as err:
        raise CommandError(str(err)) from None


def running_container(root: str, ref: str, verb: str) -> tuple[Container, dict[str, Any]]:
    """The container and its runtime state, which must say running."""
    c = find(root, ref)
    state = c.runtime_state()
    status = state.get("status") if state else c.status()
    if status != "running" or not state or not state.get("pid"):
        raise CommandError(f"{verb} {c.name}: the container is not running (it is {status})")
    return c, state


@click.command("top", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("container")
@click.argument("ps_options", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def top(ctx: click.Context, container: str, ps_options: tuple[str, ...]) -> None:
    """Show a container's processes (the runtime's `ps`, default `-ef`)."""
    c, _ = running_container(ctx.obj["root"], container, "top")
    res = subprocess.run(c.runtime_cmd("ps", c.id, *ps_options), capture_output=True, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        from pybuild.containers import runtime_error

        lines = res.stderr.decode(errors="replace").strip().splitlines()
        raise CommandError(f"top {c.name}: " + (runtime_error(c.runtime_log) or (lines[-1] if lines else
                                                 f"{c.runtime[0]} ps exited with status {res.returncode}")))
    click.echo(res.stdout.decode(errors="replace"), nl=False)


def published(c: Container) -> list[Any]:
    from pybuild.net.model import parse_port

    return [parse_port(p) for p in c.ports]


@click.command("port")
@click.argument("container")
@click.argument("private_port", required=False)
@click.pass_context
def port(ctx: click.Context, container: str, private_port: str | None) -> None:
    """List a container's published ports, or the host side of one."""
    c = find(ctx.obj["root"], container)
    if c.status() != "running":
        return  # podman and docker show nothing for a container that does not run
    mappings = published(c)
    if private_port is None:
        for m in mappings:
            click.echo(f"{m.container_port}/{m.protocol} -> {m.host_ip or '0.0.0.0'}:{m.host_port}")
        return
    number, _, proto = private_port.partition("/")
    if not number.isdigit() or proto not in ("", "tcp", "udp"):
        raise CommandError(f"port {private_port}: expected PORT[/tcp|udp]")
    found = [m for m in mappings if m.container_port == int(number) and m.protocol == (proto or "tcp")]
    if not found:
        raise CommandError(f'failed to find published port "{private_port}"')
    for m in found:
        click.echo(f"{m.host_ip or '0.0.0.0'}:{m.host_port}")


def wait_exit(c: Container) -> int:
    """Block until the container has exited and return its exit code. Holds wait.lock shared
    so that a `--rm` removal waits until the code is read (containers.ContainerStore.remove)."""
    import fcntl

    try:
        lock = os.open(os.path.join(c.home, "wait.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                       0o600)
    except (FileNotFoundError, NotADirectoryError):
        raise CommandError(f"no such container: {c.name}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_SH)
        checked = 0.0
        while True:
            if not os.path.isdir(c.home):
                raise CommandError(f"wait {c.name}: the container was removed before it exited")
            code = c.exit_code()
            if code is not None:
                return code
            if not c.monitor_alive() and time.monotonic() - checked > 1:
                checked = time.monotonic()
                if c.status() in ("exited", "created"):
                    code = c.exit_code()
                    if code is not None:
                        return code
                    raise CommandError(f"wait {c.name}: the container exited but nothing recorded its exit "
                                       "code (its monitor was killed)")
            time.sleep(0.05)
    finally:
        os.close(lock)


@click.command("wait")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def wait(ctx: click.Context, containers: tuple[str, ...]) -> None:
    """Block until containers stop; print their exit codes."""
    targets = [find(ctx.obj["root"], ref) for ref in containers]
    for c in targets:
        click.echo(str(wait_exit(c)))


def parse_signal(text: str) -> str:
    """KILL, SIGKILL, 9 → "SIGKILL"; anything else is refused (podman's "invalid signal")."""
    name = text.upper()
    try:
        if name.isdigit():
            return signal.Signals(int(name)).name
        sig = signal.Signals[name if name.startswith("SIG") else "SIG" + name]
        return sig.name
    except (KeyError, ValueError):
        pass
    rt = name.removeprefix("SIG")
    if rt.startswith("RTMIN+") and rt[6:].isdigit() and signal.SIGRTMIN + int(rt[6:]) <= signal.SIGRTMAX:
        return str(int(signal.SIGRTMIN) + int(rt[6:]))
    if name.isdigit() and signal.SIGRTMIN <= int(name) <= signal.SIGRTMAX:
        return name
    raise CommandError(f"invalid signal: {text}")


@click.command("kill")
@click.option("-s", "--signal", "sig", default="KILL", show_default=True, help="Signal to send.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def kill(ctx: click.Context, sig: str, containers: tuple[str, ...]) -> None:
    """Send a signal to containers' main processes."""
    name = parse_signal(sig)
    for ref in containers:
        c, _ = running_container(ctx.obj["root"], ref, "kill")
        res = subprocess.run(c.runtime_cmd("kill", c.id, name), capture_output=True, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            from pybuild.containers import runtime_error

            raise CommandError(f"kill {c.name}: {runtime_error(c.runtime_log) or res.stderr.decode().strip()}")
        click.echo(ref)


@click.command("restart")
@click.option("-t", "--time", "timeout", default=10, show_default=True, type=click.IntRange(0),
              help="Seconds to wait for the stop signal before SIGKILL.")
@click.argument("containers", nargs=-1, required=True)
@click.pass_context
def restart(ctx: click.Context, timeout: int, containers: tuple[str, ...]) -> None:
    """Stop containers (if they run) and start them again."""
    from pybuild.commands.containers import stop_container
    from pybuild.commands.run import RESTARTING, start_again

    root = ctx.obj["root"]
    for ref in containers:
        c = find(root, ref)
        marker = os.path.join(c.home, RESTARTING)
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        try:
            stop_container(c, timeout)
            _wait_monitor_gone(c)
        finally:
            os.unlink(marker)
        start_again(root, c)
        click.echo(ref)


def _wait_monitor_gone(c: Container, timeout: float = 30) -> None:
    """The old monitor unmounts the rootfs and tears the network down before it exits."""
    deadline = time.monotonic() + timeout
    while c.monitor_alive():
        if time.monotonic() > deadline:
            raise CommandError(f"restart {c.name}: the old monitor did not finish")
        time.sleep(0.02)
