"""Per-step overlay mounts and the build's private temp dir.

A step's root filesystem is an overlay: the parent image's unpacked layers are
the lower dirs (read-only, shared by every build), a fresh upper dir collects
exactly what the step changed (so the layer diff *is* the upper dir, and commit
cost grows with the bytes changed, not with the image), and a work dir.

Invariants:
- Everything a build mounts or writes lives under one temp dir,
  `<root>/tmp/build-<pid>-<random>`, on the store's filesystem (so a finished
  upper dir can be renamed into the layer store). `BuildTemp` unmounts and
  removes it on any exit, and `clean_stale` removes what a SIGKILLed build left.
- The overlay is mounted with `redirect_dir=off,metacopy=off,index=off` so the
  upper dir holds only plain files, whiteouts (0/0 char devices) and opaque
  markers (`trusted.overlay.opaque`): the two things an OCI layer can express.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from typing import Iterator, Sequence

from pybuild.errors import PybuildError

_OVERLAY_OPTS = "index=off,metacopy=off,redirect_dir=off"
_MAX_MOUNT_DATA = 4000  # the mount(2) data page is 4096 bytes


class SnapshotError(PybuildError):
    pass


def _mountinfo_targets() -> list[str]:
    """Mount points from /proc/self/mountinfo, octal escapes (\\040) decoded."""
    targets = []
    with open("/proc/self/mountinfo", "rb") as fh:
        for line in fh:
            field = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), line.split(b" ")[4])
            targets.append(os.fsdecode(field))
    return targets


def unmount_under(path: str) -> None:
    """Unmount every mount at or below `path`, deepest first."""
    from pyrunc import syscalls

    prefix = path.rstrip("/") + "/"
    mounts = [t for t in _mountinfo_targets() if t == path or t.startswith(prefix)]
    for target in sorted(set(mounts), key=len, reverse=True):
        try:
            syscalls.umount2(target, 0)
        except OSError as err:
            if err.errno == errno.EBUSY:
                syscalls.umount2(target, syscalls.MNT_DETACH)
            elif err.errno not in (errno.EINVAL, errno.ENOENT):
                raise


def remove_tree(path: str) -> None:
    """Unmount what is left below `path`, then remove it (never across a mount)."""
    from pyrunc.fsutil import rmtree_nofollow

    if not os.path.lexists(path):
        return
    unmount_under(path)
    rmtree_nofollow(path)


@dataclass(frozen=True, slots=True)
class Overlay:
    """Paths of one step's overlay; `mount_overlay` mounts it."""

    merged: str
    upper: str
    work: str
    lowers: tuple[str, ...]


def _mount_data(lowers: Sequence[str], upper: str, work: str) -> tuple[str, str | None]:
    """Overlay mount options; if absolute lower paths overflow the data page,
    make them relative to their common parent (returned as the cwd to use)."""
    data = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work},{_OVERLAY_OPTS}"
    if len(data) <= _MAX_MOUNT_DATA:
        return data, None
    common = os.path.commonpath(list(lowers))
    rel = [os.path.relpath(p, common) for p in lowers]
    data = f"lowerdir={':'.join(rel)},upperdir={upper},workdir={work},{_OVERLAY_OPTS}"
    if len(data) > _MAX_MOUNT_DATA:
        raise SnapshotError(f"overlay: {len(lowers)} layers exceed the kernel's mount option size")
    return data, common


@contextlib.contextmanager
def mount_overlay(base: str, lowers: Sequence[str], keep_upper: bool = False) -> Iterator[Overlay]:
    """Mount an overlay under `base` (created here) with `lowers` top-most
    first; unmount on exit. The upper dir outlives the mount (it is the diff).
    `keep_upper`: `base` holds the upper dir of an earlier mount (a container
    started again), which is mounted as it is, with a fresh work dir."""
    from pyrunc import syscalls

    merged, upper, work = (os.path.join(base, n) for n in ("merged", "upper", "work"))
    if keep_upper and os.path.isdir(upper) and not os.path.islink(upper):
        from pyrunc.fsutil import rmtree_nofollow

        rmtree_nofollow(work)  # a work dir left by a killed monitor
        for d in (merged, work):
            if not os.path.isdir(d):
                os.mkdir(d, 0o755)
    else:
        os.makedirs(base, exist_ok=False)
        for d in (merged, upper, work):
            os.mkdir(d, 0o755)
    if not lowers:
        # overlayfs needs at least one lower dir; FROM scratch gets an empty one.
        empty = os.path.join(base, "empty")
        if not (keep_upper and os.path.isdir(empty)):
            os.mkdir(empty, 0o755)
        lowers = [empty]
    data, cwd = _mount_data(lowers, upper, work)
    old_cwd = os.getcwd() if cwd else None
    try:
        if cwd:
            os.chdir(cwd)
        syscalls.mount("overlay", merged, "overlay", 0, data)
    except OSError as err:
        raise SnapshotError(f"mount overlay at {merged}: {err.strerror}") from err
    finally:
        if old_cwd:
            os.chdir(old_cwd)
    try:
        yield Overlay(merged, upper, work, tuple(lowers))
    finally:
        unmount_under(merged)
        shutil.rmtree(work, ignore_errors=False)


