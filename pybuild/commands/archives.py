"""`pybuild save` and `pybuild load`: several images in one archive, as docker and podman move them.

    pybuild save -o images.tar [--format docker-archive|oci-archive] NAME...
    pybuild load -i images.tar          (or from stdin)

docker-archive is `docker save`'s format (manifest.json + configs + uncompressed layer tars + the legacy
`repositories` file), read by `docker load`, `podman load` and skopeo's docker-archive: transport;
oci-archive is an OCI image layout in a tar (skopeo's oci-archive:, podman load). load reads either,
verifies every blob and layer (DigestMismatch: nothing is tagged), and tags the images only after all of
them are in the store.
"""

from __future__ import annotations

import os
import sys
import tempfile

import click

from pybuild.errors import PybuildError


@click.command("save")
@click.argument("names", nargs=-1, required=True)
@click.option("-o", "--output", "dest", default="-", help="Archive file (default: stdout).")
@click.option("--format", "fmt", default="docker-archive", show_default=True,
              type=click.Choice(["docker-archive", "oci-archive"]))
@click.pass_context
def save(ctx: click.Context, names: tuple[str, ...], dest: str, fmt: str) -> None:
    """Write images (with their names) to one archive."""
    from pybuild.export import save_images
    from pybuild.store import Store

    if dest == "-" and sys.stdout.isatty():
        raise PybuildError("save: refusing to write an archive to a terminal; use -o FILE")
    store = Store(ctx.obj["root"])
    chosen: dict[str, tuple] = {}
    for name in names:
        image = store.load_image(name)
        entry = chosen.setdefault(image.descriptor.digest, (image, []))
        label = name if not _is_id(name) else image.name
        if label and label not in entry[1]:
            entry[1].append(label)
    save_images(store, list(chosen.values()), dest, fmt)


def _is_id(name: str) -> bool:
    hexpart = name[7:] if name.startswith("sha256:") else name
    return all(c in "0123456789abcdef" for c in hexpart) and len(hexpart) >= 12


@click.command("load")
@click.option("-i", "--input", "src", default="-", help="Archive file (default: stdin).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the loaded names or IDs.")
@click.option("--no-unpack", "no_unpack", is_flag=True,
              help="Only store the blobs; the first build or run FROM an image unpacks its layers.")
@click.pass_context
def load(ctx: click.Context, src: str, quiet: bool, no_unpack: bool) -> None:
    """Load every image of a docker-archive or OCI archive into the store and unpack its layers."""
    from pybuild.baseimage import load_archive
    from pybuild.store import Store

    store = Store(ctx.obj["root"])
    spool = None
    try:
        if src == "-":
            if sys.stdin.isatty():
                raise PybuildError("load: no archive on stdin; use -i FILE")
            scratch = os.path.join(store.root, "tmp")
            os.makedirs(scratch, exist_ok=True)
            fd, spool = tempfile.mkstemp(prefix=f"load-{os.getpid()}-", dir=scratch)  # seekable; pid: fsck sees it live
            with os.fdopen(fd, "wb") as out:
                while chunk := sys.stdin.buffer.read(1 << 20):
                    out.write(chunk)
            src = spool
        elif not os.path.isfile(src):
            raise PybuildError(f"load: {src}: no such file")
        with store.using():
            loaded = load_archive(store, src, unpack=not no_unpack)
            for image, names in loaded:
                for name in names:
                    store.tag(name, image.descriptor.with_annotations(None))
    finally:
        if spool:
            os.unlink(spool)
    for image, names in loaded:
        for name in names or [image.id]:
            click.echo(name if quiet else f"Loaded image: {name}")
