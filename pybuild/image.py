"""OCI image types: descriptor, manifest, index, image config with history; chainID; canonical JSON.

Why this module exists: every digest pybuild writes (config, manifest) is the
sha256 of bytes produced here, so the serialization must be deterministic.
`to_json(obj) -> bytes` writes the canonical form docker and buildah write
(Go's encoding/json): compact separators, fields in Go struct order, empty
optional fields omitted, `<`, `>`, `&` escaped as \\u003c \\u003e \\u0026.
Parsing is tolerant: unknown fields of a base image are dropped, docker media
types are accepted.

Public API
  Descriptor, Manifest, Index, ImageConfig, ContainerConfig, History, RootFS
  chain_id(diff_ids) -> str / chain_ids(diff_ids) -> list[str]
  to_json(obj) -> bytes        canonical bytes of any of the types above
  parse_manifest / parse_index / parse_config (bytes | dict) -> typed object
  format_time(ts: float) -> str   RFC 3339 as Go's time.MarshalJSON writes it
  sha256_digest(data: bytes) -> "sha256:<hex>"
  media types: MT_MANIFEST, MT_INDEX, MT_CONFIG, MT_LAYER, MT_LAYER_GZIP, MT_LAYER_ZSTD, ...
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pyrunc.record import NEW_DICT, Record, factory, replace

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"

MANIFEST_TYPES = frozenset({MT_MANIFEST, MT_DOCKER_MANIFEST})
INDEX_TYPES = frozenset({MT_INDEX, MT_DOCKER_LIST})
LAYER_TYPES = frozenset({MT_LAYER, MT_LAYER_GZIP, MT_LAYER_ZSTD, MT_DOCKER_LAYER_GZIP, MT_DOCKER_LAYER,
                         "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"})
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)) (image-spec config.md)."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else sha256_digest(f"{out[-1]} {diff_id}".encode()))
    return out


def chain_id(diff_ids: Sequence[str]) -> str | None:
    """The chainID of the top layer, or None for an image without layers."""
    ids = chain_ids(diff_ids)
    return ids[-1] if ids else None


def format_time(ts: float) -> str:
    """RFC 3339 in UTC with the fraction trimmed, as Go's RFC3339Nano ("2024-05-01T10:00:00.5Z")."""
    dt = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}".rstrip("0")
    return text + "Z"


class Descriptor(Record):
    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] | None = None
    platform: Mapping[str, Any] | None = None
    urls: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        if self.platform:
            out["platform"] = _platform_dict(self.platform)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Descriptor:
        try:
            return cls(media_type=d.get("mediaType", ""), digest=str(d["digest"]), size=int(d["size"]),
                       annotations=dict(d["annotations"]) if d.get("annotations") else None,
                       platform=dict(d["platform"]) if d.get("platform") else None,
                       urls=tuple(d["urls"]) if d.get("urls") else None)
        except (KeyError, TypeError, ValueError) as err:
            from pybuild.errors import StoreError
            raise StoreError(f"descriptor: missing or invalid field {err}") from None

    def with_annotations(self, annotations: Mapping[str, str] | None) -> Descriptor:
        return replace(self, annotations=dict(annotations) if annotations else None)


def _platform_dict(p: Mapping[str, Any]) -> dict[str, Any]:
    order = ("architecture", "os", "os.version", "os.features", "variant", "features")
    return {k: p[k] for k in order if p.get(k)} | {k: v for k, v in p.items() if k not in order}


class Manifest(Record):
    config: Descriptor
    layers: tuple[Descriptor, ...] = ()
    annotations: Mapping[str, str] | None = None
    media_type: str = MT_MANIFEST

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemaVersion": 2, "mediaType": self.media_type,
                               "config": self.config.to_dict(), "layers": [l.to_dict() for l in self.layers]}
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        return out


class Index(Record):
    manifests: tuple[Descriptor, ...] = ()
    annotations: Mapping[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schemaVersion": 2, "mediaType": MT_INDEX,
                               "manifests": [m.to_dict() for m in self.manifests]}
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        return out


