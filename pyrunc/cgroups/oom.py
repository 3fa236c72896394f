"""OOM notifications for `pyrunc events`.

v1: an eventfd registered on memory.oom_control through cgroup.event_control;
it becomes readable each time the cgroup hits its limit. v2: inotify on
memory.events; an increase of its `oom_kill` (or `oom`) counter is an event.
Both give a pollable fd and a `read()` that returns how many OOMs happened.
"""

from __future__ import annotations

import os

from pyrunc import syscalls
from pyrunc.cgroups.fileio import read_flat
from pyrunc.errors import CgroupError, MissingFeature


class OomWatcher:
    def __init__(self, fd: int, path: str, v2: bool) -> None:
        self.fd = fd
        self.path = path
        self.v2 = v2
        self.last = self._count() if v2 else 0

    def fileno(self) -> int:
        return self.fd

    def _count(self) -> int:
        ev = read_flat(self.path)
        return max(ev.get("oom_kill", 0), ev.get("oom", 0))

    def read(self) -> int:
        """Drain the fd; the number of OOM events since the last read."""
        if not self.v2:
            try:
                return int.from_bytes(os.read(self.fd, 8), "little")
            except BlockingIOError:
                return 0
        try:
            os.read(self.fd, 4096)
        except BlockingIOError:
            pass
        now = self._count()
        new, self.last = now - self.last, now
        return max(new, 0)

    def close(self) -> None:
        os.close(self.fd)


def watch(manager: object) -> OomWatcher:
    version = getattr(manager, "version", "")
    if version == "v1":
        mem = manager.paths.get("memory")  # type: ignore[attr-defined]
        if not mem:
            raise MissingFeature("cgroup v1 controller memory", "not mounted: no OOM events")
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        cfd = os.open(f"{mem}/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        try:
            with open(f"{mem}/cgroup.event_control", "w") as f:
                f.write(f"{efd} {cfd}")
        except OSError as err:
            os.close(efd)
            raise CgroupError(f"register OOM eventfd on {mem}: {err.strerror}") from None
        finally:
            os.close(cfd)  # the kernel holds its own reference once registered
        return OomWatcher(efd, f"{mem}/memory.oom_control", False)
    path = f"{manager.dir}/memory.events"  # type: ignore[attr-defined]
    if not os.path.exists(path):
        raise MissingFeature("cgroup v2 memory controller", f"{path} is missing: no OOM events")
    ifd = syscalls.inotify_init1(syscalls.IN_CLOEXEC | syscalls.IN_NONBLOCK)
    try:
        syscalls.inotify_add_watch(ifd, path, syscalls.IN_MODIFY)
    except OSError as err:
        os.close(ifd)
        raise CgroupError(f"inotify {path}: {err.strerror}") from None
    return OomWatcher(ifd, path, True)
