"""The distribution-spec v2 API of one repository: manifests and blobs.

Every manifest is hashed before it is returned: by digest, the bytes must hash to it; by tag, to the
registry's Docker-Content-Digest when it sends one (a mismatch is DigestMismatch, nothing is kept).
Blob content is verified by the caller that stores it (ingest.py), because it streams.

Uploads (spec "Pushing blobs"): POST /v2/NAME/blobs/uploads/ opens a session (202 + Location), or with
?mount=DIGEST&from=OTHER mounts a blob of another repository of the same registry (201: done; 202: the
registry declined and opened a session instead). A session is finished by PUT LOCATION?digest=… with
the whole blob (monolithic) or after PATCHes of consecutive ranges (chunked, Content-Range start-end);
GET LOCATION reports how much the registry has (Range: 0-END), which is how a broken upload resumes.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Callable, Iterable

import urllib3

from pybuild.errors import DigestMismatch
from pybuild.image import MT_DOCKER_LIST, MT_DOCKER_MANIFEST, MT_INDEX, MT_MANIFEST
from pybuild.registry.errors import NotFound, RegistryError
from pybuild.registry.reference import Reference
from pybuild.registry.transport import Transport

ACCEPT_MANIFESTS = ", ".join((MT_INDEX, MT_MANIFEST, MT_DOCKER_LIST, MT_DOCKER_MANIFEST))
MAX_MANIFEST = 4 << 20  # containerd's limit: a manifest is metadata, not a payload
SCHEMA1_TYPES = ("application/vnd.docker.distribution.manifest.v1+json",
                 "application/vnd.docker.distribution.manifest.v1+prettyjws")


class Repository:
    def __init__(self, transport: Transport, ref: Reference, push: bool = False) -> None:
        self.transport = transport
        self.ref = ref
        self.host = ref.api_host
        self.name = ref.repository
        self.scope = f"repository:{self.name}:pull" + (",push" if push else "")

    def _request(self, method: str, path: str, what: str, **kw):  # type: ignore[no-untyped-def]
        return self.transport.request(method, self.host, path, scope=kw.pop("scope", self.scope),
                                      repository=self.name, what=what, **kw)

    # ---- manifests -------------------------------------------------------------------------
    def get_manifest(self, obj: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index, verified as the module docstring says."""
        label = f"{self.ref.name}:{obj}" if not obj.startswith("sha256:") else f"{self.ref.name}@{obj}"
        resp = self._request("GET", f"/v2/{self.name}/manifests/{obj}", f"manifest {label}",
                             headers={"Accept": ACCEPT_MANIFESTS}, preload=False)
        try:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > MAX_MANIFEST:
                raise RegistryError(f"manifest {label}: {length} bytes is larger than the {MAX_MANIFEST} allowed")
            data = resp.read(MAX_MANIFEST + 1)
            if len(data) > MAX_MANIFEST:
                raise RegistryError(f"manifest {label}: larger than the {MAX_MANIFEST} bytes allowed")
        except urllib3.exceptions.HTTPError as err:
            raise RegistryError(f"manifest {label}: connection broken while reading: {err}") from None
        finally:
            resp.release_conn()
        actual = "sha256:" + hashlib.sha256(data).hexdigest()
        announced = resp.headers.get("Docker-Content-Digest")
        expected = obj if obj.startswith("sha256:") else (announced if announced and announced.startswith(
            "sha256:") else None)
        if expected is not None and expected != actual:
            raise DigestMismatch(expected, actual, what=f"manifest {label}")
        media_type = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
        if media_type in SCHEMA1_TYPES:
            raise RegistryError(f"manifest {label}: docker schema 1 manifests are not supported")
        return data, media_type, actual

    def put_manifest(self, obj: str, data: bytes, media_type: str) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        resp = self._request("PUT", f"/v2/{self.name}/manifests/{obj}", f"push manifest {self.ref.name}:{obj}",
                             headers={"Content-Type": media_type}, body=data, ok=(200, 201, 202))
        announced = resp.headers.get("Docker-Content-Digest")
        if announced and announced != digest:
            raise DigestMismatch(digest, announced, what=f"manifest pushed to {self.ref.name}:{obj} (registry's digest)")
        return digest

    # ---- blobs ----------------------------------------------------------------------------
    def has_blob(self, digest: str) -> int | None:
        """The blob's size if the repository has it (HEAD), else None."""
        try:
            resp = self._request("HEAD", f"/v2/{self.name}/blobs/{digest}", f"blob {digest}",
                                 ok=(200,), preload=True)
        except NotFound:
            return None
        length = resp.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else 0

    def open_blob(self, digest: str, offset: int = 0) -> urllib3.BaseHTTPResponse:
        """A streaming GET (200, or 206 from `offset` when the registry honours Range)."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        return self._request("GET", f"/v2/{self.name}/blobs/{digest}", f"blob {self.ref.name}@{digest}",
                             headers=headers, preload=False, ok=(200, 206))

    def mount_blob(self, digest: str, source_repository: str) -> str | None:
        """Cross-repository mount; None when mounted, else the Location of the session opened instead."""
        query = urllib.parse.urlencode({"mount": digest, "from": source_repository})
        scope = f"{self.scope} repository:{source_repository}:pull"
        resp = self._request("POST", f"/v2/{self.name}/blobs/uploads/?{query}", f"mount {digest}",
                             ok=(201, 202), scope=scope)
        if resp.status == 201:
            return None
        return self._location(resp)

    def start_upload(self) -> str:
        resp = self._request("POST", f"/v2/{self.name}/blobs/uploads/", f"upload to {self.ref.name}",
                             ok=(202,))
        return self._location(resp)

    def _location(self, resp: urllib3.BaseHTTPResponse) -> str:
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError(f"upload to {self.ref.name}: the registry sent no Location")
        return urllib.parse.urljoin(self.transport.base_url(self.host) + "/", location)

    def put_blob(self, location: str, digest: str, body: Callable[[], Iterable[bytes]] | bytes | None,
                 size: int) -> None:
        """PUT closes a session: with the whole blob (monolithic) or with none after PATCHes."""
        url = _with_query(location, digest=digest)
        self._request("PUT", url, f"upload {digest} to {self.ref.name}", body=body if size else b"",
                      headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                      ok=(201, 204))

    def patch_chunk(self, location: str, data: bytes, start: int) -> str:
        """Send one chunk at `start`; returns the session's next Location."""
        resp = self._request("PATCH", location, f"upload chunk to {self.ref.name}", body=data,
                             headers={"Content-Type": "application/octet-stream",
                                      "Content-Range": f"{start}-{start + len(data) - 1}",
                                      "Content-Length": str(len(data))}, ok=(202,))
        return self._location(resp)

    def upload_status(self, location: str) -> tuple[int, str]:
        """(bytes the registry holds, Location) of an upload session; NotFound if it expired."""
        resp = self._request("GET", location, f"upload status on {self.ref.name}", ok=(204,))
        end = (resp.headers.get("Range") or "0--1").partition("-")[2]
        try:
            offset = int(end) + 1
        except ValueError:
            offset = 0
        return max(offset, 0), self._location(resp)

    def cancel_upload(self, location: str) -> None:
        try:
            self._request("DELETE", location, "cancel upload", ok=(204, 404))
        except RegistryError:
            pass  # the registry expires abandoned sessions itself


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urllib.parse.urlencode(params)
    return urllib.parse.urlunsplit(parts._replace(query=query))
