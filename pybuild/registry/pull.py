"""Pull: a registry reference -> an image in the store, tagged last.

    image = pull(store, "127.0.0.1:5000/app:1", transport, platform=None, progress=p)

Flow: GET the manifest (verified) -> an index picks the platform (this machine's, or --platform; a
platform the index lacks is an error listing what it has) -> the config and the layers are fetched
concurrently (`jobs` at a time, as docker's max-concurrent-downloads), each verified and renamed into
the store by ingest.fetch_blob -> the config must name as many diff_ids as the manifest has layers, and
its platform must be the one asked for -> every layer is unpacked into the layer store (`unpack`, the
default: as podman, containerd and `docker pull` do, so the first FROM finds it ready; each diffID is
verified on the way; `pull --no-unpack` only moves blobs, as skopeo) -> the manifest bytes are stored
as they came (so the digest is the registry's) -> the name is tagged. Any failure before the tag
leaves only verified blobs (which the next pull reuses), whole unpacked layers, and resumable partial
downloads under ROOT/ingest: no tag, no partial blob, no half layer (a kill leaves a layers/.tmp-* dir,
garbage for gc and `fsck --repair`).

The repository each blob came from is remembered (store.add_blob_source) so that a later push to
another repository of the same registry can mount it instead of uploading it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pybuild import fault_point
from pybuild.errors import PybuildError, StoreError
from pybuild.image import (ANNOTATION_INDEX_DIGEST, INDEX_TYPES, MANIFEST_TYPES, Descriptor, host_platform, parse_config, parse_index,
                           parse_manifest)
from pybuild.registry import reference
from pybuild.registry.client import Repository
from pybuild.registry.errors import RegistryError
from pybuild.registry.ingest import fetch_blob

if TYPE_CHECKING:
    from pybuild.registry.progress import TransferProgress
    from pybuild.registry.transport import Transport
    from pybuild.store import Store, StoredImage



def platform_text(p: dict) -> str:
    return "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)


def _variant_matches(want: str | None, have: str | None, arch: str) -> bool:
    if not want:
        return True
    if arch == "arm64":  # arm64 == arm64/v8 (containerd's normalisation)
        return (have or "v8") == want
    return have == want


def select_platform(index_data: bytes, wanted: dict[str, str], label: str) -> Descriptor:
    """The index entry for `wanted` (os, architecture, optional variant); an error lists the others."""
    index = parse_index(index_data)
    found = []
    for desc in index.manifests:
        p = dict(desc.platform or {})
        if desc.media_type not in MANIFEST_TYPES and desc.media_type not in INDEX_TYPES:
            continue
        if (desc.annotations or {}).get("vnd.docker.reference.type") == "attestation-manifest":
            continue  # BuildKit's provenance entries carry platform unknown/unknown
        found.append(platform_text(p) or "unknown")
        if p.get("os") == wanted["os"] and p.get("architecture") == wanted["architecture"] and \
                _variant_matches(wanted.get("variant"), p.get("variant"), wanted["architecture"]):
            return desc
    raise RegistryError(f"{label}: no image for platform {platform_text(wanted)} in the index "
                        f"(it has: {', '.join(found) or 'nothing'})")


def _store_name(ref: reference.Reference) -> str:
    return ref.familiar()


def pull(store: Store, text: str, transport: Transport, platform: str | None = None,
         progress: TransferProgress | None = None, jobs: int = 3, tag: bool = True,
         unpack: bool = True) -> StoredImage:
    from pybuild.store import StoredImage

    ref = reference.parse(text)
    label = str(ref)
    repo = Repository(transport, ref)
    wanted = reference.parse_platform(platform) if platform else dict(host_platform())
    with store.using():
        data, media_type, digest = repo.get_manifest(ref.object)
        index_digest = None
        if media_type in INDEX_TYPES or (not media_type and b'"manifests"' in data):
            index_digest = digest
            chosen = select_platform(data, wanted, label)
            data, media_type, digest = repo.get_manifest(chosen.digest)
            if media_type in INDEX_TYPES:
                raise RegistryError(f"{label}: nested image indexes are not supported")
        if media_type and media_type not in MANIFEST_TYPES:
            raise RegistryError(f"{label}: unsupported manifest media type {media_type!r}")
        try:
            manifest = parse_manifest(data)
        except StoreError as err:
            raise RegistryError(f"{label}: {err}") from None
        if progress:
            progress.message(f"Pulling {label} ({digest[:19]})")
        blobs = [manifest.config, *manifest.layers]
        fault_point("pull.manifest")
        _fetch_all(store, repo, blobs, progress, jobs)
        fault_point("pull.blobs")
        config = parse_config(store.read_blob(manifest.config.digest))
        if len(config.rootfs.diff_ids) != len(manifest.layers):
            raise RegistryError(f"{label}: manifest has {len(manifest.layers)} layers but its config "
                                f"{len(config.rootfs.diff_ids)} diff_ids")
        if config.os != wanted["os"] or config.architecture != wanted["architecture"]:
            raise RegistryError(f"{label}: image is for {config.os}/{config.architecture}, not "
                                f"{platform_text(wanted)}")
        source = f"{ref.domain}/{ref.repository}"
        for blob in blobs:
            store.add_blob_source(blob.digest, source)
        annotations = {ANNOTATION_INDEX_DIGEST: index_digest} if index_digest else None
        desc = Descriptor(media_type or manifest.media_type, digest, len(data), annotations=annotations)
        name = _store_name(ref)
        image = StoredImage(name=name, descriptor=desc, manifest=manifest, config=config)
        if unpack:
            from pybuild.baseimage import unpack_entering

            if progress:
                progress.message(f"Unpacking {len(manifest.layers)} layer(s)")
            unpack_entering(store, image, f"pull {label}")
        if store.put_blob(data) != digest:
            raise PybuildError(f"{label}: internal error: stored manifest digest differs")
        if tag:
            store.tag(name, desc)
    if progress:
        progress.message(f"Digest: {index_digest or digest}")
    return image


def _fetch_all(store: Store, repo: Repository, blobs: list[Descriptor], progress: TransferProgress | None,
               jobs: int) -> None:
    todo = []
    seen = set()
    for blob in blobs:
        if blob.digest in seen:
            continue
        seen.add(blob.digest)
        if store.has_blob(blob.digest):
            if progress:
                progress.finish(blob.digest, "already exists")
            continue
        todo.append(blob)
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(todo))), thread_name_prefix="pull") as pool:
        futures = [(blob, pool.submit(fetch_blob, store, repo, blob, progress)) for blob in todo]
        error: BaseException | None = None
        for blob, future in futures:
            try:
                note = future.result()
            except BaseException as err:  # first error wins; the others finish or fail on their own
                error = error or err
                continue
            if progress:
                progress.finish(blob.digest, note)
        if error is not None:
            raise error
