"""`pybuild inspect [--type container|image|volume|all] [-f FORMAT] NAME…` (docker's and podman's).

Without --type a name is looked up as a container, then an image, then a volume (podman's
order). The output is a JSON array (4-space indent, as both print it), or with `--format`
one rendered Go template per object (`json` alone: the JSON array). Names that match
nothing are one line each on stderr and exit status 125 after the others are printed; a
template that cannot be parsed is refused before anything is printed, one that fails on an
object stops there, with Go's message.
"""

from __future__ import annotations

import json
from typing import Any

import click

from pybuild.errors import PybuildError
from pybuild.gotemplate import Template, to_json


class InspectError(PybuildError):
    exit_code = 125


def json_text(value: Any) -> str:
    """Structs (or a list of them) as docker and podman indent them (4 spaces, struct order,
    no HTML escaping)."""
    return json.dumps(json.loads(to_json(value)), indent=4, ensure_ascii=False)


def emit(objects: list[Any], fmt: str | None, name: str = "inspect") -> None:
    if not fmt or fmt == "json":
        click.echo(json_text(objects))
        return
    template = Template(fmt, name)
    for obj in objects:
        click.echo(template.render(obj))


def lookup(root: str, name: str, kind: str) -> Any:
    """The Struct of what `name` names, or None."""
    from pybuild import inspect_data
    from pybuild.containers import ContainerStore, NoSuchContainer
    from pybuild.errors import ImageNotFound, StoreError
    from pybuild.volumes import NoSuchVolume, VolumeError, VolumeStore

    if kind in ("container", "all"):
        try:
            c = ContainerStore(root).get(name)
        except NoSuchContainer:
            c = None
        if c is not None:
            from pybuild.store import Store

            return inspect_data.container_struct(Store(root), c)
    if kind in ("image", "all"):
        from pybuild.store import Store

        try:
            store = Store(root)
            return inspect_data.image_struct(store, store.load_image(name))
        except ImageNotFound:
            pass
        except StoreError as err:
            if kind == "image":
                raise InspectError(str(err)) from None
    if kind in ("volume", "all"):
        try:
            return inspect_data.volume_struct(VolumeStore(root).get(name))
        except NoSuchVolume:
            pass
        except VolumeError:  # not a valid volume name: it names no volume
            if kind == "volume":
                raise
    return None


@click.command("inspect")
@click.option("--type", "kind", type=click.Choice(["container", "image", "volume", "all"]), default="all",
              show_default=True, help="What the names are.")
@click.option("-f", "--format", "fmt", default=None, help="A Go template per object, or json.")
@click.argument("names", nargs=-1, required=True)
@click.pass_context
def inspect(ctx: click.Context, kind: str, fmt: str | None, names: tuple[str, ...]) -> None:
    """Show low-level information on containers, images and volumes."""
    template = Template(fmt, "inspect") if fmt and fmt != "json" else None  # a bad template: nothing printed
    found, missing = [], []
    for name in names:
        obj = lookup(ctx.obj["root"], name, kind)
        (found.append(obj) if obj is not None else missing.append(name))
    if template is not None:
        for obj in found:
            click.echo(template.render(obj))
    elif found or not missing:
        click.echo(json_text(found))
    if missing:
        what = "object" if kind == "all" else kind
        for name in missing[:-1]:
            click.echo(f"pybuild: no such {what}: {name}", err=True)
        raise InspectError(f"no such {what}: {missing[-1]}")
