"""Per-step overlay mounts, and unmount-then-remove of a tree that may hold mounts.

A step's root filesystem is an overlay: the parent image's unpacked layers are
the lower dirs (read-only, shared by every build), a fresh upper dir collects
exactly what the step changed (so the layer diff *is* the upper dir, and commit
cost grows with the bytes changed, not with the image), and a work dir.

Invariants:
- Overlays of a build live under its temp dir (`buildtemp.BuildTemp`), on the
  store's filesystem, so a finished upper dir can be renamed into the layer store.
- The overlay is mounted with `redirect_dir=off,metacopy=off,index=off` so the
  upper dir holds only plain files, whiteouts (0/0 char devices) and opaque
  markers (`trusted.overlay.opaque`): the two things an OCI layer can express.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from typing import Iterator, Sequence

from pybuild.errors import PybuildError
from pyrunc.record import Record

_OVERLAY_OPTS = "index=off,metacopy=off,redirect_dir=off"
_MAX_MOUNT_DATA = 4000  # the mount(2) data page is 4096 bytes


class OverlayError(PybuildError):
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


class Overlay(Record):
    """Paths of one step's overlay; `mount_overlay` mounts it."""

    merged: str
    upper: str
    work: str
    lowers: tuple[str, ...]


def _opts() -> str:
    """In a user namespace (rootless) overlay keeps its markers in `user.overlay.*` (userxattr):
    the namespace's root may not write `trusted.*`. userxattr refuses redirect_dir=off (which
    still follows redirects of lower dirs); nofollow neither makes nor follows them."""
    from pybuild import rootless

    if rootless.overlay_xattr_ns() == "user":
        return "index=off,metacopy=off,redirect_dir=nofollow,userxattr"
    return _OVERLAY_OPTS


def _mount_data(lowers: Sequence[str], upper: str, work: str) -> tuple[str, str | None]:
    """Overlay mount options; if absolute lower paths overflow the data page,
    make them relative to their common parent (returned as the cwd to use)."""
    opts = _opts()
    data = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work},{opts}"
    if len(data) <= _MAX_MOUNT_DATA:
        return data, None
    common = os.path.commonpath(list(lowers))
    rel = [os.path.relpath(p, common) for p in lowers]
    data = f"lowerdir={':'.join(rel)},upperdir={upper},workdir={work},{opts}"
    if len(data) > _MAX_MOUNT_DATA:
        raise OverlayError(f"overlay: {len(lowers)} layers exceed the kernel's mount option size")
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
        hint = ""
        if err.errno in (errno.EPERM, errno.EINVAL) and "userxattr" in data:
            hint = " (rootless: overlay in a user namespace needs Linux >= 5.11 with userxattr)"
        raise OverlayError(f"mount overlay at {merged}: {err.strerror}{hint}") from err
    finally:
        if old_cwd:
            os.chdir(old_cwd)
    try:
        yield Overlay(merged, upper, work, tuple(lowers))
    finally:
        unmount_under(merged)
        shutil.rmtree(work, ignore_errors=False)
