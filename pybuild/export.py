"""Getting images out of the store: OCI archives, docker archives, flattened trees and tars.

Every blob is read through the store's verifying reader, so a corrupt blob stops an export with
DigestMismatch instead of spreading. Files are written to a temp name beside the destination and renamed
when complete ("-" writes the stream to stdout instead). Archive entries are deterministic (sorted, mode
0644, owner 0, mtime 0), so exporting the same image twice gives the same bytes.

Formats
  oci     an OCI image layout in a tar (`skopeo copy oci-archive:FILE ...`), index.json naming the image
  docker  a `docker save` archive: manifest.json, <config hex>.json, one uncompressed <diffID hex>.tar per
          layer (verified against the diffID), as `podman load` / `docker load` read it

Public API
  export_image(store, image, dest, fmt="oci", name=None)   `pybuild export NAME -o FILE --format oci|docker`
  save_images(store, [(image, names)], dest, fmt)          `pybuild save`: several images, one archive
  write_oci_archive(store, [(image, names)], out)           to a binary stream
  write_docker_archive(store, [(image, names)], out)        to a binary stream
  flatten(store, image, dest_dir)                            all layers applied in order (whiteouts honoured)
  write_output(store, image, spec, name=None)                the builder's --output: spec is
      "type=local,dest=DIR" | "type=tar,dest=FILE" | "type=oci,dest=FILE" | "type=docker,dest=FILE"
      (or the parsed dict); a bare path means type=local.
  parse_output(text) -> {"type": ..., "dest": ...}
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from pybuild import fault_point
from pybuild.errors import DigestMismatch, PybuildError
from pybuild.image import ANNOTATION_REF_NAME, MT_DOCKER_LAYER, MT_LAYER, Index, to_json
from pybuild.layer import tar_header, write_layer
from pybuild.store import split_name
from pyrunc.fsutil import rmtree_nofollow

if TYPE_CHECKING:
    from pybuild.store import Store, StoredImage

FORMATS = ("oci", "docker")
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
OUTPUT_TYPES = ("local", "tar", "oci", "docker")
_CHUNK = 1 << 20


class ExportError(PybuildError):
    pass


class _TarOut:
    """Minimal deterministic tar writer over a binary stream."""

    def __init__(self, out: Any) -> None:
        self.out = out

    def add_bytes(self, name: str, data: bytes) -> None:
        self.out.write(tar_header(name.encode(), 0o644, 0, 0, len(data), 0, b"0"))
        self.out.write(data)
        self.out.write(b"\0" * (-len(data) % 512))

    def add_stream(self, name: str, stream: Any, size: int) -> None:
        self.out.write(tar_header(name.encode(), 0o644, 0, 0, size, 0, b"0"))
        left = size
        while left:
            chunk = stream.read(min(left, _CHUNK))
            if not chunk:
                raise ExportError(f"export: {name}: source ended {left} bytes early")
            self.out.write(chunk)
            left -= len(chunk)
        if stream.read(1):
            raise ExportError(f"export: {name}: source is longer than {size} bytes")
        self.out.write(b"\0" * (-size % 512))

    def add_dir(self, name: str) -> None:
        self.out.write(tar_header(name.rstrip("/").encode() + b"/", 0o755, 0, 0, 0, 0, b"5"))

    def close(self) -> None:
        self.out.write(b"\0" * 1024)


@contextlib.contextmanager
def _open_dest(dest: str) -> Iterator[BinaryIO]:
    """A file written under a temp name and renamed into place on success; "-" is stdout."""
    if dest == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    from pyrunc.fsutil import create_temp

    directory, name = os.path.split(os.path.abspath(dest))
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise ExportError(f"export: {directory}: no such directory") from None
    try:
        # An unpredictable name, O_EXCL|O_NOFOLLOW, relative to the directory's fd; the mode is set on
        # the fd, and the rename only happens while the name is still our file (in a directory others
        # can write to, the name could have been swapped for a link meanwhile).
        tmp, fd = create_temp(dir_fd, name, 0o600)
        mine = os.fstat(fd)
        out = os.fdopen(fd, "wb", buffering=_CHUNK)
        try:
            yield out
            out.flush()
            os.fchmod(out.fileno(), 0o644)
            os.fsync(out.fileno())
            out.close()
            fault_point("export.written")
            if not _is_same(dir_fd, tmp, mine):
                raise ExportError(f"export: {dest}: the temp file was replaced while being written")
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException as err:
            if _is_same(dir_fd, tmp, mine):
                os.unlink(tmp, dir_fd=dir_fd)
            with contextlib.suppress(OSError):  # flushing bytes being thrown away fails again on a full disk
                out.close()
            if isinstance(err, OSError):  # ENOSPC, EDQUOT, EIO: name the archive, not a temp file or nothing
                raise ExportError(f"export: {dest}: {err.strerror or err}") from None
            raise
    finally:
        os.close(dir_fd)


def _is_same(dir_fd: int, name: str, st: os.stat_result) -> bool:
    try:
        now = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)


Named = tuple["StoredImage", list[str]]  # an image and the names to give it in an archive


def write_oci_archive(store: Store, images: list[Named], out: Any) -> None:
    """An OCI layout in a tar: index.json lists each image once per name (annotations
    org.opencontainers.image.ref.name = the store name, io.containerd.image.name = NAME:TAG, as BuildKit
    writes them), blobs shared between images are written once."""
    tar = _TarOut(out)
    tar.add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    entries = []
    for image, names in images:
        for name in names or [None]:
            annotations = {ANNOTATION_REF_NAME: name, ANNOTATION_IMAGE_NAME: _docker_tag(name)} if name else None
            entries.append(image.descriptor.with_annotations(annotations))
    tar.add_bytes("index.json", to_json(Index(manifests=tuple(entries))))
    tar.add_dir("blobs")
    tar.add_dir("blobs/sha256")
    seen: set[str] = set()
    for image, _ in images:
        for blob in (image.descriptor, image.manifest.config, *image.manifest.layers):
            if blob.digest in seen:
                continue
            seen.add(blob.digest)
            size = os.path.getsize(store.blob_path(blob.digest))
            with store.open_blob(blob.digest) as reader:
                tar.add_stream(f"blobs/sha256/{blob.digest[7:]}", reader, size)
                reader.drain()
            fault_point("export.blob")
    tar.close()


def _docker_tag(name: str) -> str:
    if "@" in name:
        return name
    repo, tag = split_name(name)
    return f"{repo}:{tag}"


def write_docker_archive(store: Store, images: list[Named], out: Any, tmp_dir: str | None = None) -> None:
    """`docker save` format: manifest.json (one entry per image, RepoTags), <config hex>.json, one
    uncompressed <diffID hex>.tar per distinct layer (verified against its diffID), and the legacy
    `repositories` file that older loaders read."""
    import hashlib

    from pybuild.compress import open_decompressed

    tar = _TarOut(out)
    written: set[str] = set()
    manifest = []
    repositories: dict[str, dict[str, str]] = {}
    for image, names in images:
        config_name = f"{image.id[7:]}.json"
        if config_name not in written:
            written.add(config_name)
            tar.add_bytes(config_name, store.read_blob(image.id))
        layer_names: list[str] = []
        for desc, diff_id in zip(image.manifest.layers, image.config.rootfs.diff_ids):
            name = f"{diff_id[7:]}.tar"
            layer_names.append(name)
            if name in written:
                continue
            written.add(name)
            with store.open_blob(desc.digest) as reader:
                if desc.media_type in (MT_LAYER, MT_DOCKER_LAYER) and desc.digest == diff_id:
                    tar.add_stream(name, reader, desc.size)
                    reader.drain()
                    continue
                with tempfile.TemporaryFile(dir=tmp_dir) as spool:  # tar needs the size before the data
                    plain = open_decompressed(reader)
                    digest = hashlib.sha256()
                    while chunk := plain.read(_CHUNK):
                        digest.update(chunk)
                        spool.write(chunk)
                    reader.drain()
                    if "sha256:" + digest.hexdigest() != diff_id:
                        raise DigestMismatch(diff_id, "sha256:" + digest.hexdigest(),
                                             what=f"layer {desc.digest} diffID")
                    size = spool.tell()
                    spool.seek(0)
                    tar.add_stream(name, spool, size)
            fault_point("export.blob")
        tags = [_docker_tag(t) for t in names if "@" not in t]
        manifest.append({"Config": config_name, "RepoTags": tags, "Layers": layer_names})
        top = image.config.rootfs.diff_ids[-1][7:] if image.config.rootfs.diff_ids else image.id[7:]
        for tag in tags:
            repo, _, version = tag.rpartition(":")
            repositories.setdefault(repo, {})[version] = top
    tar.add_bytes("manifest.json", json.dumps(manifest, separators=(",", ":")).encode())
    if repositories:
        tar.add_bytes("repositories", json.dumps(repositories, separators=(",", ":")).encode())
    tar.close()


def save_images(store: Store, images: list[Named], dest: str, fmt: str = "docker-archive") -> None:
    """`pybuild save`: several images into one archive file ("-": stdout)."""
    if fmt not in ("docker-archive", "oci-archive"):
        raise ExportError(f"save: unknown format {fmt!r} (docker-archive or oci-archive)")
    with _open_dest(dest) as out:
        if fmt == "oci-archive":
            write_oci_archive(store, images, out)
        else:
            tmp = None if dest == "-" else os.path.dirname(os.path.abspath(dest))
            write_docker_archive(store, images, out, tmp_dir=tmp)


def export_image(store: Store, image: StoredImage, dest: str, fmt: str = "oci", name: str | None = None) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"export: unknown format {fmt!r} (oci or docker)")
    name = name or image.name
    save_images(store, [(image, [name] if name else [])], dest, "oci-archive" if fmt == "oci" else "docker-archive")


def flatten(store: Store, image: StoredImage | None, dest_dir: str, keep_owner: bool | None = None) -> None:
    """Apply every layer in order into dest_dir (created if missing); whiteouts remove what they hide.
    Into a directory that already holds files (`--output type=local` over an existing tree), a
    whiteout removes only what an earlier layer of this flatten wrote there, never the user's own
    files, as BuildKit, which copies the finished tree, never deletes anything in dest.
    `keep_owner` as unpack's (None: when root)."""
    os.makedirs(dest_dir, exist_ok=True)
    if image is None:
        return
    owned: set[tuple[int, int]] | None = set() if os.listdir(dest_dir) else None
    for desc, diff_id in zip(image.manifest.layers, image.config.rootfs.diff_ids):
        actual, _ = store.unpack(desc, dest_dir, mode="apply", owned=owned, keep_owner=keep_owner)
        if actual != diff_id:
            raise DigestMismatch(diff_id, actual, what=f"layer {desc.digest} diffID")