class BuildTemp:
    """The build's private temp dir under `<store>/tmp`; removed (after
    unmounting anything inside) when the build ends, however it ends."""

    def __init__(self, store_root: str) -> None:
        self.parent = os.path.join(store_root, "tmp")
        os.makedirs(self.parent, exist_ok=True)
        clean_stale(self.parent)
        self.path = os.path.join(self.parent, f"build-{os.getpid()}-{secrets.token_hex(4)}")
        os.mkdir(self.path, 0o700)
        self._n = 0

    def new_dir(self, prefix: str) -> str:
        """A fresh, not yet existing path inside the temp dir."""
        self._n += 1
        return os.path.join(self.path, f"{prefix}{self._n}")

    def close(self) -> None:
        remove_tree(self.path)

    def __enter__(self) -> "BuildTemp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pid_alive(pid: int) -> bool:
    """A zombie (killed, not yet reaped) counts as dead: its build is over."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat_line = fh.read()
    except FileNotFoundError:
        return False
    state = stat_line[stat_line.rfind(b")") + 2:][:1]
    return state not in (b"Z", b"X")


def clean_stale(tmp_parent: str) -> None:
    """Remove temp dirs (and their mounts) of builds whose process is gone,
    e.g. after a SIGKILL that also took the build's keeper (sandbox.py).
    Live builds' dirs are left alone."""
    try:
        names = os.listdir(tmp_parent)
    except FileNotFoundError:
        return
    for name in names:
        if not name.startswith("build-"):
            continue
        try:
            pid = int(name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and _pid_alive(pid):
            continue
        _clean_one(os.path.join(tmp_parent, name), wait=False)


def clean_build_dirs(tmp_parent: str, owner: int) -> None:
    """What a dead build (pid `owner`) left: its containers' runtime state and cgroups, its mounts,
    its temp dirs. Run by that build's keeper right after the build died."""
    try:
        names = os.listdir(tmp_parent)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith(f"build-{owner}-"):
            _clean_one(os.path.join(tmp_parent, name), wait=True)


def _clean_one(stale: str, wait: bool) -> None:
    """Clean one dead build's dir under its flock: whoever holds it (the dead build's watcher, or
    another build) does the work; `wait=False` skips a dir someone is already cleaning."""
    import fcntl

    try:
        fd = os.open(stale, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return
        if not os.path.lexists(stale):
            return  # cleaned by the other holder meanwhile
        _delete_orphan_containers(stale)
        remove_tree(stale)
        from pybuild.net.plumbing import teardown_owned  # its RUN steps' bridge networks (pybuild-<pid>-…)

        teardown_owned(f"pybuild-{os.path.basename(stale).split('-')[1]}-")
    except OSError as err:
        # Leftovers of a dead build must not stop this one; say so, retry next time.
        import sys

        sys.stderr.write(f"pybuild: warning: cannot remove {stale} left by a killed build: {err}\n")
    finally:
        os.close(fd)


def _delete_orphan_containers(stale: str) -> None:
    """`<runtime> delete -f` of every container a dead build's runtime state root (its runtime
    recorded in runtime.json) still lists: removes their cgroups and state. Their processes died
    with the build's pid namespace; a pid from a state.json is never signalled here (it is a pid
    in that namespace, not in ours)."""
    import subprocess

    roots = [os.path.join(stale, n) for n in os.listdir(stale) if n.startswith("runtime")]
    for root in roots:
        argv = None
        try:
            with open(os.path.join(root, "runtime.json"), "rb") as fh:
                argv = json.load(fh).get("argv")
        except (OSError, ValueError):
            pass
        if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            continue
        for cid in os.listdir(root):
            if os.path.isfile(os.path.join(root, cid, "state.json")):
                with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                    subprocess.run([*argv, "--root", root, "delete", "-f", cid], stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=30)


def is_empty_diff(upper: str) -> bool:
    return not os.listdir(upper)
