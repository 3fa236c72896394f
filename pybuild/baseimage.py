"""FROM resolution and image import: where a base image comes from, and how it gets into the store.

References understood by `resolve(store, ref, pull=PullOptions())`:
  scratch                     -> None (no base)
  NAME[:TAG], ID, sha256:...  -> an image in the store; with pull policy "missing" (the default, as
                                 docker) a name the store lacks is pulled from its registry
                                 ([host/]repo[:tag][@digest], Docker Hub when no host is named),
                                 "always" pulls first, "never" stays in the store (ImageNotFound)
  oci:PATH[:TAG]              -> an OCI image layout directory
  oci-archive:FILE[:TAG]      -> a tar of an OCI image layout
  docker-archive:FILE[:REF]   -> `docker save` output (manifest.json + config + layer tars; both the
                                 legacy layout and the OCI-inside layout of docker >= 25)
(Earlier build stages are the builder's business; it never calls this for them.)

Every blob copied in is verified against its digest (DigestMismatch, nothing stored); docker-archive
layer tars are verified against the config's rootfs.diff_ids. Imported images are not tagged: the caller
holds `store.using()` until something references them. A multi-platform index resolves to the manifest for
this machine's platform. Config bytes are kept as they are, so the image ID is the source's.

Public API
  resolve(store, ref, pull=None) -> StoredImage | None   pull: PullOptions (policy missing|always|never)
  import_reference(store, ref) -> StoredImage           the three transports above
  import_rootfs(store, src, name=None, compression="gzip", created_by=None, source_date_epoch=None,
                container_config=None, unpack=True) -> StoredImage
      `pybuild import`: a directory or a tar (plain/gzip/zstd/bzip2/xz) becomes a one-layer image,
      tagged `name` when given (as `docker import`).
  unpack_layers(store, image) -> [diff dirs bottom..top]   each layer unpacked once by chainID
  unpack_entering(store, image, label) -> None   the same, for an image entering the store (pull, load,
      import), as `docker load`, podman pull and containerd unpack there: FROM then finds every layer
      unpacked; a failure is one line naming the image and the layer
"""

from __future__ import annotations

import contextlib
import json
import os
import tarfile
import time
from typing import TYPE_CHECKING, Any, BinaryIO

from pybuild.errors import ImageNotFound, StoreError
from pybuild.image import (ANNOTATION_REF_NAME, INDEX_TYPES, MT_CONFIG, MT_LAYER, MT_MANIFEST, ContainerConfig,
                           Descriptor,
                           Index, Manifest, format_time, host_platform, parse_config, parse_index,
                           parse_manifest, sha256_digest, to_json)
from pybuild.store import StoredImage, check_digest
from pyrunc.record import Record

if TYPE_CHECKING:
    from pybuild.store import Store

TRANSPORTS = ("oci:", "oci-archive:", "docker-archive:")


PULL_POLICIES = ("missing", "always", "never")


class PullOptions(Record):
    """How FROM (and `pybuild run`) get images the store lacks; only a pull imports pybuild.registry."""

    policy: str = "missing"
    tls_verify: bool | None = None
    authfile: str | None = None
    progress: str = "auto"


