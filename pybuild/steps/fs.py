"""Paths inside an image's root filesystem, as the container would see them.

COPY, ADD, WORKDIR and USER act on a mounted rootfs from the host side. An
image may contain symlinks with absolute targets (`/app -> /srv/app`) or `..`
chains; followed naively on the host they would write outside the rootfs
(the class of bug behind CVE-2018-15664 in `docker cp`). So every path is
resolved one component at a time with the rootfs as `/`: absolute link targets
restart at the rootfs, `..` stops at it. No container runs while a build step
writes, so the resolved path cannot change under us.
"""

from __future__ import annotations

import os
import stat

from pybuild.errors import PybuildError

_MAX_LINKS = 40


class RootfsPathError(PybuildError):
    pass


def resolve_in_root(root: str, path: str, follow_last: bool = True) -> str:
    """Host path of `path` (absolute, as seen inside) with every symlink
    resolved inside `root`. Missing trailing components are kept as named."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, name)
        is_last = not parts
        try:
            st = os.lstat(candidate)
        except FileNotFoundError:
            resolved.append(name)
            continue
        except NotADirectoryError as err:
            raise RootfsPathError(f"{path}: a parent is not a directory") from err
        if stat.S_ISLNK(st.st_mode) and (follow_last or not is_last):
            links += 1
            if links > _MAX_LINKS:
                raise RootfsPathError(f"{path}: too many levels of symbolic links")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(name)
    return os.path.join(root, *resolved) if resolved else root


def inside_path(root: str, host: str) -> str:
    """The in-container path of a host path below `root`."""
    rel = os.path.relpath(host, root)
    return "/" if rel == "." else "/" + rel


def makedirs_in_root(root: str, path: str, uid: int = 0, gid: int = 0, mode: int = 0o755) -> str:
    """`mkdir -p` inside the rootfs; new directories get uid/gid/mode.
    Returns the host path of the (resolved) directory."""
    host = resolve_in_root(root, path)
    missing = []
    probe = host
    while not os.path.lexists(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise RootfsPathError(f"{path}: {inside_path(root, probe)} is not a directory")
    for d in reversed(missing):
        os.mkdir(d)
        os.chmod(d, mode)
        os.lchown(d, uid, gid)
    if not os.path.isdir(host):
        raise RootfsPathError(f"{path}: not a directory")
    return host


def remove_path(host: str) -> None:
    """Remove a file or a tree (the overlay records whiteouts for lower entries)."""
    st = os.lstat(host)
    if stat.S_ISDIR(st.st_mode):
        import shutil

        shutil.rmtree(host)
    else:
        os.unlink(host)