class History(Record):
    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("created", "created_by", "author", "comment"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.empty_layer:
            out["empty_layer"] = True
        return out


class ContainerConfig(Record):
    """The `config` object of an image config. None = absent (omitted), as Go's omitempty."""

    user: str | None = None
    exposed_ports: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    volumes: tuple[str, ...] = ()
    working_dir: str | None = None
    labels: Mapping[str, str] = NEW_DICT
    stop_signal: str | None = None
    args_escaped: bool = False
    healthcheck: Mapping[str, Any] | None = None
    on_build: tuple[str, ...] = ()
    shell: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.user:
            out["User"] = self.user
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in sorted(self.exposed_ports)}
        if self.env:
            out["Env"] = list(self.env)
        if self.entrypoint is not None:
            out["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            out["Cmd"] = list(self.cmd)
        if self.volumes:
            out["Volumes"] = {v: {} for v in sorted(self.volumes)}
        if self.working_dir:
            out["WorkingDir"] = self.working_dir
        if self.labels:
            out["Labels"] = dict(sorted(self.labels.items()))
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.args_escaped:
            out["ArgsEscaped"] = True
        if self.healthcheck:
            out["Healthcheck"] = dict(self.healthcheck)
        if self.on_build:
            out["OnBuild"] = list(self.on_build)
        if self.shell is not None:
            out["Shell"] = list(self.shell)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> ContainerConfig:
        d = d or {}

        def seq(key: str) -> tuple[str, ...] | None:
            value = d.get(key)
            if value is None:
                return None
            return (value,) if isinstance(value, str) else tuple(str(x) for x in value)

        return cls(user=d.get("User") or None, exposed_ports=tuple(sorted(d.get("ExposedPorts") or {})),
                   env=seq("Env") or (), entrypoint=seq("Entrypoint"), cmd=seq("Cmd"),
                   volumes=tuple(sorted(d.get("Volumes") or {})), working_dir=d.get("WorkingDir") or None,
                   labels=dict(d.get("Labels") or {}), stop_signal=d.get("StopSignal") or None,
                   args_escaped=bool(d.get("ArgsEscaped")), healthcheck=d.get("Healthcheck") or None,
                   on_build=seq("OnBuild") or (), shell=seq("Shell"))

    def env_dict(self) -> dict[str, str]:
        """Env as a dict (later entries win), for lookups such as PATH."""
        out: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            out[key] = value
        return out


class RootFS(Record):
    diff_ids: tuple[str, ...] = ()
    type: str = "layers"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "diff_ids": list(self.diff_ids)}


class ImageConfig(Record):
    architecture: str = "amd64"
    os: str = "linux"
    created: str | None = None
    author: str | None = None
    os_version: str | None = None
    variant: str | None = None
    config: ContainerConfig = factory(ContainerConfig)
    rootfs: RootFS = factory(RootFS)
    history: tuple[History, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.created:
            out["created"] = self.created
        if self.author:
            out["author"] = self.author
        out["architecture"] = self.architecture
        out["os"] = self.os
        if self.os_version:
            out["os.version"] = self.os_version
        if self.variant:
            out["variant"] = self.variant
        out["config"] = self.config.to_dict()
        out["rootfs"] = self.rootfs.to_dict()
        if self.history:
            out["history"] = [h.to_dict() for h in self.history]
        return out

    @property
    def chain_id(self) -> str | None:
        return chain_id(self.rootfs.diff_ids)


def to_json(obj: Any) -> bytes:
    """Canonical bytes: compact, Go struct order (the dict order built above), HTML-escaped as Go."""
    data = obj.to_dict() if hasattr(obj, "to_dict") else obj
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def _load(data: bytes | Mapping[str, Any], what: str, shape: Any = None) -> Mapping[str, Any]:
    """Decoded JSON of an image document, checked against `shape` (see _check) so that no field of
    the wrong type reaches the code below as a traceback: the error names the field."""
    from pybuild.errors import StoreError
    from pybuild.utf8 import go_strings

    if isinstance(data, Mapping):
        value: Any = data
    else:
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
            raise StoreError(f"{what}: invalid JSON: {reason}") from None
        if b"\\u" in data:
            value = go_strings(value)  # escaped lone surrogates read as U+FFFD, as Go reads them
    if not isinstance(value, dict):
        raise StoreError(f"{what}: expected a JSON object")
    if shape is not None:
        _check(value, shape, what)
    return value


_STR_LIST = ("list", str)
_STR_MAP = ("map", str)
_DESCRIPTOR = {"mediaType": str, "digest": str, "size": int, "annotations": _STR_MAP, "urls": _STR_LIST,
               "platform": dict}
_CONTAINER = {"User": str, "ExposedPorts": dict, "Env": _STR_LIST, "Entrypoint": ("strs", str),
              "Cmd": ("strs", str), "Volumes": dict, "WorkingDir": str, "Labels": _STR_MAP, "StopSignal": str,
              "ArgsEscaped": bool, "Healthcheck": dict, "OnBuild": _STR_LIST, "Shell": _STR_LIST}
CONFIG_SHAPE = {"architecture": str, "os": str, "created": str, "author": str, "os.version": str,
                "variant": str, "config": _CONTAINER, "rootfs": {"diff_ids": _STR_LIST, "type": str},
                "history": ("list", {"created": str, "created_by": str, "author": str, "comment": str,
                                     "empty_layer": bool})}
MANIFEST_SHAPE = {"mediaType": str, "config": _DESCRIPTOR, "layers": ("list", _DESCRIPTOR),
                  "annotations": _STR_MAP}
INDEX_SHAPE = {"mediaType": str, "manifests": ("list", _DESCRIPTOR), "annotations": _STR_MAP}
_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "an object", list: "an array"}


