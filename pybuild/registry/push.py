"""Push: an image (or an index of images) in the store -> a registry, manifest last.

    digest = push(store, "app", "127.0.0.1:5000/team/app:1", transport, progress=p)

For each blob (config and layers, `jobs` at a time): HEAD — the registry has it: skip; else a
cross-repository mount from a repository of the same registry known to hold it (store.blob_sources:
where it was pulled from or pushed to before); else an upload. Blobs up to `chunk_size` go up in one
PUT (monolithic); larger ones in PATCHes of `chunk_size` whose session URL is saved in ROOT/uploads/,
so a push that was interrupted asks the registry how far it got (GET on the session) and sends only the
rest. Every byte read from the store is hashed on the way (the store's VerifiedReader), and the registry
checks the digest again when the session is closed. The manifest is sent as the exact bytes in the store,
so its digest is the local one; the registry's Docker-Content-Digest must agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pybuild import fault_point
from pybuild.errors import DigestMismatch
from pybuild.image import INDEX_TYPES, Descriptor, parse_index, parse_manifest
from pybuild.registry import reference
from pybuild.registry.client import Repository
from pybuild.registry.errors import NotFound, RegistryError, TransientError

if TYPE_CHECKING:
    from pybuild.registry.progress import TransferProgress
    from pybuild.registry.transport import Transport
    from pybuild.store import Store

DEFAULT_CHUNK = 64 << 20
_READ = 1 << 20


def push(store: Store, name: str, dest: str | None, transport: Transport, progress: TransferProgress | None = None,
         chunk_size: int = DEFAULT_CHUNK, jobs: int = 4, attempts: int = 3) -> str:
    """Push and return the manifest digest."""
    desc = store.resolve(name)
    target = reference.parse(dest or name)
    if not target.tag and not target.digest:
        target = target.with_tag("latest")
    repo = Repository(transport, target, push=True)
    pusher = _Pusher(store, repo, progress, chunk_size, jobs, attempts)
    with store.using():
        if progress:
            progress.message(f"Pushing {name} to {target}")
        pushed = pusher.push_manifest(desc, target.digest or target.tag or "latest")
    if target.digest and target.digest != pushed:
        raise DigestMismatch(target.digest, pushed, what=f"push {target}")
    if progress:
        progress.message(f"Digest: {pushed}")
    return pushed


class _Pusher:
    def __init__(self, store: Store, repo: Repository, progress: TransferProgress | None, chunk_size: int,
                 jobs: int, attempts: int) -> None:
        self.store = store
        self.repo = repo
        self.progress = progress
        self.chunk_size = chunk_size
        self.jobs = jobs
        self.attempts = attempts
        self.source = f"{repo.ref.domain}/{repo.ref.repository}"

    def push_manifest(self, desc: Descriptor, obj: str) -> str:
        data = self.store.read_blob(desc.digest)
        if desc.media_type in INDEX_TYPES:
            for child in parse_index(data).manifests:
                if not self.store.has_blob(child.digest):
                    raise RegistryError(f"push: index {desc.digest[:19]}: manifest {child.digest} is not in the store")
                self.push_manifest(child, child.digest)
        else:
            manifest = parse_manifest(data)
            self.push_blobs([manifest.config, *manifest.layers])
        fault_point("push.blobs")
        return self.repo.put_manifest(obj, data, desc.media_type or json.loads(data).get("mediaType", ""))

    def push_blobs(self, blobs: list[Descriptor]) -> None:
        unique = list({b.digest: b for b in blobs}.values())
        with ThreadPoolExecutor(max_workers=max(1, min(self.jobs, len(unique))), thread_name_prefix="push") as pool:
            futures = [(b, pool.submit(self.push_blob, b)) for b in unique]
            error: BaseException | None = None
            for blob, future in futures:
                try:
                    note = future.result()
                except BaseException as err:
                    error = error or err
                    continue
                self.store.add_blob_source(blob.digest, self.source)
                if self.progress:
                    self.progress.finish(blob.digest, note)
            if error is not None:
                raise error

    def push_blob(self, desc: Descriptor) -> str:
        if not self.store.has_blob(desc.digest):
            raise RegistryError(f"push: blob {desc.digest} is not in the store (pull or rebuild the image)")
        size = os.path.getsize(self.store.blob_path(desc.digest))
        if self.repo.has_blob(desc.digest) is not None:
            return "already exists"
        for source in self.store.blob_sources(desc.digest):
            domain, _, repository = source.partition("/")
            if domain != self.repo.ref.domain or repository == self.repo.name:
                continue
            try:
                location = self.repo.mount_blob(desc.digest, repository)
            except RegistryError:
                continue  # no pull access there, or the source is gone: upload instead
            if location is None:
                return f"mounted from {repository}"
            self.repo.cancel_upload(location)
        failures = 0
        while True:
            try:
                if self.chunk_size and size > self.chunk_size:
                    return self._chunked(desc, size)
                return self._monolithic(desc, size)
            except TransientError:
                failures += 1
                if failures >= self.attempts:
                    raise
                time.sleep(0.5 * 2 ** failures)

    def _reader(self, desc: Descriptor, start: int = 0) -> Iterator[bytes]:
        """Chunks of the blob from `start`, hashing from byte 0 so a corrupt blob never leaves the store."""
        with self.store.open_blob(desc.digest, desc.size if desc.size else None) as reader:
            skipped = 0
            while skipped < start:
                data = reader.read(min(_READ, start - skipped))
                if not data:
                    raise RegistryError(f"push: blob {desc.digest}: shorter than the {start} bytes already sent")
                skipped += len(data)
            while chunk := reader.read(_READ):
                yield chunk

    def _monolithic(self, desc: Descriptor, size: int) -> str:
        if self.progress:
            self.progress.start(desc.digest, size, "Pushing blob")
        location = self.repo.start_upload()

        def body() -> Iterator[bytes]:
            for chunk in self._reader(desc):
                if self.progress:
                    self.progress.advance(desc.digest, len(chunk))
                yield chunk
        self.repo.put_blob(location, desc.digest, body, size)
        return "pushed"

    # ---- chunked, resumable -------------------------------------------------------------------
    def _state_path(self, desc: Descriptor) -> str:
        key = hashlib.sha256(f"{self.repo.ref.domain}/{self.repo.name}@{desc.digest}".encode()).hexdigest()
        directory = os.path.join(self.store.root, "uploads")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        return os.path.join(directory, key + ".json")

    def _chunked(self, desc: Descriptor, size: int) -> str:
        from pybuild.store import write_atomic

        state_path = self._state_path(desc)
        location, offset = None, 0
        try:
            with open(state_path, "rb") as fh:
                location = json.load(fh).get("location")
        except (FileNotFoundError, ValueError):
            pass
        if location:
            try:
                offset, location = self.repo.upload_status(location)
            except (NotFound, RegistryError):
                location, offset = None, 0
        if not location:
            location = self.repo.start_upload()
        resumed = offset
        if self.progress:
            self.progress.start(desc.digest, size, "Pushing blob")
            self.progress.reset(desc.digest, offset)
        buf = bytearray()
        failures = 0
        chunks = self._reader(desc, offset)
        while True:
            for piece in chunks:
                buf += piece
                if len(buf) >= self.chunk_size:
                    break
            if not buf:
                break
            data = bytes(buf[: self.chunk_size])
            try:
                location = self.repo.patch_chunk(location, data, offset)
            except (TransientError, RegistryError) as err:
                failures += 1
                if failures >= self.attempts or isinstance(err, NotFound):
                    raise TransientError(f"push blob {desc.digest[:19]}: {err} (the upload resumes at byte "
                                         f"{offset} on the next push)") from None
                time.sleep(0.5 * 2 ** failures)
                new_offset, location = self.repo.upload_status(location)  # how much did it take?
                chunks = self._reader(desc, new_offset)
                offset, buf = new_offset, bytearray()
                continue
            failures = 0
            offset += len(data)
            del buf[: len(data)]
            if self.progress:
                self.progress.advance(desc.digest, len(data))
            write_atomic(state_path, json.dumps({"location": location, "offset": offset}).encode(), mode=0o600)
            fault_point("push.chunk")
        self.repo.put_blob(location, desc.digest, None, 0)
        os.unlink(state_path)
        return f"pushed (resumed at {resumed} bytes)" if resumed else "pushed"
