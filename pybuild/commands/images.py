"""Image verbs of the pybuild CLI: images, tag, rmi, prune, fsck, export, import, bundle (inspect: commands.inspect).

Each is a click command registered by name in pybuild.commands.COMMANDS; the store root is `ctx.obj["root"]`.
Errors are PybuildError subclasses, reported once by cli.main.
"""

from __future__ import annotations

import json
import time

import click

from pybuild.image import parse_config


def _store(ctx: click.Context, create: bool = True):  # type: ignore[no-untyped-def]
    from pybuild.store import Store
    return Store(ctx.obj["root"], create=create)


def size_text(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.3g}{unit}"
        n /= 1000
    return f"{n}"


def _age(created: str | None) -> str:
    if not created:
        return "N/A"
    import datetime
    try:
        ts = datetime.datetime.fromisoformat(created).timestamp()
    except ValueError:
        return created
    seconds = max(0, time.time() - ts)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "Less than a minute ago"


@click.command("images")
@click.option("-q", "--quiet", is_flag=True, help="Only image IDs.")
@click.option("--digests", is_flag=True, help="Show digests (the registry's, for pulled images).")
@click.pass_context
def images(ctx: click.Context, quiet: bool, digests: bool) -> None:
    """List tagged images."""
    from pybuild.store import split_name
    store = _store(ctx)
    rows = []
    from pybuild.image import INDEX_TYPES
    descs = []
    for name, desc in store.list_refs():
        descs.append(desc)
        if desc.media_type in INDEX_TYPES:  # put there by another tool (skopeo copy --all)
            repo, tag = split_name(name) if name else ("<none>", "<none>")
            rows.append((repo, tag, desc.digest[7:19], "N/A", "(index)"))
            continue
        manifest = store.read_manifest(desc.digest)
        config = parse_config(store.read_blob(manifest.config.digest))
        size = sum(layer.size for layer in manifest.layers) + manifest.config.size
        repo, tag = split_name(name) if name else ("<none>", "<none>")
        rows.append((repo, tag, manifest.config.digest[7:19], _age(config.created), size_text(size)))
    if quiet:
        for row in rows:
            click.echo(row[2])
        return
    header: tuple[str, ...] = ("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")
    if digests:  # docker's column order: the digest after the tag
        from pybuild.image import repo_digest
        header = header[:2] + ("DIGEST",) + header[2:]
        rows = [row[:2] + (repo_digest(desc),) + row[2:] for row, desc in zip(rows, descs)]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("   ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())


@click.command("tag")
@click.argument("source")
@click.argument("target")
@click.pass_context
def tag(ctx: click.Context, source: str, target: str) -> None:
    """Give an image another name."""
    store = _store(ctx)
    desc = store.resolve(source)
    store.tag(target, desc.with_annotations(None))


@click.command("rmi")
@click.argument("names", nargs=-1, required=True)
@click.option("--no-prune", is_flag=True, help="Keep the blobs and layers no tag references any more.")
@click.option("-f", "--force", is_flag=True, help="Remove the name even if a container uses its image "
              "(the image's content stays while the container exists).")
@click.pass_context
def rmi(ctx: click.Context, names: tuple[str, ...], no_prune: bool, force: bool) -> None:
    """Remove image names (and, unless --no-prune, what only they referenced)."""
    store = _store(ctx)
    for name in names:
        if not force:
            _refuse_if_in_use(ctx, store, name)
        desc = store.untag(name)
        click.echo(f"Untagged: {name} ({desc.digest})")
    if not no_prune:
        store.gc()


def _refuse_if_in_use(ctx: click.Context, store, name: str) -> None:  # type: ignore[no-untyped-def]
    """docker's conflict: the last name of an image a container uses is not removed without -f (the
    content would stay anyway: the container's record keeps it from gc; the name is what goes)."""
    from pybuild.containers import ContainerStore
    from pybuild.errors import PybuildError
    from pybuild.image import ANNOTATION_REF_NAME, INDEX_TYPES

    desc = store.resolve(name)
    if desc.media_type in INDEX_TYPES:
        return  # pybuild run refuses indexes: no container uses one
    names = [d for d in store.read_index().manifests
             if d.digest == desc.digest and (d.annotations or {}).get(ANNOTATION_REF_NAME)]
    if len(names) > 1:
        return
    config = store.read_manifest(desc.digest).config.digest if store.has_blob(desc.digest) else ""
    for c in ContainerStore(ctx.obj["root"]).list():
        if c.image_digest == desc.digest or (not c.image_digest and c.image_id == config):
            raise PybuildError(f"conflict: unable to remove repository reference {name!r} (must force) - "
                               f"container {c.id[:12]} is using its referenced image {c.image_id[7:19]}")


@click.command("prune")
@click.pass_context
def prune(ctx: click.Context) -> None:
    """Remove blobs and unpacked layers that no tagged image references."""
    stats = _store(ctx).gc()
    click.echo(f"Removed {stats.blobs_removed} blobs and {stats.layers_removed} unpacked layers, "
               f"freed {size_text(stats.bytes_freed)}")


@click.command("fsck")
@click.option("--repair", is_flag=True, help="Remove garbage (temp files, partial downloads, orphans, stale "
              "cache records), corrupt blobs and wrong unpacked layers.")
@click.pass_context
def fsck(ctx: click.Context, repair: bool) -> None:
    """Verify every blob, layer, index entry and cache record of the store (exit 1 on errors)."""
    from pybuild.errors import PybuildError
    from pybuild.fsck import fsck as run_fsck
    from pybuild.fsck import render

    report = run_fsck(_store(ctx, create=False), repair=repair)
    for line in render(report, repair):
        click.echo(line)
    if report.errors:
        raise PybuildError(f"fsck: {len(report.errors)} errors in the store {ctx.obj['root']}")


@click.command("export")
@click.argument("name")
@click.option("-o", "--output", "dest", required=True, help="Archive file to write ('-' for stdout).")
@click.option("--format", "fmt", type=click.Choice(["oci", "docker"]), default="oci", show_default=True)
@click.pass_context
def export(ctx: click.Context, name: str, dest: str, fmt: str) -> None:
    """Write an image as an OCI archive or a docker-archive (docker/podman load)."""
    from pybuild.export import export_image
    store = _store(ctx)
    image = store.load_image(name)
    export_image(store, image, dest, fmt, image.name or (name if not name.startswith("sha256:") else None))


@click.command("import")
@click.argument("source", type=click.Path(exists=True, allow_dash=True))
@click.option("-t", "--tag", "name", help="Name for the new image.")
@click.option("-c", "--change", "changes", multiple=True,
              help="Dockerfile instruction for the config: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME.")
@click.option("--compression", type=click.Choice(["gzip", "zstd", "none"]), default="gzip", show_default=True)
@click.option("--no-unpack", "no_unpack", is_flag=True,
              help="Only store the layer blob; the first build or run FROM the image unpacks it.")
@click.pass_context
def import_(ctx: click.Context, source: str, name: str | None, changes: tuple[str, ...],
            compression: str, no_unpack: bool) -> None:
    """Make a one-layer image from a root filesystem directory or tarball ('-' for stdin), as docker import."""
    import os
    from pybuild.baseimage import import_rootfs
    from pybuild.image import ContainerConfig
    config = ContainerConfig()
    for change in changes:
        config = apply_change(config, change)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    store = _store(ctx)
    with store.using():
        image = import_rootfs(store, source, name, compression=compression,
                              source_date_epoch=int(epoch) if epoch and epoch.isdigit() else None,
                              container_config=config, unpack=not no_unpack)
    click.echo(image.id)


def apply_change(config, change: str):  # type: ignore[no-untyped-def]
    """One `--change` instruction applied to a ContainerConfig (docker import's subset)."""
    from pyrunc.record import replace
    import shlex
    from pybuild.errors import PybuildError

    word, _, rest = change.strip().partition(" ")
    word, rest = word.upper(), rest.strip()

    def argv() -> tuple[str, ...]:
        if rest.startswith("["):
            try:
                value = json.loads(rest)
            except ValueError:
                value = None
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return tuple(value)
        return ("/bin/sh", "-c", rest)

    if word == "CMD":
        return replace(config, cmd=argv())
    if word == "ENTRYPOINT":
        return replace(config, entrypoint=argv())
    if word == "WORKDIR" and rest:
        return replace(config, working_dir=rest)
    if word == "USER" and rest:
        return replace(config, user=rest)
    if word == "VOLUME" and rest:
        paths = list(argv()) if rest.startswith("[") and argv()[:2] != ("/bin/sh", "-c") else rest.split()
        return replace(config, volumes=tuple(sorted(set(config.volumes) | set(paths))))
    if word == "EXPOSE" and rest:
        ports = tuple(p if "/" in p else f"{p}/tcp" for p in rest.split())
        return replace(config, exposed_ports=tuple(sorted(set(config.exposed_ports + ports))))
    if word in ("ENV", "LABEL") and rest:
        first = rest.split(None, 1)[0]
        if "=" not in first:  # legacy form: ENV KEY VALUE
            key, _, value = rest.partition(" ")
            pairs = [(key, value.strip())]
        else:
            pairs = []
            for item in shlex.split(rest):
                key, sep, value = item.partition("=")
                if not sep or not key:
                    raise PybuildError(f"--change {change!r}: expected KEY=VALUE, got {item!r}")
                pairs.append((key, value))
        if word == "LABEL":
            return replace(config, labels={**config.labels, **dict(pairs)})
        keys = {k for k, _ in pairs}
        env = tuple(e for e in config.env if e.partition("=")[0] not in keys)
        return replace(config, env=env + tuple(f"{k}={v}" for k, v in pairs))
    raise PybuildError(f"--change {change!r}: unsupported (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME)")


@click.command("bundle")
@click.argument("name")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("--rootless", is_flag=True, help="A spec for a rootless runtime (user namespace).")
@click.option("--network", default="bridge", show_default=True, type=click.Choice(["bridge", "host", "none"]),
              help="bridge: pybuild's bridge through createRuntime/poststop hooks; none: only lo; host: the host's.")
@click.option("-p", "--publish", "ports", multiple=True, metavar="[IP:]HOST:CONTAINER[/PROTO]",
              help="Publish a container port on the host (bridge only); repeatable.")
@click.pass_context
def bundle(ctx: click.Context, name: str, directory: str, rootless: bool, network: str,
           ports: tuple[str, ...]) -> None:
    """Unpack an image into an OCI bundle (rootfs + config.json)."""
    from pybuild.bundle import make_bundle
    from pybuild.net.model import check_ports, parse_port
    from pybuild.store import split_name
    mappings = [parse_port(p) for p in ports]
    check_ports(mappings)
    store = _store(ctx)
    image = store.load_image(name)
    hostname = split_name(image.name)[0].rsplit("/", 1)[-1] if image.name else image.id[7:19]
    make_bundle(store, image, directory, rootless=rootless, hostname=hostname, network=network,
                ports=mappings)
