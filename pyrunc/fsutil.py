"""Filesystem helpers shared by pyrunc and pybuild: atomic writes and safe removal.

Invariant: a reader never sees a half-written file. Writers go through a temp
file in the same directory, fsync it, rename it over the target and fsync the
directory, so that a crash leaves either the old or the new content.
"""

from __future__ import annotations

import os
import stat


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace `path` with `data` atomically; `durable=False` skips the fsyncs
    where only atomicity matters (runtime state on tmpfs)."""
    directory = os.path.dirname(path) or "."
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.rename(tmp, path)
    if durable:
        fsync_dir(directory)


def rmtree_nofollow(path: str) -> None:
    """Remove a tree without following symlinks and without crossing into
    mounts (a bind mount left inside must make this fail loudly, not empty
    the host directory behind it)."""
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(top.st_mode):
        os.unlink(path)
        return
    _rm_dir_contents(path, top.st_dev)
    os.rmdir(path)


def _rm_dir_contents(path: str, dev: int) -> None:
    with os.scandir(path) as entries:
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                if st.st_dev != dev:
                    raise OSError(16, "refusing to remove a mount point", entry.path)
                _rm_dir_contents(entry.path, dev)
                os.rmdir(entry.path)
            else:
                os.unlink(entry.path)
