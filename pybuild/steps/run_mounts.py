"""`RUN --mount=...`: parse the flag and turn each mount into an OCI mount.

  type=bind   (default) source from the build context, or from a stage/image
              with from=; mounted through an overlay with a throw-away upper
              dir, so writes (rw) are discarded and the context is never touched.
  type=cache  a directory kept under `<store>/cache-mounts/` between builds
              (id= defaults to the target); sharing=locked holds an flock.
  type=tmpfs  a tmpfs (size=).
  type=secret the file given by `--secret id=NAME,src=FILE`, copied into the
              build's private temp dir (mode 0400 unless mode=) and bind-mounted
              read-only at /run/secrets/NAME (or target=); with env=VAR its
              content goes into that variable of this RUN only. A secret never
              reaches a layer (its mount point stub is pruned from the diff),
              the cache key or the history.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from dataclasses import dataclass, field
from typing import Callable

from pybuild.errors import PybuildError

_BOOL_KEYS = {"ro", "readonly", "rw", "readwrite", "required"}
_KEYS = {"type", "target", "dst", "destination", "source", "src", "from", "id", "sharing", "mode",
         "uid", "gid", "size", "env", "z", "Z"} | _BOOL_KEYS


class MountError(PybuildError):
    pass


@dataclass(frozen=True, slots=True)
class MountSpec:
    type: str
    target: str
    source: str = ""
    from_: str = ""
    id: str = ""
    sharing: str = "shared"
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    readonly: bool = False
    required: bool = False
    size: str = ""
    env: str = ""


def _truthy(value: str, key: str) -> bool:
    if value.lower() in ("", "true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise MountError(f"--mount: {key}={value}: expected true or false")


def parse_mount(text: str) -> MountSpec:
    """One `--mount` value (comma-separated key=value) → MountSpec."""
    import csv

    fields = next(csv.reader([text])) if text else []
    values: dict[str, str] = {}
    flags: dict[str, bool] = {}
    for item in fields:
        key, eq, value = item.partition("=")
        key = key.strip().lower() if key.strip().lower() in _KEYS else key.strip()
        if key not in _KEYS:
            raise MountError(f"--mount: unknown key {key!r}")
        if key in _BOOL_KEYS:
            flags[key] = _truthy(value if eq else "", key)
        else:
            values[key] = value
    mtype = values.get("type", "bind")
    if mtype not in ("bind", "cache", "tmpfs", "secret"):
        raise MountError(f"--mount: type={mtype} is not supported (bind, cache, tmpfs, secret)")
    target = values.get("target") or values.get("dst") or values.get("destination") or ""
    mid = values.get("id", "")
    if mtype == "secret":
        if not mid and not values.get("source", values.get("src")):
            raise MountError("--mount=type=secret: id= is required")
        mid = mid or os.path.basename(values.get("source", values.get("src", "")))
        if not target and not values.get("env"):
            target = f"/run/secrets/{mid}"
    if not target and not (mtype == "secret" and values.get("env")):
        raise MountError(f"--mount=type={mtype}: target= is required")
    readonly = flags.get("ro", flags.get("readonly", False))
    if flags.get("rw") or flags.get("readwrite"):
        readonly = False
    elif mtype == "bind" and "ro" not in flags and "readonly" not in flags:
        readonly = True
    if mtype == "secret":
        readonly = True

    def num(key: str, default: int | None) -> int | None:
        raw = values.get(key)
        if raw is None:
            return default
        try:
            return int(raw, 8) if key == "mode" else int(raw)
        except ValueError:
            raise MountError(f"--mount: {key}={raw}: not a number") from None

    sharing = values.get("sharing", "shared")
    if sharing not in ("shared", "private", "locked"):
        raise MountError(f"--mount: sharing={sharing}: expected shared, private or locked")
    return MountSpec(type=mtype, target=target, source=values.get("source", values.get("src", "")),
                     from_=values.get("from", ""), id=mid, sharing=sharing,
                     mode=num("mode", None), uid=num("uid", 0) or 0, gid=num("gid", 0) or 0,
                     readonly=readonly, required=flags.get("required", False),
                     size=values.get("size", ""), env=values.get("env", ""))


@dataclass
class MountEnv:
    """What preparing mounts needs from the build."""

    store_root: str
    temp_dir: Callable[[str], str]                    # BuildTemp.new_dir
    context_lowers: Callable[[str], list[str]]        # context subdir → lower dirs (ignore applied)
    from_lowers: Callable[[str], list[str]]           # stage name / image → lower dirs
    secrets: dict[str, str] = field(default_factory=dict)   # id → host file
    workdir: str = "/"


@dataclass
class Prepared:
    mounts: list[dict] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    destinations: list[str] = field(default_factory=list)


def _abs_target(target: str, workdir: str) -> str:
    return target if target.startswith("/") else (workdir.rstrip("/") + "/" + target)


def prepare(specs: list[MountSpec], menv: MountEnv, stack: contextlib.ExitStack) -> Prepared:
    """Materialise the mounts; everything is undone by `stack`."""
    from pybuild.overlay import mount_overlay

    out = Prepared()
    for spec in specs:
        target = _abs_target(spec.target, menv.workdir) if spec.target else ""
        if spec.type == "tmpfs":
            opts = ["nosuid", "nodev"] + ([f"size={spec.size}"] if spec.size else [])
            out.mounts.append({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": opts})
        elif spec.type == "cache":
            path = _cache_dir(menv.store_root, spec, target)
            if spec.sharing == "locked":
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                stack.callback(os.close, fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
            out.mounts.append({"destination": target, "type": "bind", "source": path,
                               "options": ["rbind", "ro" if spec.readonly else "rw"]})
        elif spec.type == "bind":
            if spec.from_:
                lowers = menv.from_lowers(spec.from_)
                sub = spec.source or "/"
            else:
                lowers = menv.context_lowers(spec.source or ".")
                sub = "/"
            ov = stack.enter_context(mount_overlay(menv.temp_dir("bindmount"), lowers))
            from pybuild.steps.fs import resolve_in_root

            src = resolve_in_root(ov.merged, sub)
            if not os.path.exists(src):
                raise MountError(f"--mount=type=bind: source {spec.source or '/'} not found")
            out.mounts.append({"destination": target, "type": "bind", "source": src,
                               "options": ["rbind", "ro" if spec.readonly else "rw"]})
        elif spec.type == "secret":
            host = menv.secrets.get(spec.id)
            if host is None:
                if spec.required:
                    raise MountError(f"--mount=type=secret: secret {spec.id} was not given (--secret id={spec.id},src=FILE)")
                continue
            if spec.env:
                with open(host, "rb") as fh:
                    out.env.append(f"{spec.env}={fh.read().decode('utf-8', 'replace')}")
            if spec.target:
                d = menv.temp_dir("secret")
                os.mkdir(d, 0o700)
                copy = os.path.join(d, "secret")
                shutil.copyfile(host, copy)
                os.chmod(copy, spec.mode if spec.mode is not None else 0o400)
                os.chown(copy, spec.uid, spec.gid)
                out.mounts.append({"destination": target, "type": "bind", "source": copy,
                                   "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]})
        if target:
            out.destinations.append(target)
    return out


def _cache_dir(store_root: str, spec: MountSpec, target: str) -> str:
    """The persistent directory of a cache mount, made on first use under an unpredictable temp name
    (mkdtemp) with its mode and owner set through an O_NOFOLLOW fd, then renamed into place."""
    import tempfile

    key = hashlib.sha256((spec.id or target).encode()).hexdigest()[:32]
    parent = os.path.join(store_root, "cache-mounts")
    path = os.path.join(parent, key)
    if not os.path.lexists(path):
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{key}.", dir=parent)
        fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchown(fd, spec.uid, spec.gid)
            os.fchmod(fd, spec.mode if spec.mode is not None else 0o755)
        finally:
            os.close(fd)
        try:
            os.rename(tmp, path)
        except OSError:
            os.rmdir(tmp)  # another build created it first
    if os.path.islink(path) or not os.path.isdir(path):
        raise MountError(f"--mount=type=cache: {path}: not a directory")
    return path