class PullFailed(ImageNotFound):
    """Not in the store, and the pull did not work either; the message says why."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name)
        self.reason = reason
        self.args = (f"image not found: {name} (in the store), and pulling it failed: {reason}",)


def resolve(store: Store, ref: str, pull: PullOptions | None = None) -> StoredImage | None:
    if ref == "scratch":
        return None
    if ref.startswith(TRANSPORTS):
        return import_reference(store, ref)
    pull = pull or PullOptions()
    if pull.policy not in PULL_POLICIES:
        raise StoreError(f"--pull={pull.policy}: expected one of {', '.join(PULL_POLICIES)}")
    if pull.policy != "always":
        try:
            return store.load_image(ref)
        except (ImageNotFound, StoreError):
            if pull.policy == "never":
                raise ImageNotFound(ref) from None
    return pull_image(store, ref, pull)


def pull_image(store: Store, ref: str, pull: PullOptions) -> StoredImage:
    """Pull `ref` (tagged under docker's short name) or raise PullFailed naming the reason."""
    from pybuild.errors import PybuildError
    from pybuild.registry import reference
    from pybuild.registry.progress import TransferProgress
    from pybuild.registry.pull import pull as registry_pull
    from pybuild.registry.transport import Transport

    try:
        parsed = reference.parse(ref)
    except PybuildError:
        raise ImageNotFound(ref) from None  # an ID prefix or a local-only name: nothing to pull
    transport = Transport(tls_verify=pull.tls_verify, authfile_path=pull.authfile)
    try:
        if parsed.familiar() != ref and pull.policy != "always":  # `busybox` vs `docker.io/library/busybox`
            with contextlib.suppress(ImageNotFound, StoreError):
                return store.load_image(parsed.familiar())
        return registry_pull(store, ref, transport, progress=TransferProgress(pull.progress))
    except PybuildError as err:
        raise PullFailed(ref, str(err)) from None
    finally:
        transport.close()


def unpack_layers(store: Store, image: StoredImage | None) -> list[str]:
    if image is None:
        return []
    return store.ensure_layers(image.manifest, image.config)


def unpack_entering(store: Store, image: StoredImage, label: str) -> None:
    """Unpack the layers of an image that enters the store (pull, load, import), before it is tagged,
    so that the first build FROM it finds them ready: the cost its peers pay at the same moment.

    The same per-chainID form and the same code as FROM's (`Store.ensure_layer`: the hardened
    unpacker into a `layers/.tmp-*` dir, the diffID verified, renamed in; layers already there are
    reused), so a kill leaves at most a temp dir that gc and `fsck --repair` remove. The caller holds
    `store.using()`. A failure names the image and the layer; whole layers unpacked before it stay
    (derived data of verified blobs, reused by the next attempt, removed by gc if nothing names them)."""
    from pybuild.errors import PybuildError
    from pybuild.image import chain_ids

    diff_ids = image.config.rootfs.diff_ids
    chains = chain_ids(diff_ids)
    total = len(chains)
    for i, (desc, diff_id, chain) in enumerate(zip(image.manifest.layers, diff_ids, chains)):
        where = f"{label}: unpacking layer {i + 1} of {total} ({desc.digest[:19]})"
        try:
            store.ensure_layer(chain, chains[i - 1] if i else None, diff_id, desc)
        except PybuildError as err:
            wrapped = StoreError(f"{where}: {err}")
            wrapped.exit_code = err.exit_code
            raise wrapped from None
        except OSError as err:  # what the system refuses (a full disk): the temp dir is gone already
            raise StoreError(f"{where}: {err.strerror or err}{f' ({err.filename})' if err.filename else ''}") from None


# ---- sources: a layout directory or a tar, read by relative path ----------------------------------
class _DirSource:
    def __init__(self, path: str) -> None:
        self.path = path

    def open(self, rel: str) -> BinaryIO:
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise StoreError(f"{self.path}: path {rel!r} escapes the image directory")
        try:
            return open(os.path.join(self.path, *parts), "rb")
        except (FileNotFoundError, NotADirectoryError):
            raise StoreError(f"{self.path}: missing {rel}") from None

    def close(self) -> None:
        pass


# What tarfile raises on a truncated or damaged archive, while listing it or reading a member: a size
# field too large to seek to is a ValueError, a short member an EOFError or ReadError (found by
# tests/unit/pybuild/test_fuzz_archives.py; each was a traceback).
_TAR_DAMAGE = (tarfile.TarError, EOFError, ValueError, OverflowError)


class _TarSource:
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._tar = tarfile.open(path, "r:*")
            self._members = {_norm(m.name): m for m in self._tar.getmembers()}
        except (*_TAR_DAMAGE, OSError) as err:
            if hasattr(self, "_tar"):
                self._tar.close()
            # a ReadError's text lists every decompressor tried, one per line
            reason = "not a tar archive, or a damaged one" if isinstance(err, tarfile.ReadError) else \
                str(err).replace("\n", " ")
            raise StoreError(f"{path}: cannot read archive: {reason}") from None

    def open(self, rel: str) -> BinaryIO:
        member = self._members.get(_norm(rel))
        hops = 0
        while member is not None and (member.issym() or member.islnk()):  # docker save links shared layers
            hops += 1
            if hops > 40:
                raise StoreError(f"{self.path}: {rel}: too many levels of links")
            target = member.linkname if member.islnk() else os.path.normpath(
                os.path.join(os.path.dirname(member.name), member.linkname))
            member = self._members.get(_norm(target))
        try:
            handle = self._tar.extractfile(member) if member is not None else None
        except _TAR_DAMAGE as err:
            raise StoreError(f"{self.path}: {rel}: damaged archive: {err}") from None
        if handle is None:
            raise StoreError(f"{self.path}: missing {rel}")
        return _MemberStream(handle, f"{self.path}: {rel}")  # type: ignore[return-value]

    def close(self) -> None:
        self._tar.close()


class _MemberStream:
    """A member of the archive being read: damage found while reading is a StoreError naming it."""

    def __init__(self, handle: BinaryIO, label: str) -> None:
        self._handle = handle
        self._label = label

    def read(self, n: int = -1) -> bytes:
        try:
            return self._handle.read(n)
        except _TAR_DAMAGE as err:
            raise StoreError(f"{self._label}: damaged archive: {err}") from None

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "_MemberStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _norm(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def _split_ref(body: str, want_file: bool) -> tuple[str, str | None]:
    """PATH[:TAG]: the longest prefix that exists is the path (paths may hold ':')."""
    exists = os.path.isfile if want_file else os.path.isdir
    if exists(body):
        return body, None
    cut = len(body)
    while (cut := body.rfind(":", 0, cut)) > 0:
        if exists(body[:cut]):
            return body[:cut], body[cut + 1:] or None
    raise ImageNotFound(body)


def import_reference(store: Store, ref: str) -> StoredImage:
    transport, _, body = ref.partition(":")
    if transport == "oci":
        path, tag = _split_ref(body, want_file=False)
        source: Any = _DirSource(path)
    else:
        path, tag = _split_ref(body, want_file=True)
        source = _TarSource(path)
    try:
        if transport == "docker-archive":
            return _import_docker_archive(store, source, tag, ref)
        return _import_layout(store, source, tag, ref)
    finally:
        source.close()


def _copy_blob(store: Store, source: Any, desc: Descriptor) -> None:
    hexpart = check_digest(desc.digest)
    if store.has_blob(desc.digest):
        return
    with source.open(f"blobs/sha256/{hexpart}") as stream:
        store.ingest(stream, desc.digest)


def _read_blob(source: Any, digest: str) -> bytes:
    with source.open(f"blobs/sha256/{check_digest(digest)}") as stream:
        data = stream.read()
    actual = sha256_digest(data)
    if actual != digest:
        from pybuild.errors import DigestMismatch
        raise DigestMismatch(digest, actual)
    return data


def _pick_manifest(index: Index, tag: str | None, ref: str) -> Descriptor:
    candidates = list(index.manifests)
    if tag is not None:
        named = [d for d in candidates if (d.annotations or {}).get(ANNOTATION_REF_NAME) in
                 (tag, f"{tag}:latest" if ":" not in tag else tag)]
        if not named:
            raise ImageNotFound(ref)
        return named[-1]
    if len(candidates) != 1:
        raise StoreError(f"{ref}: the layout holds {len(candidates)} images; name one as {ref}:TAG")
    return candidates[0]


def _pick_platform(index: Index, ref: str) -> Descriptor:
    host = host_platform()
    for desc in index.manifests:
        platform = desc.platform or {}
        if platform.get("architecture") == host["architecture"] and platform.get("os", "linux") == host["os"]:
            return desc
    raise StoreError(f"{ref}: no image for platform {host['os']}/{host['architecture']}")


def _import_layout(store: Store, source: Any, tag: str | None, ref: str) -> StoredImage:
    with source.open("index.json") as stream:
        index = parse_index(stream.read())
    return _import_layout_desc(store, source, _pick_manifest(index, tag, ref), ref)


def _import_layout_desc(store: Store, source: Any, desc: Descriptor, ref: str) -> StoredImage:
    blobs_to_keep = []
    while desc.media_type in INDEX_TYPES:
        data = _read_blob(source, desc.digest)
        blobs_to_keep.append(data)
        desc = _pick_platform(parse_index(data), ref)
    data = _read_blob(source, desc.digest)
    manifest = parse_manifest(data)
    for blob in (manifest.config, *manifest.layers):
        _copy_blob(store, source, blob)
    store.put_blob(data)
    config = store.read_config(manifest.config.digest)
    if len(config.rootfs.diff_ids) != len(manifest.layers):
        raise StoreError(f"{ref}: manifest has {len(manifest.layers)} layers, config {len(config.rootfs.diff_ids)}")
    plain = Descriptor(manifest.media_type or MT_MANIFEST, desc.digest, len(data))
    return StoredImage(name=None, descriptor=plain, manifest=manifest, config=config)


_DOCKER_ENTRY = {"Config": str, "Layers": ("list", str), "RepoTags": ("list", str)}


def _docker_entries(source: Any, ref: str) -> list[Any]:
    """manifest.json of a docker-archive: a non-empty list of entries, each checked (a wrong type is
    an error naming it)."""
    from pybuild.image import _check

    with source.open("manifest.json") as stream:
        try:
            entries = json.loads(stream.read())
        except (ValueError, RecursionError) as err:
            raise StoreError(f"{ref}: manifest.json: invalid JSON: {err or 'nested too deeply'}") from None
    if not isinstance(entries, list) or not entries:
        raise StoreError(f"{ref}: manifest.json: expected a non-empty list")
    for i, entry in enumerate(entries):
        _check(entry, _DOCKER_ENTRY, f"{ref}: manifest.json[{i}]")
    return entries


def _import_docker_archive(store: Store, source: Any, tag: str | None, ref: str) -> StoredImage:
    entries = _docker_entries(source, ref)
    if tag is not None:
        wanted = {tag, tag if ":" in tag.rsplit("/", 1)[-1] else f"{tag}:latest"}
        entries = [e for e in entries if wanted & set(e.get("RepoTags") or ())]
        if not entries:
            raise ImageNotFound(ref)
    elif len(entries) != 1:
        raise StoreError(f"{ref}: the archive holds {len(entries)} images; name one as {ref}:NAME:TAG")
    return _import_docker_entry(store, source, entries[0], ref)


def _import_docker_entry(store: Store, source: Any, entry: Any, ref: str) -> StoredImage:
    if not isinstance(entry, dict):
        raise StoreError(f"{ref}: manifest.json: entries must be objects")
    try:
        config_path, layer_paths = entry["Config"], list(entry["Layers"])
    except (KeyError, TypeError):
        raise StoreError(f"{ref}: manifest.json: entry without Config or Layers") from None
    with source.open(config_path) as stream:
        config_bytes = stream.read()
    config = parse_config(config_bytes)
    if len(config.rootfs.diff_ids) != len(layer_paths):
        raise StoreError(f"{ref}: {len(layer_paths)} layer files but {len(config.rootfs.diff_ids)} diff_ids")
    config_digest = store.put_blob(config_bytes)
    layers = []
    for path, diff_id in zip(layer_paths, config.rootfs.diff_ids):
        check_digest(diff_id)
        if not store.has_blob(diff_id):
            from pybuild.compress import open_decompressed
            with source.open(path) as stream:
                store.ingest(open_decompressed(stream), diff_id)  # DigestMismatch if the tar is not that layer
        layers.append(Descriptor(MT_LAYER, diff_id, os.path.getsize(store.blob_path(diff_id))))
    manifest = Manifest(config=Descriptor(MT_CONFIG, config_digest, len(config_bytes)), layers=tuple(layers))
    desc = store.put_json(manifest, MT_MANIFEST)
    return StoredImage(name=None, descriptor=desc, manifest=manifest, config=config)


ANNOTATION_IMAGE_NAME = "io.containerd.image.name"  # the full name, as BuildKit and containerd write it


def load_archive(store: Store, path: str, unpack: bool = True) -> list[tuple[StoredImage, list[str]]]:
    """`pybuild load`: every image of a docker-archive (manifest.json) or an OCI archive (index.json),
    with the names it carries (RepoTags; io.containerd.image.name or a full ref.name). Not tagged: the
    caller tags them once all are in. Multi-platform indexes resolve to this machine's platform.
    `unpack`: each image's layers are unpacked as it comes in (`unpack_entering`), as `docker load` does;
    False only moves blobs (`load --no-unpack`)."""
    out = _load_archive(store, path)
    if unpack:
        for image, _names in out:
            unpack_entering(store, image, f"load {path}")
    return out


def _load_archive(store: Store, path: str) -> list[tuple[StoredImage, list[str]]]:
    source = _TarSource(path)
    try:
        out: list[tuple[StoredImage, list[str]]] = []
        if "manifest.json" in source._members:
            for entry in _docker_entries(source, path):
                image = _import_docker_entry(store, source, entry, path)
                out.append((image, [str(t) for t in entry.get("RepoTags") or ()]))
            return out
        if "index.json" not in source._members:
            raise StoreError(f"{path}: neither a docker-archive (manifest.json) nor an OCI archive (index.json)")
        with source.open("index.json") as stream:
            index = parse_index(stream.read())
        if not index.manifests:
            raise StoreError(f"{path}: index.json lists no image")
        for desc in index.manifests:
            annotations = desc.annotations or {}
            name = annotations.get(ANNOTATION_IMAGE_NAME) or annotations.get(ANNOTATION_REF_NAME)
            out.append((_import_layout_desc(store, source, desc, path), [name] if name else []))
        return out
    finally:
        source.close()


def import_rootfs(store: Store, src: str, name: str | None = None, compression: str = "gzip",
                  created_by: str | None = None, source_date_epoch: int | None = None,
                  container_config: ContainerConfig | None = None, unpack: bool = True) -> StoredImage:
    """`pybuild import`: one layer from a directory, a tar file or "-" (a tar on stdin), a config for this
    platform. `unpack`: the layer is unpacked before the image is tagged, as `docker import` does (a
    directory too: its tree went into the blob, and the layer store holds what the blob says, through
    the same unpacker as every other layer); False only stores the blob (`import --no-unpack`)."""
    from pybuild.layer import commit_layer, recompress
    from pybuild.mutate import Mutator
    if os.path.isdir(src):
        desc, digests = commit_layer(store, src, compression=compression, source_date_epoch=source_date_epoch)
    elif src == "-" or os.path.isfile(src):
        import sys
        with store.blob_writer() as writer, (open(src, "rb") if src != "-" else
                                             contextlib.nullcontext(sys.stdin.buffer)) as stream:
            digests = recompress(stream, writer, compression)
            writer.commit(digests.digest)
        desc = Descriptor(digests.media_type, digests.digest, digests.size)
    else:
        raise StoreError(f"import: {src}: no such file or directory")
    created = format_time(source_date_epoch if source_date_epoch is not None else time.time())
    mutator = Mutator(store)
    mutator.set_created(created)
    if container_config is not None:
        mutator.set_config(container_config)
    mutator.add_layer(desc, digests.diff_id, created_by or "", created=created,
                      comment=f"Imported from {os.path.basename(os.path.abspath(src))}")
    manifest_desc = mutator.commit()
    manifest = store.read_manifest(manifest_desc.digest)
    image = StoredImage(name=name, descriptor=manifest_desc, manifest=manifest,
                        config=store.read_config(manifest.config.digest))
    if unpack:
        unpack_entering(store, image, f"import {src}")
    if name:
        store.tag(name, manifest_desc)
    return image


def layout_index_bytes(manifest_desc: Descriptor, ref_name: str | None) -> bytes:
    """index.json for a one-image layout (exports)."""
    desc = manifest_desc.with_annotations({ANNOTATION_REF_NAME: ref_name} if ref_name else None)
    return to_json(Index(manifests=(desc,)))
