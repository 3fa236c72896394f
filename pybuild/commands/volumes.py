"""`pybuild volume create|ls|inspect|rm|prune` (podman's flags, output and exit codes).

    volume create [--label K=V]… [--ignore] [NAME]    prints the name (a random one if none)
    volume ls [-q] [--format TPL]                      DRIVER / VOLUME NAME
    volume inspect [--format TPL] NAME…                JSON array, or one template per volume
    volume rm [-f] NAME…                               1: no such volume, 2: in use (podman's codes)
    volume prune [-f]                                  every volume no container uses, after a y/N

A volume is in use while a container record (running or not) names it; `rm -f` removes those
containers first (podman's meaning of -f). Removal never follows a link a container left in
the volume (pybuild.volumes).
"""

from __future__ import annotations

import sys

import click

from pybuild.volumes import NoSuchVolume, VolumeError, VolumeInUse, VolumeStore, volume_names


def _labels(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise VolumeError(f"--label {item!r}: expected KEY[=VALUE]")
        out[key] = value
    return out


@click.group("volume")
def volume() -> None:
    """Manage named volumes."""


@volume.command("create")
@click.option("-l", "--label", "labels", multiple=True, metavar="KEY[=VALUE]", help="Set a label.")
@click.option("-d", "--driver", default="local", show_default=True, help="Volume driver (only local).")
@click.option("-o", "--opt", "opts", multiple=True, help="Driver options (none are supported by local here).")
@click.option("--ignore", is_flag=True, help="Do nothing if the volume exists.")
@click.argument("name", required=False)
@click.pass_context
def create(ctx: click.Context, labels: tuple[str, ...], driver: str, opts: tuple[str, ...], ignore: bool,
           name: str | None) -> None:
    """Create a volume."""
    if driver != "local":
        raise VolumeError(f"volume driver {driver!r} is not supported (only local)")
    if opts:
        raise VolumeError(f"-o {opts[0]}: driver options (a device or filesystem to mount) are not supported")
    vol = VolumeStore(ctx.find_root().obj["root"]).create(name, _labels(labels), exist_ok=ignore)
    click.echo(vol.name)


@volume.command("ls")
@click.option("-q", "--quiet", is_flag=True, help="Only names.")
@click.option("--format", "fmt", default=None, help="A Go template per volume, or json.")
@click.pass_context
def ls(ctx: click.Context, quiet: bool, fmt: str | None) -> None:
    """List volumes."""
    from pybuild.commands.inspect import emit
    from pybuild.inspect_data import volume_struct

    vols = VolumeStore(ctx.find_root().obj["root"]).list()
    if fmt:
        emit([volume_struct(v) for v in vols], fmt, "ls")
        return
    if not quiet:
        click.echo(f"{'DRIVER':<12}VOLUME NAME")
    for v in vols:
        click.echo(v.name if quiet else f"{'local':<12}{v.name}")


@volume.command("inspect")
@click.option("-f", "--format", "fmt", default=None, help="A Go template per volume, or json.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx: click.Context, fmt: str | None, names: tuple[str, ...]) -> None:
    """Show volumes' details."""
    from pybuild.gotemplate import Template
    from pybuild.commands.inspect import emit
    from pybuild.inspect_data import volume_struct

    if fmt and fmt != "json":
        Template(fmt, "inspect")  # a bad template: refused before anything is printed
    store = VolumeStore(ctx.find_root().obj["root"])
    found, missing = [], []
    for name in names:
        try:
            found.append(volume_struct(store.get(name)))
        except NoSuchVolume as err:
            missing.append(err)
    if found or not missing:
        emit(found, fmt)
    for err in missing[:-1]:
        click.echo(f"pybuild: {err}", err=True)
    if missing:
        raise missing[-1]


def _remove(root: str, names: tuple[str, ...] | list[str], force: bool, quiet_missing: bool) -> list[str]:
    """Remove volumes under the containers' then the volumes' lock; returns the removed names."""
    from pybuild.commands.containers import remove_container
    from pybuild.containers import ContainerStore

    containers = ContainerStore(root)
    store = VolumeStore(root)
    removed = []
    for name in names:
        try:
            vol = store.get(name)
        except NoSuchVolume:
            if quiet_missing:
                continue
            raise NoSuchVolume(name) from None
        users = store.users(vol.name, containers.list())
        if users and not force:
            raise VolumeInUse(vol.name, users)
        for cid in users:  # podman's -f: the containers go first
            remove_container(containers, containers.get(cid), force=True)
        with containers.locked(), store.locked():
            users = store.users(vol.name, containers.list())
            if users:  # a run claimed it meanwhile
                raise VolumeInUse(vol.name, users)
            store.remove(vol)
        removed.append(vol.name)
    return removed


@volume.command("rm")
@click.option("-f", "--force", is_flag=True, help="Remove the containers using them first; ignore missing.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def rm(ctx: click.Context, force: bool, names: tuple[str, ...]) -> None:
    """Remove volumes."""
    for name in names:
        try:
            removed = _remove(ctx.find_root().obj["root"], [name], force, quiet_missing=force)
        except NoSuchVolume as err:
            err.exit_code = 1  # podman volume rm: 1 when a volume does not exist
            raise
        for n in removed:
            click.echo(n)


@volume.command("prune")
@click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def prune(ctx: click.Context, force: bool) -> None:
    """Remove every volume that no container uses."""
    from pybuild.containers import ContainerStore

    root = ctx.find_root().obj["root"]
    if not force:
        click.echo("WARNING! This will remove all volumes not used by at least one container. "
                   "The following volumes will be removed:", err=True)
        used = {n for c in ContainerStore(root).list() for n in volume_names(c)}
        for v in VolumeStore(root).list():
            if v.name not in used:
                click.echo(v.name, err=True)
        click.echo("Are you sure you want to continue? [y/N] ", err=True, nl=False)
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return
    containers = ContainerStore(root)
    store = VolumeStore(root)
    with containers.locked(), store.locked():
        used = {n for c in containers.list() for n in volume_names(c)}
        for v in store.list():
            if v.name not in used:
                store.remove(v)
                click.echo(v.name)
