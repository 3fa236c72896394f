"""Mount stubs of a RUN step: planned before the step runs, pruned from its diff after.

A runtime creates a mount point for every destination the image lacks (an empty `/proc`, an empty
`/etc/hosts`, `/run/secrets/x`, a tmpfs target's directory chain). Those stubs land in the step's
overlay upper dir; BuildKit's mount stub cleaner removes them again so they never reach a layer.

The step is hostile input: while it runs it can replace any directory on a stub's path with a
symlink to a host path (`mv /m /m2 && ln -s /host/dir /m`), so that a cleaner walking path strings
afterwards removes the host's `/host/dir/victim` (issue 11 finding 2; BuildKit's CVE-2024-23652).
So:
- `plan_stubs` runs before the step, on the mounted rootfs: a stub is a path, resolved inside the
  rootfs as the runtime resolves destinations, that does not exist yet. Only those are candidates:
  nothing that existed before the step is ever removed.
- `prune_stubs` runs after the step, on the upper dir, entirely through fds: each parent is opened
  with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV) from the upper dir, so a symlink
  (or a mount) anywhere on the path makes that stub "not ours any more" and it is left alone. A stub
  goes only if it is still an empty directory (not opaque) or an empty regular file.
- A directory above a removed stub that the stub's creation copied up (empty in the upper dir, not
  opaque, same type, mode and owner as in the lower layers) goes too: it would add a layer entry
  that changes nothing.

Public API
  plan_stubs(rootfs, destinations) -> list[tuple[str, ...]]   (paths relative to the rootfs)
  prune_stubs(upper, lowers, stubs) -> None                     (lowers top-most first)
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence

from pyrunc import syscalls

_O_PATH = getattr(os, "O_PATH", 0o10000000)
_DIR = _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
_IN_ROOT = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS
_BENEATH = (syscalls.RESOLVE_BENEATH | syscalls.RESOLVE_NO_SYMLINKS | syscalls.RESOLVE_NO_XDEV
            | syscalls.RESOLVE_NO_MAGICLINKS)
_OPAQUE_KEYS = ("trusted.overlay.opaque", "user.overlay.opaque")


def _parts(path: str) -> tuple[str, ...]:
    return tuple(p for p in path.split("/") if p not in ("", "."))


def plan_stubs(rootfs: str, destinations: Sequence[str]) -> list[tuple[str, ...]]:
    """The paths (inside `rootfs`, symlinks resolved in it) that mounting `destinations` will create.
    A destination whose path cannot be resolved plainly (`..`, a dangling or looping symlink) gets
    no stub: whatever the runtime makes there stays in the diff rather than risk removing more."""
    root = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        root_path = os.readlink(f"/proc/self/fd/{root}")
        stubs: set[tuple[str, ...]] = set()
        for dest in destinations:
            stubs.update(_missing(root, root_path, _parts(dest)))
        return sorted(stubs)
    finally:
        os.close(root)


def _missing(root: int, root_path: str, parts: tuple[str, ...]) -> list[tuple[str, ...]]:
    if not parts or ".." in parts:
        return []
    for i in range(len(parts)):
        prefix = "/".join(parts[:i + 1])
        try:
            fd = syscalls.openat2(root, prefix, _O_PATH | os.O_CLOEXEC, resolve=_IN_ROOT)
        except FileNotFoundError:
            break
        except OSError:
            return []  # ELOOP, ENOTDIR, EXDEV: not a plain path; plan nothing
        os.close(fd)
    else:
        return []  # every component exists: the mount point is the image's own
    # parts[i] is missing: the runtime creates it in the real directory its parent resolves to
    try:
        pfd = syscalls.openat2(root, "/".join(parts[:i]) or ".", _DIR, resolve=_IN_ROOT)
    except OSError:
        return []
    try:
        if os.path.islink(f"/proc/self/fd/{pfd}/{parts[i]}"):
            return []  # a dangling symlink: its target is created, somewhere we do not plan for
        real = os.readlink(f"/proc/self/fd/{pfd}")
    finally:
        os.close(pfd)
    if real != root_path and not real.startswith(root_path.rstrip("/") + "/"):
        return []
    base = _parts(os.path.relpath(real, root_path)) if real != root_path else ()
    return [base + parts[i:j + 1] for j in range(i, len(parts))]


def prune_stubs(upper: str, lowers: Sequence[str], stubs: Sequence[tuple[str, ...]]) -> None:
    """Remove from the upper dir the planned stubs that are still pristine, deepest first, and the
    copied-up directories left empty above them. Never follows a symlink, never crosses a mount."""
    up = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    lower_fds: list[int] = []
    try:
        for lower in lowers:
            lower_fds.append(os.open(lower, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        planned = set(stubs)
        parents: set[tuple[str, ...]] = set()
        for stub in sorted(planned, key=len, reverse=True):
            if _remove_if_pristine(up, stub):
                parents.update(stub[:i] for i in range(1, len(stub)) if stub[:i] not in planned)
        for parent in sorted(parents, key=len, reverse=True):
            _remove_if_copy_up(up, lower_fds, parent)
    finally:
        for fd in lower_fds:
            os.close(fd)
        os.close(up)


def _open_parent(top: int, parts: tuple[str, ...]) -> int | None:
    """An fd of the directory holding parts[-1], reached from `top` without any symlink or mount."""
    if len(parts) == 1:
        return os.dup(top)
    try:
        return syscalls.openat2(top, "/".join(parts[:-1]), _DIR, resolve=_BENEATH)
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EXDEV):
            return None
        raise


def _is_opaque(pfd: int, name: str) -> bool:
    for key in _OPAQUE_KEYS:
        try:
            if os.getxattr(f"/proc/self/fd/{pfd}/{name}", key, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _remove_if_pristine(up: int, stub: tuple[str, ...]) -> bool:
    pfd = _open_parent(up, stub)
    if pfd is None:
        return False
    try:
        name = stub[-1]
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISREG(st.st_mode) and st.st_size == 0:
            os.unlink(name, dir_fd=pfd)
            return True
        if stat.S_ISDIR(st.st_mode) and not _is_opaque(pfd, name) and _empty_dir(pfd, name):
            os.rmdir(name, dir_fd=pfd)
            return True
        return False
    finally:
        os.close(pfd)


def _empty_dir(pfd: int, name: str) -> bool:
    try:
        fd = syscalls.openat2(pfd, name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, resolve=_BENEATH)
    except OSError:
        return False
    try:
        return not os.listdir(fd)
    finally:
        os.close(fd)


def _lower_stat(lower_fds: Sequence[int], parts: tuple[str, ...]) -> os.stat_result | None:
    """The entry the lower layers show at `parts` (top-most first), read without following links;
    None if absent, whited out, or only reachable through a symlink."""
    for lfd in lower_fds:
        pfd = _open_parent(lfd, parts)
        if pfd is None:
            continue
        try:
            st = os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        finally:
            os.close(pfd)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return None
        return st
    return None


def _remove_if_copy_up(up: int, lower_fds: Sequence[int], parts: tuple[str, ...]) -> None:
    pfd = _open_parent(up, parts)
    if pfd is None:
        return
    try:
        try:
            st = os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode) or _is_opaque(pfd, parts[-1]) or not _empty_dir(pfd, parts[-1]):
            return
        low = _lower_stat(lower_fds, parts)
        if low is None or (low.st_mode, low.st_uid, low.st_gid) != (st.st_mode, st.st_uid, st.st_gid):
            return
        os.rmdir(parts[-1], dir_fd=pfd)
    finally:
        os.close(pfd)
