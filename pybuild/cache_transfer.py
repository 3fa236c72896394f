"""A build cache that travels: `--cache-to` / `--cache-from`, as BuildKit's registry and local caches.

    --cache-to   type=registry,ref=HOST/REPO:TAG[,mode=min|max][,mounts=true]
                 type=local,dest=DIR[,tag=T][,mode=...][,mounts=true]
    --cache-from type=registry,ref=HOST/REPO:TAG      type=local,src=DIR[,tag=T]

What travels is the step cache (pybuild.cache): for each step key the build used, the image config and
layer descriptors after that step, plus the history timestamps of metadata-only steps, in one JSON
config blob; the layers themselves are the manifest's layers (BuildKit's `image-manifest=true` form: an
OCI image manifest whose config has media type CACHE_CONFIG_TYPE, which any registry stores). mode=min
(the default, as BuildKit's) exports the records of the target stage, mode=max those of every stage.

Import writes the records into the local cache (never replacing local ones) and remembers where each
layer is; a layer is fetched only when a step hits (Cache.usable), so a fresh machine rebuilds from the
cache without running a RUN step and downloads only what it uses. A cache that is missing or unreadable
is a warning, not an error: the build runs without it, as BuildKit's.

Beyond BuildKit (moby/buildkit#1474): with `mounts=true` the contents of the `RUN --mount=type=cache`
directories the Dockerfile names are exported too, one layer each (annotation MOUNT_ANNOTATION = the
mount's directory key), and an import unpacks each into ROOT/cache-mounts/<key> when that directory is
absent there (a local cache mount is never overwritten). Compilers' and package managers' caches then
survive a move to a fresh machine, which is what makes a cache *miss* fast there too.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import TYPE_CHECKING, Any

from pybuild.errors import PybuildError
from pybuild.image import MT_LAYER_GZIP, MT_MANIFEST, Descriptor, Manifest, parse_manifest

if TYPE_CHECKING:
    from pybuild.builder import Builder
    from pybuild.store import Store

CACHE_CONFIG_TYPE = "application/vnd.pybuild.cache.config.v1+json"
MOUNT_ANNOTATION = "dev.pybuild.cache.mount"
_KEYS = {"type", "ref", "dest", "src", "tag", "mode", "mounts", "compression"}


class CacheSpecError(PybuildError):
    pass


def parse_spec(text: str, flag: str) -> dict[str, str]:
    spec: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in _KEYS:
            raise CacheSpecError(f"{flag} {text!r}: {item!r} is not one of {', '.join(sorted(_KEYS))}=VALUE")
        spec[key] = value.strip()
    kind = spec.get("type")
    if kind == "registry":
        if not spec.get("ref"):
            raise CacheSpecError(f"{flag} {text!r}: type=registry needs ref=")
    elif kind == "local":
        need = "dest" if flag == "--cache-to" else "src"
        if not spec.get(need):
            raise CacheSpecError(f"{flag} {text!r}: type=local needs {need}=")
    else:
        raise CacheSpecError(f"{flag} {text!r}: type must be registry or local")
    if spec.get("mode", "min") not in ("min", "max"):
        raise CacheSpecError(f"{flag} {text!r}: mode must be min or max")
    if spec.get("mounts", "false").lower() not in ("true", "false", "1", "0"):
        raise CacheSpecError(f"{flag} {text!r}: mounts must be true or false")
    return spec


# ---- export ------------------------------------------------------------------------------------
def export_caches(builder: Builder, specs: list[str], target: int) -> None:
    for text in specs:
        spec = parse_spec(text, "--cache-to")
        manifest_desc = _build_cache_manifest(builder, spec, target)
        if spec["type"] == "registry":
            _push(builder, spec, manifest_desc)
            where = spec["ref"]
        else:
            _write_local(builder.store, spec["dest"], spec.get("tag") or "latest", manifest_desc)
            where = spec["dest"]
        builder.progress.message(f"--> cache exported to {where} ({manifest_desc.digest[:19]})")


def cache_mount_keys(builder: Builder, stage_indices: list[int]) -> list[str]:
    """ROOT/cache-mounts/<key> names of the `RUN --mount=type=cache` of the given stages."""
    import hashlib

    from pybuild.dockerfile.instructions import RunInstr
    from pybuild.steps.run_mounts import parse_mount

    keys: list[str] = []
    for idx in stage_indices:
        for ins in builder.stages[idx].instructions:
            if not isinstance(ins, RunInstr):
                continue
            for raw in ins.mounts:
                try:
                    mount = parse_mount(raw)
                except PybuildError:
                    continue
                if mount.type == "cache":
                    key = hashlib.sha256((mount.id or mount.target).encode()).hexdigest()[:32]
                    if key not in keys:
                        keys.append(key)
    return keys


def _build_cache_manifest(builder: Builder, spec: dict[str, str], target: int) -> Descriptor:
    from pybuild.layer import commit_layer

    cache, store = builder.cache, builder.store
    everything = spec.get("mode", "min") == "max"
    steps: dict[str, Any] = {}
    layers: dict[str, Descriptor] = {}
    for key, stage in sorted(cache.used_steps.items()):
        if not everything and stage != target:
            continue
        record = cache.lookup(key)
        if record is None:
            continue
        steps[key] = {"config": record.config, "layers": record.layers}
        for layer in record.layers:
            desc = Descriptor.from_dict(layer)
            layers.setdefault(desc.digest, desc)
    meta = {parent: cache.meta_entries(parent) for parent, stage in sorted(cache.used_meta.items())
            if everything or stage == target}
    mounts: dict[str, str] = {}
    mount_layers: list[Descriptor] = []
    if spec.get("mounts", "false").lower() in ("true", "1"):
        stages = sorted(set(cache.used_steps.values()) | {target}) if everything else [target]
        for key in cache_mount_keys(builder, stages):
            path = os.path.join(store.root, "cache-mounts", key)
            if not os.path.isdir(path):
                continue
            desc, _ = commit_layer(store, path, compression="gzip")
            desc = Descriptor(desc.media_type, desc.digest, desc.size, annotations={MOUNT_ANNOTATION: key})
            mounts[key] = desc.digest
            mount_layers.append(desc)
    doc = {"version": 1, "steps": steps, "meta": meta, "mounts": mounts}
    config = store.put_json(doc, CACHE_CONFIG_TYPE)
    manifest = Manifest(config=config, layers=tuple(layers.values()) + tuple(mount_layers))
    return store.put_json(manifest, MT_MANIFEST)


def _push(builder: Builder, spec: dict[str, str], manifest_desc: Descriptor) -> None:
    from pybuild.registry.progress import TransferProgress
    from pybuild.registry.push import push

    transport = _transport(builder)
    try:
        push(builder.store, manifest_desc.digest, spec["ref"], transport,
             progress=TransferProgress("quiet" if builder.progress.mode == "quiet" else "plain"
                                       if builder.progress.mode == "plain" else "auto"))
    finally:
        transport.close()


def _transport(builder: Builder):  # type: ignore[no-untyped-def]
    from pybuild.registry.transport import Transport
    return Transport(tls_verify=builder.opts.tls_verify, authfile_path=builder.opts.authfile)


def _write_local(store: Store, dest: str, tag: str, manifest_desc: Descriptor) -> None:
    """DEST becomes (or stays) an OCI image layout holding the cache manifest tagged TAG."""
    from pybuild.store import Store as LayoutStore

    os.makedirs(dest, exist_ok=True)
    layout = LayoutStore(dest)
    manifest = parse_manifest(store.read_blob(manifest_desc.digest))
    for blob in (manifest.config, *manifest.layers, manifest_desc):
        if not layout.has_blob(blob.digest):
            with store.open_blob(blob.digest) as reader:
                layout.ingest(reader, blob.digest)
    layout.tag(tag, manifest_desc)


# ---- import ------------------------------------------------------------------------------------
def import_caches(builder: Builder, specs: list[str]) -> None:
    for text in specs:
        spec = parse_spec(text, "--cache-from")
        try:
            count = _import(builder, spec)
        except PybuildError as err:
            builder.progress.message(f"[warning] --cache-from {text}: not used: {err}")
            continue
        builder.progress.message(f"--> cache imported from {spec.get('ref') or spec.get('src')} ({count} steps)")


def _import(builder: Builder, spec: dict[str, str]) -> int:
    from pybuild.cache import CacheRecord

    store, cache = builder.store, builder.cache
    if spec["type"] == "registry":
        manifest, config_doc, fetch = _open_registry(builder, spec["ref"])
    else:
        manifest, config_doc, fetch = _open_local(store, spec["src"], spec.get("tag") or "latest")
    if not isinstance(config_doc, dict) or config_doc.get("version") != 1:
        raise PybuildError("not a pybuild cache (config version is not 1)")
    known = {layer.digest: layer for layer in manifest.layers}
    for digest in known:
        cache.remote_blobs.setdefault(digest, fetch)
    count = 0
    for key, record in (config_doc.get("steps") or {}).items():
        if not isinstance(record, dict) or cache.lookup(key) is not None:
            continue
        layers = record.get("layers") or []
        if not all(isinstance(d, dict) and d.get("digest") in known or store.has_blob(str(d.get("digest")))
                   for d in layers):
            continue  # a record naming a layer the cache does not carry would always miss
        cache.record(key, CacheRecord(config=record["config"], layers=list(layers)))
        cache.used_steps.pop(key, None)  # imported, not used (yet)
        count += 1
    for parent, entries in (config_doc.get("meta") or {}).items():
        if isinstance(entries, dict):
            cache.merge_meta(parent, entries)
    cache.used_meta.clear()
    for key, digest in (config_doc.get("mounts") or {}).items():
        if digest in known:
            _restore_mount(store, str(key), known[digest], fetch)
    return count


def _open_registry(builder: Builder, ref_text: str):  # type: ignore[no-untyped-def]
    from pybuild.registry import reference
    from pybuild.registry.client import Repository
    from pybuild.registry.ingest import fetch_blob

    ref = reference.parse(ref_text)
    transport = _transport(builder)
    repo = Repository(transport, ref)
    data, _, _ = repo.get_manifest(ref.object)
    manifest = parse_manifest(data)
    if manifest.config.media_type != CACHE_CONFIG_TYPE:
        raise PybuildError(f"{ref}: not a pybuild cache (config type {manifest.config.media_type!r})")
    fetch_blob(builder.store, repo, manifest.config)
    config_doc = json.loads(builder.store.read_blob(manifest.config.digest))

    def fetch(layer: dict[str, Any]) -> None:
        fetch_blob(builder.store, repo, Descriptor.from_dict(layer))
    return manifest, config_doc, fetch


def _open_local(store: Store, src: str, tag: str):  # type: ignore[no-untyped-def]
    from pybuild.store import Store as LayoutStore

    if not os.path.isfile(os.path.join(src, "index.json")):
        raise PybuildError(f"{src}: no cache there (no index.json)")
    layout = LayoutStore(src, create=False)
    desc = layout.resolve(tag)
    manifest = parse_manifest(layout.read_blob(desc.digest))
    if manifest.config.media_type != CACHE_CONFIG_TYPE:
        raise PybuildError(f"{src}:{tag}: not a pybuild cache")
    config_doc = json.loads(layout.read_blob(manifest.config.digest))

    def fetch(layer: dict[str, Any]) -> None:
        digest = layer["digest"]
        if not store.has_blob(digest):
            with layout.open_blob(digest) as reader:
                store.ingest(reader, digest)
    return manifest, config_doc, fetch


def _restore_mount(store: Store, key: str, desc: Descriptor, fetch: Any) -> None:
    """Unpack an exported cache mount into ROOT/cache-mounts/KEY unless that directory exists."""
    import re

    from pyrunc.fsutil import rmtree_nofollow

    if not re.fullmatch(r"[0-9a-f]{32}", key):
        raise PybuildError(f"cache mount key {key!r}: not a pybuild cache-mount name")
    base = os.path.join(store.root, "cache-mounts")
    final = os.path.join(base, key)
    if os.path.lexists(final):
        return
    os.makedirs(base, exist_ok=True)
    fetch(desc.to_dict())
    tmp = tempfile.mkdtemp(prefix=".import-", dir=base)
    try:
        store.unpack(Descriptor(desc.media_type or MT_LAYER_GZIP, desc.digest, desc.size), tmp, mode="apply")
        os.chmod(tmp, 0o755)
        os.rename(tmp, final)
    except FileExistsError:
        rmtree_nofollow(tmp)  # another build restored it first
    except OSError as err:
        rmtree_nofollow(tmp)
        if os.path.isdir(final):
            return
        raise PybuildError(f"restore cache mount {key}: {err.strerror or err}") from None
    except BaseException:
        rmtree_nofollow(tmp)
        raise
