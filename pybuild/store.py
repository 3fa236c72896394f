"""The image store: an OCI image layout under --root, plus unpacked layers by chainID.

Layout (image-spec image-layout.md, so `skopeo inspect oci:ROOT:TAG` and umoci read it):
    ROOT/oci-layout                 {"imageLayoutVersion": "1.0.0"}
    ROOT/index.json                 one manifest descriptor per tag (annotation org.opencontainers.image.ref.name)
    ROOT/blobs/sha256/<hex>         content-addressed blobs
    ROOT/ingest/<hex>               a blob being downloaded (resumable; pybuild.registry.ingest), 0700
    ROOT/sources/<hex>              "host/repository" lines: where a blob is known to be (cross-repo mount)
    ROOT/layers/<hex of chainID>/   layer.json (chain_id, diff_id, parent, size) + diff/ (the layer unpacked,
                                    whiteouts in overlay form, usable as an overlay lowerdir; hex only because
                                    ':' separates lowerdirs in mount options)

Invariants:
  - A blob file exists only with its full content: written to a temp file in blobs/sha256, fsynced, renamed,
    directory fsynced. Every read hashes the content and raises DigestMismatch if it differs; nothing
    corrupt is returned to a caller.
  - index.json is read-modify-written under an exclusive flock on ROOT/.index.lock and replaced atomically.
  - An unpacked layer appears by renaming a finished temp dir (layers/.tmp-*); a killed process leaves only
    temp dirs, which gc removes. Unpacked layers are derived data: they can always be rebuilt from blobs.
  - Builds hold `store.using()` (a shared flock on ROOT/.gc.lock) while they rely on untagged blobs or layers;
    gc takes it exclusively, so it never removes what a running build uses.

Public API (class Store):
  Store(root, create=True)
  blobs:  has_blob(d), blob_path(d), put_blob(bytes) -> digest, put_json(obj, media_type) -> Descriptor,
          blob_writer() -> BlobWriter (.write(b), .commit(expected=None) -> (digest, size)),
          ingest(fileobj, expected_digest=None) -> (digest, size), read_blob(d) -> bytes (verified),
          open_blob(d) -> VerifiedReader (raises DigestMismatch at EOF), verify_blob(d)
  refs:   list_refs() -> [(name, Descriptor)], resolve(name) -> Descriptor, tag(name, desc), untag(name),
          load_image(name_or_digest) -> StoredImage(name, descriptor, manifest, config_digest, config)
  layers: has_layer(chain), layer_dir(chain) -> path of diff/, layer_record(chain) -> LayerRecord,
          ensure_layer(chain, parent, diff_id, blob_desc) -> diff dir (unpacks the blob once),
          unpack(blob_desc, dest, mode="overlay"|"apply") -> (diffID, size) (corruption -> DigestMismatch),
          ensure_layers(manifest, config) -> [diff dirs bottom..top], adopt_layer(chain, parent, diff_id,
          size, src_dir) -> diff dir (renames an already-unpacked dir in, e.g. a finished overlay upper dir)
  upkeep: using() (shared lock context), exclusive(), index_locked(), gc(extra_blobs=(), extra_layers=()) -> GcStats
          (the images of `pybuild run` containers are roots too; pybuild.fsck checks the whole store)
  sources: add_blob_source(d, "host/repo"), blob_sources(d) -> [..] (hints for cross-repository mounts)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

from pybuild import fault_point
from pybuild.blobs import BlobWriter, VerifiedReader, check_digest
from pybuild.errors import DigestMismatch, ImageNotFound, PybuildError, StoreError
from pybuild.image import (ANNOTATION_REF_NAME, INDEX_TYPES, Descriptor, ImageConfig, Index, Manifest,
                           chain_ids, parse_config, parse_index, parse_manifest, to_json)
from pyrunc.fsutil import atomic_write, fsync_dir, rmtree_nofollow
from pyrunc.record import Record

_CHUNK = 1 << 20


class LayerRecord(Record):
    chain_id: str
    diff_id: str
    parent: str | None
    size: int
    path: str  # the diff/ directory


class StoredImage(Record):
    name: str | None
    descriptor: Descriptor
    manifest: Manifest
    config: ImageConfig

    @property
    def id(self) -> str:
        """The image ID as docker shows it: the config digest."""
        return self.manifest.config.digest

    @property
    def chain_ids(self) -> list[str]:
        return chain_ids(self.config.rootfs.diff_ids)


class GcStats(Record):
    blobs_removed: int
    layers_removed: int
    bytes_freed: int


class Store:
    def __init__(self, root: str, create: bool = True) -> None:
        self.root = os.path.abspath(root)
        self.blob_dir = os.path.join(self.root, "blobs", "sha256")
        self.layers_root = os.path.join(self.root, "layers")
        self.index_path = os.path.join(self.root, "index.json")
        if create:
            self._init_layout()
        elif not os.path.isfile(os.path.join(self.root, "oci-layout")):
            raise StoreError(f"{self.root}: not an OCI image layout (no oci-layout file)")

    def _init_layout(self) -> None:
        os.makedirs(self.blob_dir, exist_ok=True)
        os.makedirs(self.layers_root, exist_ok=True)
        layout = os.path.join(self.root, "oci-layout")
        if not os.path.exists(layout):
            atomic_write(layout, b'{"imageLayoutVersion":"1.0.0"}')
        if not os.path.exists(self.index_path):
            with self._index_lock():
                if not os.path.exists(self.index_path):
                    atomic_write(self.index_path, to_json(Index()))

    # ---- blobs -----------------------------------------------------------------------------
    def blob_path(self, digest: str) -> str:
        return os.path.join(self.blob_dir, check_digest(digest))

    def has_blob(self, digest: str) -> bool:
        return os.path.isfile(self.blob_path(digest))

    def blob_writer(self) -> BlobWriter:
        return BlobWriter(self.blob_dir)

    def put_blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has_blob(digest):
            with self.blob_writer() as writer:
                writer.write(data)
                writer.commit(digest)
        return digest

    def put_json(self, obj: Any, media_type: str) -> Descriptor:
        data = to_json(obj)
        return Descriptor(media_type=media_type, digest=self.put_blob(data), size=len(data))

    def ingest(self, stream: BinaryIO, expected: str | None = None) -> tuple[str, int]:
        """Copy a stream in as a blob, verifying `expected` if given (DigestMismatch, nothing stored)."""
        if expected is not None and self.has_blob(expected):
            self.verify_blob(expected)
            while stream.read(_CHUNK):  # the caller may rely on the stream being consumed
                pass
            return expected, os.path.getsize(self.blob_path(expected))
        with self.blob_writer() as writer:
            while chunk := stream.read(_CHUNK):
                writer.write(chunk)
            return writer.commit(expected)

    def open_blob(self, digest: str, size: int | None = None) -> VerifiedReader:
        path = self.blob_path(digest)
        if not os.path.isfile(path):
            raise StoreError(f"blob {digest}: not in store {self.root}")
        return VerifiedReader(path, digest, size)

    def read_blob(self, digest: str) -> bytes:
        path = self.blob_path(digest)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise StoreError(f"blob {digest}: not in store {self.root}") from None
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise DigestMismatch(digest, actual)
        return data

    def verify_blob(self, digest: str) -> None:
        with self.open_blob(digest) as reader:
            reader.drain()

    def read_manifest(self, digest: str) -> Manifest:
        return parse_manifest(self.read_blob(digest))

    def read_config(self, digest: str) -> ImageConfig:
        return parse_config(self.read_blob(digest))

    # ---- index.json and names --------------------------------------------------------------
    @contextlib.contextmanager
    def _index_lock(self) -> Iterator[None]:
        fd = os.open(os.path.join(self.root, ".index.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def read_index(self) -> Index:
        try:
            with open(self.index_path, "rb") as f:
                return parse_index(f.read())
        except FileNotFoundError:
            raise StoreError(f"{self.index_path}: missing") from None

    def _write_index(self, index: Index) -> None:
        atomic_write(self.index_path, to_json(index))

    def list_refs(self) -> list[tuple[str | None, Descriptor]]:
        return [((d.annotations or {}).get(ANNOTATION_REF_NAME), d) for d in self.read_index().manifests]

    def tag(self, name: str, desc: Descriptor) -> None:
        """Point `name` at a manifest (replacing what it named before), atomically."""
        name = normalize_name(name)
        annotations = dict(desc.annotations or {})
        annotations[ANNOTATION_REF_NAME] = name
        tagged = desc.with_annotations(annotations)
        with self._index_lock():
            fault_point("index.locked")
            index = self.read_index()
            kept = tuple(d for d in index.manifests if (d.annotations or {}).get(ANNOTATION_REF_NAME) != name)
            self._write_index(Index(manifests=kept + (tagged,), annotations=index.annotations))

    def untag(self, name: str) -> Descriptor:
        with self._index_lock():
            index = self.read_index()
            found = self._find_ref(index, name)
            if found is None:
                raise ImageNotFound(name)
            kept = tuple(d for d in index.manifests if d is not found)
            self._write_index(Index(manifests=kept, annotations=index.annotations))
            return found

    @staticmethod
    def _find_ref(index: Index, name: str) -> Descriptor | None:
        wanted = {name, normalize_name(name)}
        if name.endswith(":latest"):
            wanted.add(name[: -len(":latest")])
        for desc in reversed(index.manifests):
            if (desc.annotations or {}).get(ANNOTATION_REF_NAME) in wanted:
                return desc
        return None

    def resolve(self, name: str) -> Descriptor:
        """A tag, a manifest digest, or an image ID (config digest, full or a ≥ 4-hex prefix)."""
        index = self.read_index()
        found = self._find_ref(index, name)
        if found is not None:
            return found
        hexpart = name[7:] if name.startswith("sha256:") else name
        if len(hexpart) >= 4 and re.fullmatch(r"[0-9a-f]+", hexpart):
            matches: dict[str, Descriptor] = {}  # image (manifest) digest -> a descriptor naming it
            for desc in index.manifests:
                if desc.digest[7:].startswith(hexpart):
                    matches.setdefault(desc.digest, desc)
                elif desc.media_type not in INDEX_TYPES:
                    if self.read_manifest(desc.digest).config.digest[7:].startswith(hexpart):
                        matches.setdefault(desc.digest, desc)
            if len(matches) > 1:
                raise StoreError(f"{name}: ambiguous: matches {len(matches)} images; give more digits")
            if matches:
                return next(iter(matches.values()))
            if len(hexpart) == 64 and self.has_blob("sha256:" + hexpart):
                data = self.read_blob("sha256:" + hexpart)
                with contextlib.suppress(StoreError):
                    manifest = parse_manifest(data)
                    return Descriptor(manifest.media_type, "sha256:" + hexpart, len(data))
        raise ImageNotFound(name)

    def load_image(self, name: str) -> StoredImage:
        desc = self.resolve(name)
        if desc.media_type in INDEX_TYPES:
            raise StoreError(f"{name}: is an image index; pybuild stores single-platform images")
        manifest = self.read_manifest(desc.digest)
        config = self.read_config(manifest.config.digest)
        if len(config.rootfs.diff_ids) != len(manifest.layers):
            raise StoreError(f"{name}: manifest has {len(manifest.layers)} layers but config has "
                             f"{len(config.rootfs.diff_ids)} diff_ids")
        ref = (desc.annotations or {}).get(ANNOTATION_REF_NAME)
        return StoredImage(name=ref, descriptor=desc, manifest=manifest, config=config)

    # ---- unpacked layers -------------------------------------------------------------------
    def _layer_home(self, chain: str) -> str:
        return os.path.join(self.layers_root, check_digest(chain))

    def layer_dir(self, chain: str) -> str:
        return os.path.join(self._layer_home(chain), "diff")

    def has_layer(self, chain: str) -> bool:
        return os.path.isfile(os.path.join(self._layer_home(chain), "layer.json"))

    def layer_record(self, chain: str) -> LayerRecord:
        try:
            with open(os.path.join(self._layer_home(chain), "layer.json"), "rb") as f:
                meta = json.load(f)
        except FileNotFoundError:
            raise StoreError(f"layer {chain}: not unpacked in {self.layers_root}") from None
        return LayerRecord(chain_id=meta["chain_id"], diff_id=meta["diff_id"], parent=meta.get("parent"),
                           size=int(meta["size"]), path=self.layer_dir(chain))

    def _publish_layer(self, tmp: str, chain: str, parent: str | None, diff_id: str, size: int) -> str:
        meta = {"chain_id": chain, "diff_id": diff_id, "parent": parent, "size": size}
        atomic_write(os.path.join(tmp, "layer.json"), json.dumps(meta, sort_keys=True).encode())
        try:
            os.rename(tmp, self._layer_home(chain))
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            rmtree_nofollow(tmp)  # another build finished the same layer first
        fsync_dir(self.layers_root)
        return self.layer_dir(chain)

    def ensure_layer(self, chain: str, parent: str | None, diff_id: str, blob: Descriptor) -> str:
        """Unpack a layer blob once (verifying its digest and diffID) and return its diff dir."""
        if self.has_layer(chain):
            return self.layer_dir(chain)
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=self.layers_root)
        os.chmod(tmp, 0o755)
        try:
            diff = os.path.join(tmp, "diff")
            os.mkdir(diff, 0o755)
            actual_diff, size = self.unpack(blob, diff, mode="overlay")
            fault_point("layer.unpacked")
            if actual_diff != diff_id:
                raise DigestMismatch(diff_id, actual_diff, what=f"layer {blob.digest} diffID")
            return self._publish_layer(tmp, chain, parent, diff_id, size)
        except BaseException:
            rmtree_nofollow(tmp)
            raise

    def unpack(self, blob: Descriptor, dest: str, mode: str = "overlay",
               owned: set[tuple[int, int]] | None = None, keep_owner: bool | None = None) -> tuple[str, int]:
        """Unpack a layer blob into dest (pybuild.unpack modes, `owned` as there); returns (diffID, tar
        size). A blob that fails to decompress or parse is re-verified, so corruption is reported as
        DigestMismatch."""
        from pybuild.unpack import unpack_blob
        try:
            with self.open_blob(blob.digest, blob.size) as reader:
                return unpack_blob(reader, blob.media_type, dest, mode=mode, owned=owned, keep_owner=keep_owner)
        except PybuildError as err:
            if not isinstance(err, DigestMismatch):
                self.verify_blob(blob.digest)
            raise

    def ensure_layers(self, manifest: Manifest, config: ImageConfig) -> list[str]:
        """Unpack every layer of an image (once) and return their diff dirs, bottom first."""
        chains = chain_ids(config.rootfs.diff_ids)
        dirs = []
        for i, (desc, diff_id, chain) in enumerate(zip(manifest.layers, config.rootfs.diff_ids, chains)):
            dirs.append(self.ensure_layer(chain, chains[i - 1] if i else None, diff_id, desc))
        return dirs

    def adopt_layer(self, chain: str, parent: str | None, diff_id: str, size: int, src_dir: str) -> str:
        """Move an already-unpacked tree (overlay form, same filesystem) in as layer `chain`."""
        if self.has_layer(chain):
            return self.layer_dir(chain)
        tmp = tempfile.mkdtemp(prefix=".tmp-", dir=self.layers_root)
        os.chmod(tmp, 0o755)
        try:
            os.rename(src_dir, os.path.join(tmp, "diff"))
            return self._publish_layer(tmp, chain, parent, diff_id, size)
        except BaseException:
            rmtree_nofollow(tmp)
            raise

    # ---- where blobs are known to be (registry repositories) ---------------------------------
    def _sources_path(self, digest: str) -> str:
        return os.path.join(self.root, "sources", check_digest(digest))

    def add_blob_source(self, digest: str, source: str) -> None:
        """Remember that `source` (host/repository) has the blob: one O_APPEND line, idempotent."""
        if "\n" in source or source in self.blob_sources(digest):
            return
        os.makedirs(os.path.join(self.root, "sources"), exist_ok=True)
        fd = os.open(self._sources_path(digest), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW |
                     os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, source.encode() + b"\n")
        finally:
            os.close(fd)

    def blob_sources(self, digest: str) -> list[str]:
        try:
            fd = os.open(self._sources_path(digest), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, OSError):
            return []
        with os.fdopen(fd, "rb") as fh:
            return [line for line in fh.read().decode(errors="replace").splitlines() if line]

    # ---- locking and gc --------------------------------------------------------------------
    @contextlib.contextmanager
    def _gc_lock(self, mode: int) -> Iterator[None]:
        fd = os.open(os.path.join(self.root, ".gc.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def using(self) -> contextlib.AbstractContextManager[None]:
        """Hold while a build relies on blobs or layers that no tag references yet."""
        return self._gc_lock(fcntl.LOCK_SH)

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Hold while removing anything (gc, fsck --repair): waits until no one is `using()` the store."""
        return self._gc_lock(fcntl.LOCK_EX)

    def index_locked(self) -> contextlib.AbstractContextManager[None]:
        """Hold while nothing may change index.json (fsck --repair removing its temp files)."""
        return self._index_lock()

    def referenced(self, extra_manifests: Iterable[str] = ()) -> tuple[set[str], set[str]]:
        """Blob digests and layer chainIDs reachable from index.json and from `extra_manifests`."""
        from pybuild.image import MT_MANIFEST

        blobs: set[str] = set()
        layers: set[str] = set()
        pending = list(self.read_index().manifests) + [Descriptor(MT_MANIFEST, d, 0) for d in extra_manifests]
        while pending:
            desc = pending.pop()
            if desc.digest in blobs or not self.has_blob(desc.digest):
                continue
            blobs.add(desc.digest)
            if desc.media_type in INDEX_TYPES:
                pending.extend(parse_index(self.read_blob(desc.digest)).manifests)
                continue
            manifest = self.read_manifest(desc.digest)
            blobs.add(manifest.config.digest)
            blobs.update(layer.digest for layer in manifest.layers)
            if self.has_blob(manifest.config.digest):
                layers.update(chain_ids(self.read_config(manifest.config.digest).rootfs.diff_ids))
        return blobs, layers

    def gc(self, extra_blobs: Iterable[str] = (), extra_layers: Iterable[str] = ()) -> GcStats:
        """Remove blobs and unpacked layers that no tag, no container of `pybuild run` (running or not:
        its layers are its rootfs' lower dirs) nor the extra roots reach, and temp leftovers."""
        from pybuild.containers import images_in_use

        with self._gc_lock(fcntl.LOCK_EX):
            keep_blobs, keep_layers = self.referenced(images_in_use(self.root))
            keep_blobs.update(extra_blobs)
            keep_layers.update(extra_layers)
            keep_blob_hex = {d[7:] for d in keep_blobs}
            keep_layer_hex = {d[7:] for d in keep_layers}
            blobs = layers = freed = 0
            for entry in os.scandir(self.blob_dir):
                if entry.name not in keep_blob_hex:
                    freed += entry.stat(follow_symlinks=False).st_size
                    os.unlink(entry.path)
                    blobs += entry.name[:5] != ".tmp-"
            for entry in os.scandir(self.layers_root):
                if entry.name not in keep_layer_hex:
                    rmtree_nofollow(entry.path)
                    layers += entry.name[:5] != ".tmp-"
            fsync_dir(self.blob_dir)
            for sub in ("sources", "ingest"):  # hints of removed blobs; partial downloads
                directory = os.path.join(self.root, sub)
                if os.path.isdir(directory):
                    for entry in os.scandir(directory):
                        if sub == "ingest" or entry.name not in keep_blob_hex:
                            os.unlink(entry.path)
            return GcStats(blobs_removed=blobs, layers_removed=layers, bytes_freed=freed)


def write_atomic(path: str, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace `path` with `data`: an unpredictable temp name beside it (mkstemp opens O_EXCL|O_NOFOLLOW),
    the mode set before anything is written, fsync, rename, fsync of the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.rename(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(directory)


def normalize_name(name: str) -> str:
    """Docker-style names: a name without a tag stands for NAME:latest; stored without ':latest' so that
    `oci:ROOT:NAME` finds it, as the design's `skopeo copy oci:/var/lib/pybuild:flaskdemo` expects."""
    from pybuild.utf8 import first_bad

    if not name or any(c.isspace() for c in name) or first_bad(name):
        raise StoreError(f"invalid image name: {name!r}")
    if "@" in name:  # NAME@sha256:<hex>: an image pulled by digest (a valid OCI ref.name)
        base, _, digest = name.partition("@")
        if not base or not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise StoreError(f"invalid image name: {name!r}")
        return name
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash and name[colon + 1:] == "latest":
        return name[:colon]
    return name


def split_name(name: str) -> tuple[str, str]:
    """(repository, tag) for display: "busybox" -> ("busybox", "latest"); NAME@DIGEST -> (NAME, "<none>")."""
    if "@" in name:
        return name.partition("@")[0], "<none>"
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1:]
    return name, "latest"
