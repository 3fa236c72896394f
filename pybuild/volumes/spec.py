"""`-v`, `--mount`, `--tmpfs` and the image's VOLUMEs → the mounts of a container (pure).

    -v /path                         an anonymous volume at /path
    -v NAME:/path[:OPTS]             the named volume NAME (made on first use, as docker does)
    -v /host:/path[:OPTS]            a bind mount of an existing host path (./rel is made absolute)
        OPTS: ro | rw, nocopy (volumes), a bind propagation (rprivate, private, rshared, …)
    --mount type=volume,[source=NAME,]target=/path[,readonly][,volume-nocopy]
    --mount type=bind,source=/host,target=/path[,readonly][,bind-propagation=P]
    --mount type=tmpfs,target=/path[,tmpfs-size=BYTES][,tmpfs-mode=OCTAL]
    --tmpfs /path[:OPTS]             docker's defaults: nosuid,nodev,noexec
    VOLUME /path in the image        an anonymous volume unless a mount above targets /path

Each becomes a MountSpec; `plan` checks them all (one line per problem, naming the flag) before
anything is made, and `oci_mount` turns one into the runtime's mount once volumes have paths.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from pybuild.volumes import VolumeError, anonymous_name, check_name

_PROPAGATION = ("rprivate", "private", "rshared", "shared", "rslave", "slave")


class MountError(VolumeError):
    pass


@dataclass(frozen=True)
class MountSpec:
    type: str                    # bind | volume | tmpfs
    destination: str
    source: str = ""             # host path (bind), volume name (volume), "tmpfs"
    readonly: bool = False
    options: tuple[str, ...] = ()  # bind: propagation; tmpfs: mount options
    nocopy: bool = False
    anonymous: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["options"] = list(self.options)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "MountSpec":
        return cls(**{**d, "options": tuple(d.get("options") or ())})


def _destination(flag: str, dst: str) -> str:
    if not dst.startswith("/"):
        raise MountError(f"{flag}: the destination {dst!r} is not an absolute path")
    dst = os.path.normpath(dst)
    if dst == "/":
        raise MountError(f"{flag}: cannot mount over /")
    return "/" + dst.lstrip("/")


def _bind_source(flag: str, src: str) -> str:
    path = os.path.abspath(src)
    if not os.path.exists(path):
        raise MountError(f"{flag}: the source {src} does not exist")
    return os.path.realpath(path)


def parse_volume_flag(text: str) -> MountSpec:
    flag = f"-v {text}"
    parts = text.split(":")
    if len(parts) == 1:
        return MountSpec("volume", _destination(flag, parts[0]), anonymous=True)
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise MountError(f"{flag}: expected [SRC:]DST[:OPTS]")
    src, dst = parts[0], _destination(flag, parts[1])
    opts = [o for o in (parts[2].split(",") if len(parts) == 3 else []) if o]
    is_bind = src.startswith(("/", "."))
    readonly, nocopy, propagation = False, False, "rprivate"
    for opt in opts:
        if opt in ("ro", "rw"):
            readonly = opt == "ro"
        elif opt == "nocopy" and not is_bind:
            nocopy = True
        elif opt in _PROPAGATION and is_bind:
            propagation = opt
        else:
            raise MountError(f"{flag}: unsupported option {opt!r} (ro, rw, " +
                             ("a propagation)" if is_bind else "nocopy)"))
    if is_bind:
        return MountSpec("bind", dst, _bind_source(flag, src), readonly, (propagation,))
    return MountSpec("volume", dst, check_name(src), readonly, nocopy=nocopy)


def _bool(flag: str, key: str, value: str | None) -> bool:
    if value is None or value.lower() in ("1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise MountError(f"{flag}: invalid value for {key}: {value!r}")


def parse_mount_flag(text: str) -> MountSpec:
    flag = f"--mount {text}"
    fields: dict[str, str | None] = {}
    for item in text.split(","):
        if not item:
            continue
        key, eq, value = item.partition("=")
        fields[key.strip().lower()] = value if eq else None
    kind = fields.pop("type", None) or "volume"
    src = fields.pop("source", None) or fields.pop("src", None) or ""
    dst = fields.pop("target", None) or fields.pop("destination", None) or fields.pop("dst", None)
    if not dst:
        raise MountError(f"{flag}: target is required")
    dst = _destination(flag, dst)
    readonly = False
    for key in ("readonly", "ro"):
        if key in fields:
            readonly = _bool(flag, key, fields.pop(key))
    if kind == "bind":
        if not src:
            raise MountError(f"{flag}: source is required for a bind mount")
        propagation = fields.pop("bind-propagation", None) or "rprivate"
        if propagation not in _PROPAGATION:
            raise MountError(f"{flag}: invalid bind-propagation {propagation!r}")
        spec = MountSpec("bind", dst, _bind_source(flag, src), readonly, (propagation,))
    elif kind == "volume":
        nocopy = _bool(flag, "volume-nocopy", fields.pop("volume-nocopy")) if "volume-nocopy" in fields else False
        driver = fields.pop("volume-driver", None)
        if driver not in (None, "local"):
            raise MountError(f"{flag}: volume driver {driver!r} is not supported (only local)")
        if src.startswith(("/", ".")):
            raise MountError(f"{flag}: a volume source is a volume name, not a path (type=bind mounts paths)")
        spec = MountSpec("volume", dst, check_name(src) if src else "", readonly, nocopy=nocopy,
                         anonymous=not src)
    elif kind == "tmpfs":
        if src:
            raise MountError(f"{flag}: a tmpfs mount takes no source")
        options = ["nosuid", "nodev", "noexec"]
        size = fields.pop("tmpfs-size", None)
        if size is not None:
            if not size.isdigit():
                raise MountError(f"{flag}: tmpfs-size must be a number of bytes")
            options.append(f"size={size}")
        mode = fields.pop("tmpfs-mode", None)
        if mode is not None:
            if not mode or any(c not in "01234567" for c in mode):
                raise MountError(f"{flag}: tmpfs-mode must be octal")
            options.append(f"mode={mode}")
        if readonly:
            options.append("ro")
        spec = MountSpec("tmpfs", dst, "tmpfs", readonly, tuple(options))
    else:
        raise MountError(f"{flag}: type {kind!r} is not supported (bind, volume, tmpfs)")
    if fields:
        raise MountError(f"{flag}: unexpected key {next(iter(fields))!r}")
    return spec


def parse_tmpfs_flag(text: str) -> MountSpec:
    dst, _, opts = text.partition(":")
    options = ["nosuid", "nodev", "noexec"]
    for opt in filter(None, opts.split(",")):
        if opt == "exec":
            options.remove("noexec")
        elif opt not in options:
            options.append(opt)
    return MountSpec("tmpfs", _destination(f"--tmpfs {text}", dst), "tmpfs", "ro" in options, tuple(options))


def plan(volumes: Iterable[str], mounts: Iterable[str], tmpfs: Iterable[str],
         image_volumes: Iterable[str]) -> list[MountSpec]:
    """Every mount of the run, anonymous volumes named, duplicates refused, parents first."""
    specs = [parse_volume_flag(v) for v in volumes] + [parse_mount_flag(m) for m in mounts] + \
        [parse_tmpfs_flag(t) for t in tmpfs]
    seen: set[str] = set()
    for s in specs:
        if s.destination in seen:
            raise MountError(f"duplicate mount point: {s.destination}")
        seen.add(s.destination)
    for path in image_volumes:
        dst = "/" + os.path.normpath(path).lstrip("/")
        if dst not in seen and dst != "/":
            seen.add(dst)
            specs.append(MountSpec("volume", dst, anonymous=True))
    named = [MountSpec(s.type, s.destination, anonymous_name(), s.readonly, s.options, s.nocopy, True)
             if s.type == "volume" and s.anonymous else s for s in specs]
    return sorted(named, key=lambda s: s.destination.count("/"))


def oci_mount(spec: MountSpec, source: str | None = None) -> dict[str, Any]:
    """The runtime's mount; `source` is the volume's mount point for a volume."""
    if spec.type == "tmpfs":
        return {"destination": spec.destination, "type": "tmpfs", "source": "tmpfs", "options": list(spec.options)}
    propagation = spec.options[0] if spec.type == "bind" and spec.options else "rprivate"
    return {"destination": spec.destination, "type": "bind",
            "source": source if spec.type == "volume" else spec.source,
            "options": ["rbind", "ro" if spec.readonly else "rw", propagation]}