def _check(value: Any, shape: Any, path: str) -> None:
    """Type-check decoded JSON: a type, a dict of field shapes (absent/null fields allowed), ("list",
    shape), ("map", shape) (an object of those), ("strs", str) (a string or an array of strings)."""
    from pybuild.errors import StoreError

    def bad(expected: str) -> StoreError:
        return StoreError(f"{path}: expected {expected}")

    if isinstance(shape, dict):
        if not isinstance(value, dict):
            raise bad("an object")
        for key, sub in shape.items():
            if value.get(key) is not None:
                _check(value[key], sub, f"{path}.{key}")
    elif isinstance(shape, tuple):
        kind, sub = shape
        if kind == "strs" and isinstance(value, str):
            return
        if kind == "map":
            if not isinstance(value, dict):
                raise bad("an object")
            for key, item in value.items():
                _check(item, sub, f"{path}.{key}")
            return
        if not isinstance(value, list):
            raise bad("an array")
        for i, item in enumerate(value):
            _check(item, sub, f"{path}[{i}]")
    elif shape is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
    elif not isinstance(value, shape):
        raise bad(_NAMES.get(shape, shape.__name__))


def parse_manifest(data: bytes | Mapping[str, Any]) -> Manifest:
    d = _load(data, "manifest", MANIFEST_SHAPE)
    if "config" not in d:
        from pybuild.errors import StoreError
        raise StoreError("manifest: missing field config")
    return Manifest(config=Descriptor.from_dict(d["config"]),
                    layers=tuple(Descriptor.from_dict(l) for l in d.get("layers") or ()),
                    annotations=dict(d["annotations"]) if d.get("annotations") else None,
                    media_type=d.get("mediaType") or MT_MANIFEST)


def parse_index(data: bytes | Mapping[str, Any]) -> Index:
    d = _load(data, "index", INDEX_SHAPE)
    return Index(manifests=tuple(Descriptor.from_dict(m) for m in d.get("manifests") or ()),
                 annotations=dict(d["annotations"]) if d.get("annotations") else None)


def parse_config(data: bytes | Mapping[str, Any]) -> ImageConfig:
    d = _load(data, "image config", CONFIG_SHAPE)
    rootfs = d.get("rootfs") or {}
    history = tuple(History(created=h.get("created"), created_by=h.get("created_by"), author=h.get("author"),
                            comment=h.get("comment"), empty_layer=bool(h.get("empty_layer")))
                    for h in d.get("history") or ())
    return ImageConfig(architecture=d.get("architecture") or "amd64", os=d.get("os") or "linux",
                       created=d.get("created"), author=d.get("author"), os_version=d.get("os.version"),
                       variant=d.get("variant"), config=ContainerConfig.from_dict(d.get("config")),
                       rootfs=RootFS(diff_ids=tuple(rootfs.get("diff_ids") or ()), type=rootfs.get("type", "layers")),
                       history=history)


ANNOTATION_INDEX_DIGEST = "dev.pybuild.index.digest"


def repo_digest(desc: Descriptor) -> str:
    """The digest a registry knows an image by: the index it was pulled through, else its manifest."""
    return (desc.annotations or {}).get(ANNOTATION_INDEX_DIGEST) or desc.digest


def host_platform() -> dict[str, str]:
    """The OCI platform of this machine (GOARCH names)."""
    import platform
    machine = platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)
    return {"architecture": arch, "os": "linux"}


def layer_history_count(history: Iterable[History]) -> int:
    """How many history entries describe a layer (not empty_layer): must equal len(diff_ids)."""
    return sum(1 for h in history if not h.empty_layer)
