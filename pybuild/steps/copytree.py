"""COPY's file placement, with docker's directory semantics, into a mounted rootfs.

Rules (Dockerfile reference, COPY):
- A relative destination is relative to WORKDIR.
- The destination is a directory when it ends with `/`, already is a directory
  in the image, or several sources are copied; otherwise a file source is
  copied *as* the destination path.
- A directory source copies its contents (not itself) into the destination.
- Owners become 0:0 (or `--chown`), permission bits are kept (or `--chmod`),
  modification times are kept, symlinks are copied as symlinks.
- Every write goes through in-root resolution (steps/fs.py), so a symlink in
  the image can redirect a copy only to somewhere inside the image.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from typing import Iterable, Protocol

from pybuild.context import Source
from pybuild.errors import PybuildError
from pybuild.steps.fs import makedirs_in_root, resolve_in_root


class CopyError(PybuildError):
    pass


class SourceTree(Protocol):
    def entries(self, source: Source) -> list[tuple[str, str, os.stat_result]]: ...


@dataclass(frozen=True, slots=True)
class Placement:
    uid: int = 0
    gid: int = 0
    chmod: int | None = None        # --chmod (applies to files and directories)


def dest_path(dest: str, workdir: str) -> str:
    if dest.startswith("/"):
        return dest
    base = workdir or "/"
    return base.rstrip("/") + "/" + dest if dest not in (".", "./") else base.rstrip("/") + "/"


def dest_is_dir(rootfs: str, dest: str, n_sources: int) -> bool:
    if dest.endswith("/") or dest.endswith("/.") or n_sources > 1:
        return True
    return os.path.isdir(resolve_in_root(rootfs, dest))


_O_PATH = getattr(os, "O_PATH", 0o10000000)


class _Writer:
    """Places entries through fds: each parent directory is opened inside the rootfs with
    openat2(RESOLVE_IN_ROOT), entries are created, chowned, chmodded and timed relative to it or on
    their own O_NOFOLLOW fds, and the final directory-time pass reopens each directory and checks it
    is still the one made here (issue 11 finding 3: a metadata pass never follows a link)."""

    def __init__(self, rootfs: str, place: Placement) -> None:
        from pyrunc import syscalls

        self.rootfs = rootfs
        self.place = place
        self.root = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._resolve = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS
        self._openat2 = syscalls.openat2
        self._dirs: dict[str, int] = {}
        self._dir_times: list[tuple[str, int, int, int]] = []  # inside path, mtime ns, dev, ino

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()
        os.close(self.root)

    def _open_dir(self, inside: str, flags: int = 0) -> int:
        return self._openat2(self.root, inside.strip("/") or ".", _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC | flags,
                             resolve=self._resolve)

    def parent(self, inside: str) -> int:
        """An fd of the parent directory of `inside` (created as needed, resolved in the rootfs)."""
        parent = os.path.dirname(inside.rstrip("/")) or "/"
        fd = self._dirs.get(parent)
        if fd is None:
            try:
                fd = self._open_dir(parent)
            except FileNotFoundError:
                makedirs_in_root(self.rootfs, parent, self.place.uid, self.place.gid)
                fd = self._open_dir(parent)
            except NotADirectoryError:
                raise CopyError(f"{parent}: not a directory") from None
            if len(self._dirs) > 256:
                self.close_dirs()
            self._dirs[parent] = fd
        return fd

    def close_dirs(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def _mode(self, st: os.stat_result) -> int:
        return self.place.chmod if self.place.chmod is not None else stat.S_IMODE(st.st_mode)

    def put(self, inside: str, host_src: str, st: os.stat_result) -> None:
        pfd = self.parent(inside)
        name = os.path.basename(inside.rstrip("/"))
        existing = _lstat_at(pfd, name)
        if stat.S_ISDIR(st.st_mode):
            self._put_dir(pfd, name, inside.rstrip("/"), st, existing)
            return
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode):
                raise CopyError(f"cannot copy a file over the directory {inside}")
            os.unlink(name, dir_fd=pfd)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(host_src), name, dir_fd=pfd)
        elif stat.S_ISREG(st.st_mode):
            self._copy_file(pfd, name, host_src, inside)
            return
        else:
            # fifos and device nodes (COPY --from an image) are recreated as they were
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=pfd)
        os.chown(name, self.place.uid, self.place.gid, dir_fd=pfd, follow_symlinks=False)
        os.utime(name, ns=(st.st_mtime_ns, st.st_mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _copy_file(self, pfd: int, name: str, host_src: str, inside: str) -> None:
        from pyrunc.fsutil import copy_file_data

        src = os.open(host_src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            st = os.fstat(src)
            if not stat.S_ISREG(st.st_mode):  # changed since it was listed
                raise CopyError(f"{inside}: source is no longer a regular file")
            dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                          dir_fd=pfd)
            try:
                copy_file_data(src, dst, st.st_size)
                os.fchown(dst, self.place.uid, self.place.gid)
                os.fchmod(dst, self._mode(st))  # after chown, which clears set-id bits
                os.utime(dst, ns=(st.st_mtime_ns, st.st_mtime_ns))
            finally:
                os.close(dst)
        finally:
            os.close(src)

    def _put_dir(self, pfd: int, name: str, inside: str, st: os.stat_result,
                 existing: os.stat_result | None) -> None:
        if existing is not None and stat.S_ISLNK(existing.st_mode):
            try:
                # a symlinked directory in the image is merged into, as docker does (in the rootfs)
                os.close(self._open_dir(inside))
                return
            except (FileNotFoundError, NotADirectoryError):
                pass  # dangling or not a directory: replaced by a real one
        if existing is not None and not stat.S_ISDIR(existing.st_mode):
            os.unlink(name, dir_fd=pfd)
            existing = None
        if existing is None:
            os.mkdir(name, 0o700, dir_fd=pfd)
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
        try:
            os.fchown(fd, self.place.uid, self.place.gid)
            os.fchmod(fd, self._mode(st))
            made = os.fstat(fd)
        finally:
            os.close(fd)
        self._dir_times.append((inside, st.st_mtime_ns, made.st_dev, made.st_ino))

    def finish(self) -> None:
        self.close_dirs()
        for inside, mtime, dev, ino in reversed(self._dir_times):
            try:
                fd = self._open_dir(inside, os.O_NOFOLLOW)
            except OSError:
                continue  # gone or replaced by a link since: not ours to touch
            try:
                now = os.fstat(fd)
                if (now.st_dev, now.st_ino) == (dev, ino):
                    os.utime(f"/proc/self/fd/{fd}", ns=(mtime, mtime))
            finally:
                os.close(fd)


def _lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def copy_sources(tree: SourceTree, sources: Iterable[Source], rootfs: str, dest: str,
                 place: Placement, as_dir: bool) -> None:
    """Copy resolved sources to `dest` (an absolute in-image path)."""
    writer = _Writer(rootfs, place)
    try:
        _copy_into(writer, tree, sources, rootfs, dest, place, as_dir)
    finally:
        writer.close()


def _copy_into(writer: _Writer, tree: SourceTree, sources: Iterable[Source], rootfs: str, dest: str,
               place: Placement, as_dir: bool) -> None:
    if as_dir:
        makedirs_in_root(rootfs, dest, place.uid, place.gid)
    for source in sources:
        if source.is_dir:
            base = dest.rstrip("/") or ""
            makedirs_in_root(rootfs, base or "/", place.uid, place.gid)
            cut = 0 if source.rel == "." else len(source.rel) + 1
            for rel, host, st in tree.entries(source):
                _put(writer, f"{base}/{rel[cut:]}", host, st)
        else:
            target = (dest.rstrip("/") + "/" + os.path.basename(source.rel)) if as_dir else dest
            _put(writer, target, source.path, os.stat(source.path))
    writer.finish()


def _put(writer: _Writer, inside: str, host: str, st: os.stat_result) -> None:
    try:
        writer.put(inside, host, st)
    except OSError as err:
        raise CopyError(f"{inside}: {err.strerror or err}") from None
