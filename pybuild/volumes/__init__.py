"""Named volumes: directories under the store that outlive containers (docker's `local` driver).

Layout (docker's and podman's):

    <root>/volumes/.lock             flock: create, remove and the in-use check
    <root>/volumes/<name>/volume.json   {"name", "created", "labels", "anonymous", "needs_copy_up"}
    <root>/volumes/<name>/_data/     the mount point's content, bind-mounted into containers
    <root>/volumes/<name>/.copy.lock flock: the first container copies the image's content in

Invariants:
- A name is one path component, `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (podman's rule): no `/`, no `..`,
  nothing that leaves `volumes/`. Every open below `volumes/` goes through a directory fd with
  O_NOFOLLOW, so a link planted at a volume's place is refused, never followed.
- A volume appears whole: made in a temp dir and renamed to its name, so a crash leaves no
  half-made volume under a real name (temp dirs start with `.` and are not volumes).
- A volume is in use while any container record (running or not) names it, as in docker and
  podman; removing it then is refused (exit status 2, podman's), unless forced. The check and
  the removal hold the containers' lock then the volumes' lock (always in that order), and
  `pybuild run` records a container before it creates the volumes it names, so no run can
  start with a volume that is being removed.
- Contents are written by containers (attackers): removal and size walks never follow a link
  and never cross a mount (pyrunc.fsutil.rmtree_nofollow, copyup.tree_size).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Iterator

from pybuild.errors import PybuildError

_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*\Z")
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class VolumeError(PybuildError):
    exit_code = 125


class NoSuchVolume(VolumeError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no such volume: {name}")


class VolumeInUse(VolumeError):
    exit_code = 2  # podman volume rm's status for a volume in use

    def __init__(self, name: str, users: list[str]) -> None:
        super().__init__(f"volume {name} is being used by the following container(s): {', '.join(users)}")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise VolumeError(f"volume name {name!r}: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*")
    return name


def anonymous_name() -> str:
    return secrets.token_hex(32)


@dataclass
class Volume:
    name: str
    created: float
    labels: dict[str, str] = field(default_factory=dict)
    anonymous: bool = False
    needs_copy_up: bool = True
    home: str = ""

    @property
    def mountpoint(self) -> str:
        return os.path.join(self.home, "_data")

    def doc(self) -> dict:
        return {"name": self.name, "created": self.created, "labels": self.labels,
                "anonymous": self.anonymous, "needs_copy_up": self.needs_copy_up}


class VolumeStore:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(os.path.abspath(root), "volumes")

    def _dir_fd(self) -> int:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        return os.open(self.dir, _DIR)

    def locked(self) -> contextlib.AbstractContextManager[None]:
        """The store's lock: create, remove, the in-use check."""
        return _flock(self._dir_fd(), ".lock")

    def _read(self, name: str) -> Volume | None:
        fd = self._dir_fd()
        try:
            home = os.open(name, _DIR, dir_fd=fd)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:  # ELOOP: a link planted at the name
            raise VolumeError(f"volume {name}: {err.strerror}") from None
        finally:
            os.close(fd)
        try:
            meta = os.open("volume.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=home)
            with os.fdopen(meta, "rb") as fh:
                doc = json.loads(fh.read(1 << 20))
        except (FileNotFoundError, ValueError, OSError):
            return None
        finally:
            os.close(home)
        try:
            return Volume(name=name, created=float(doc["created"]), labels=dict(doc.get("labels") or {}),
                          anonymous=bool(doc.get("anonymous")), needs_copy_up=bool(doc.get("needs_copy_up")),
                          home=os.path.join(self.dir, name))
        except (KeyError, TypeError, ValueError):
            return None

    def get(self, name: str) -> Volume:
        check_name(name)
        vol = self._read(name)
        if vol is None:
            raise NoSuchVolume(name)
        return vol

    def list(self) -> list[Volume]:
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        found = [self._read(n) for n in names if _NAME.match(n)]
        return [v for v in found if v is not None]

    def create(self, name: str | None = None, labels: dict[str, str] | None = None, anonymous: bool = False,
               exist_ok: bool = False) -> Volume:
        """Make a volume (atomically: a temp dir renamed to the name); an existing name is an
        error unless exist_ok, which returns it as it is."""
        from pyrunc.fsutil import atomic_write, rmtree_nofollow

        name = check_name(name) if name else anonymous_name()
        vol = Volume(name=name, created=time.time(), labels=dict(labels or {}), anonymous=anonymous,
                     home=os.path.join(self.dir, name))
        with self.locked():
            existing = self._read(name)
            if existing is not None:
                if exist_ok:
                    return existing
                raise VolumeError(f"volume with name {name} already exists")
            tmp = os.path.join(self.dir, f".tmp-{secrets.token_hex(8)}")
            os.mkdir(tmp, 0o700)
            try:
                os.mkdir(os.path.join(tmp, "_data"), 0o755)
                atomic_write(os.path.join(tmp, "volume.json"), json.dumps(vol.doc()).encode(), 0o600)
                os.rename(tmp, vol.home)
            except OSError as err:
                rmtree_nofollow(tmp)
                raise VolumeError(f"volume create {name}: {err.strerror}") from None
        return vol

    def mark_populated(self, vol: Volume) -> None:
        from pyrunc.fsutil import atomic_write

        vol.needs_copy_up = False
        atomic_write(os.path.join(vol.home, "volume.json"), json.dumps(vol.doc()).encode(), 0o600)

    def copy_lock(self, vol: Volume) -> contextlib.AbstractContextManager[None]:
        """One volume's lock: the first container fills it, the others wait."""
        return _flock(os.open(vol.home, _DIR), ".copy.lock")

    def users(self, name: str, containers: list) -> list[str]:  # type: ignore[type-arg]
        """IDs of the containers whose records name the volume."""
        return [c.id for c in containers if name in volume_names(c)]

    def remove(self, vol: Volume) -> None:
        """Remove the volume's directory; the caller holds locked() and checked users()."""
        from pyrunc.fsutil import rmtree_nofollow

        try:
            rmtree_nofollow(vol.home)
        except OSError as err:
            raise VolumeError(f"remove volume {vol.name}: {err.strerror}"
                              f"{': ' + err.filename if err.filename else ''}") from None


@contextlib.contextmanager
def _flock(dir_fd: int, name: str) -> Iterator[None]:
    """An exclusive flock on `name` in `dir_fd` (which this closes), never through a link."""
    try:
        fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def volume_names(container) -> list[str]:  # type: ignore[no-untyped-def]
    """The volumes a container record names."""
    return [m["source"] for m in getattr(container, "mount_specs", None) or () if m.get("type") == "volume"]