def parse_output(text: str) -> dict[str, str]:
    if "=" not in text:
        return {"type": "local", "dest": text}
    spec: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ExportError(f"--output: {item!r} is not key=value")
        spec[key.strip()] = value.strip()
    if spec.get("type") not in OUTPUT_TYPES:
        raise ExportError(f"--output: type must be one of {', '.join(OUTPUT_TYPES)}, got {spec.get('type')!r}")
    if not spec.get("dest"):
        raise ExportError("--output: dest= is required")
    return spec


def write_output(store: Store, image: StoredImage | None, spec: str | dict[str, str], name: str | None = None) -> None:
    if isinstance(spec, str):
        spec = parse_output(spec)
    kind, dest = spec["type"], spec["dest"]
    if kind == "local":
        # Rootless: the files are the user's (as BuildKit rootless writes them), not the image's ids
        # mapped to subordinate ids the user could not remove or edit outside pybuild.
        from pybuild.rootless import active

        flatten(store, image, dest, keep_owner=False if active() else None)
        return
    if kind == "tar":
        scratch = os.path.join(store.root, "tmp")
        os.makedirs(scratch, exist_ok=True)
        tree = tempfile.mkdtemp(prefix=f"export-{os.getpid()}-", dir=scratch)  # pid: fsck sees it is live
        try:
            flatten(store, image, tree)
            with _open_dest(dest) as out:
                write_layer(tree, out, compression="none")
        finally:
            rmtree_nofollow(tree)
        return
    if image is None:
        raise ExportError(f"--output type={kind}: the image is empty (FROM scratch with no steps)")
    export_image(store, image, dest, kind, name)
