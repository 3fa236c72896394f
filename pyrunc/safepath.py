"""Resolve paths inside a container rootfs without ever leaving it.

Every path that comes from the bundle (mount destinations, device paths, cwd,
masked paths) is resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
against an fd of the rootfs: `..` and absolute symlinks are clamped to the
rootfs, and /proc magic links cannot redirect a lookup to the host. Callers get
O_PATH fds and act on them (`/proc/self/fd/N`), never on a re-resolved string,
so a symlink swapped in after the check changes nothing (DESIGN §3).
"""

from __future__ import annotations

import errno
import os
import stat

from pyrunc import syscalls
from pyrunc.errors import SecurityError

_RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS
O_PATH = os.O_PATH | os.O_CLOEXEC


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def open_in_root(root_fd: int, path: str, flags: int = O_PATH, mode: int = 0) -> int:
    """Open `path` (absolute or relative, read as inside the root) under root_fd."""
    rel = path.lstrip("/") or "."
    return syscalls.openat2(root_fd, rel, flags | os.O_CLOEXEC, mode, _RESOLVE)


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


MAX_LINKS = 40  # the kernel's ELOOP limit


def _dangling(root_fd: int, dir_fd: int, parent: str, name: str, depth: int) -> str | None:
    """If `name` in dir_fd is a symlink (whose target is missing), the path
    inside the root it points to; None if it is not a symlink."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not stat.S_ISLNK(st.st_mode):
        return None
    if depth >= MAX_LINKS:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name)
    target = os.readlink(name, dir_fd=dir_fd)
    if target.startswith("/"):
        return target
    return resolve_in_root(root_fd, parent or "/").rstrip("/") + "/" + target


def mkdir_all(root_fd: int, path: str, mode: int = 0o755, _depth: int = 0) -> int:
    """mkdir -p inside the root; returns an O_PATH fd of the final directory.

    Each prefix is resolved from the root with RESOLVE_IN_ROOT, so a symlink at
    any level (even one planted to point at the host's /etc) stays inside. A
    dangling symlink is followed inside the root and its target created, as
    runc (securejoin + MkdirAll) does.
    """
    parts = _split(path)
    fd = os.open(".", O_PATH, dir_fd=root_fd)
    try:
        for i, name in enumerate(parts):
            prefix = "/".join(parts[: i + 1])
            try:
                new = open_in_root(root_fd, prefix, O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:
                if name == "..":
                    raise
                try:
                    os.mkdir(name, mode, dir_fd=fd)
                except FileExistsError:
                    link = _dangling(root_fd, fd, "/".join(parts[:i]), name, _depth)
                    if link is not None:
                        os.close(mkdir_all(root_fd, link, mode, _depth + 1))
                new = open_in_root(root_fd, prefix, O_PATH | os.O_DIRECTORY)
            except NotADirectoryError:
                raise SecurityError(f"{path}: /{prefix} is not a directory in the rootfs") from None
            os.close(fd)
            fd = new
        return fd
    except BaseException:
        os.close(fd)
        raise


def create_target(root_fd: int, path: str, is_dir: bool, mode: int = 0o755, _depth: int = 0) -> int:
    """Make sure a mount target exists (a dir, or an empty file for a file bind)
    and return an O_PATH fd of it, resolved inside the root (a dangling
    symlink's target is created inside the root, as runc)."""
    if is_dir:
        return mkdir_all(root_fd, path, mode, _depth)
    try:
        return open_in_root(root_fd, path, O_PATH)
    except FileNotFoundError:
        pass
    parts = _split(path)
    if not parts:
        raise SecurityError(f"{path}: cannot be a file target")
    parent = mkdir_all(root_fd, "/".join(parts[:-1]), mode)
    try:
        try:
            fd = os.open(parts[-1], os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                         0o644, dir_fd=parent)
            os.close(fd)
        except FileExistsError:
            link = _dangling(root_fd, parent, "/".join(parts[:-1]), parts[-1], _depth)
            if link is not None:
                os.close(create_target(root_fd, link, False, mode, _depth + 1))
        return open_in_root(root_fd, path, O_PATH)
    finally:
        os.close(parent)


def is_dir_fd(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def resolve_in_root(root_fd: int, path: str) -> str:
    """The path of `path` inside the root, symlinks resolved inside it.

    Computed from the opened fd's /proc link relative to the root's own path,
    so it reflects what was actually opened.
    """
    fd = open_in_root(root_fd, path, O_PATH)
    try:
        real = os.readlink(fd_path(fd))
    finally:
        os.close(fd)
    root = os.readlink(fd_path(root_fd))
    if real == root:
        return "/"
    if not real.startswith(root.rstrip("/") + "/"):
        raise SecurityError(f"{path}: resolves outside the rootfs")
    return real[len(root.rstrip("/")):]


def check_not_symlink(root_fd: int, path: str, what: str) -> None:
    """Refuse a symlink at `path` (runc: /proc and /sys targets, CVE-2023-27561)."""
    parts = _split(path)
    if not parts:
        return
    try:
        parent = open_in_root(root_fd, "/".join(parts[:-1]), O_PATH | os.O_DIRECTORY)
    except FileNotFoundError:
        return
    try:
        st = os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return
    finally:
        os.close(parent)
    if stat.S_ISLNK(st.st_mode):
        raise SecurityError(f"{what} {path}: is a symlink in the rootfs; refusing to mount on it")
    if not stat.S_ISDIR(st.st_mode):
        raise SecurityError(f"{what} {path}: is not a directory in the rootfs")


def openat2_supported() -> bool:
    try:
        fd = syscalls.openat2(-100, "/", O_PATH, 0, 0)
    except OSError as err:
        if err.errno == errno.ENOSYS:
            return False
        raise
    os.close(fd)
    return True
