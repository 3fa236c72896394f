"""Filesystem helpers shared by pyrunc and pybuild: atomic writes, appends to
caller-named files and safe removal.

Invariants:
- A reader never sees a half-written file. Writers go through a temp file in
  the same directory, fsync it, rename it over the target and fsync the
  directory, so that a crash leaves either the old or the new content.
- A temp name cannot be predicted and is created with O_CREAT|O_EXCL|
  O_NOFOLLOW relative to an fd of its directory: a symlink planted at any
  name (the old `.NAME.tmp<pid>` scheme let one redirect `--pid-file` and
  pybuild's config.json to any file) makes the open fail instead of writing
  through it. The rename replaces a symlink at the destination, never the
  file it points to.
- Removal never follows a symlink and never crosses a mount: each directory is
  opened relative to its parent's fd with openat2(RESOLVE_NO_XDEV|
  RESOLVE_NO_SYMLINKS), so a link or bind mount swapped in mid-walk stops the
  walk instead of emptying what is behind it.
"""

from __future__ import annotations

import errno
import os
import stat

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_TEMP = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def fsync_dir(path: str) -> None:
    fd = os.open(path, _DIR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(name: str) -> str:
    """`.NAME.<96 random bits>.tmp`: unpredictable (os.urandom, no imports), and
    short enough for NAME_MAX whatever NAME is."""
    return f".{name[:200]}.{os.urandom(12).hex()}.tmp"


def create_temp(dir_fd: int, name: str, mode: int) -> tuple[str, int]:
    """Create a fresh temp file beside `name` in `dir_fd`: (its name, a write fd)."""
    for _ in range(16):
        tmp = temp_name(name)
        try:
            return tmp, os.open(tmp, _TEMP, mode, dir_fd=dir_fd)
        except FileExistsError:
            continue  # 96 random bits: only something planted can be here; pick again
    raise FileExistsError(errno.EEXIST, "no free temp name", name)


def atomic_write(path: str, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace `path` with `data` atomically; `durable=False` skips the fsyncs
    where only atomicity matters (runtime state on tmpfs)."""
    directory, name = os.path.split(path)
    dir_fd = os.open(directory or ".", _DIR)
    try:
        try:
            tmp, fd = create_temp(dir_fd, name, mode)
        except OSError as err:  # the error names the file being written, not its temp name
            raise OSError(err.errno, err.strerror, path) from None
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if durable:
                    os.fsync(fd)
            except OSError as err:  # ENOSPC, EDQUOT, EIO: named after the file, the temp removed below
                raise OSError(err.errno, err.strerror, path) from None
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            _unlink_quietly(dir_fd, tmp)
            raise
        if durable:
            os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _unlink_quietly(dir_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass  # already renamed or never made: nothing of ours to remove


def open_append(path: str, mode: int = 0o644) -> int:
    """Open a caller-named file (`--log`) for appending, as runc does: an
    existing file, or a link to one (`/dev/stderr`), is used as it is; a new
    file is only ever created at `path` itself, never through a dangling
    symlink planted there (that would create a file wherever it points)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        pass
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        if os.path.islink(path) and not os.path.exists(path):
            raise OSError(errno.ELOOP, "refusing to create a file through a dangling symlink", path) from None
        return os.open(path, flags)  # made by someone else meanwhile


def rmtree_nofollow(path: str) -> None:
    """Remove a tree without following symlinks and without crossing into
    mounts (a bind mount left inside must make this fail loudly, not empty
    the host directory behind it). The last component of `path` itself may
    not be a symlink to a directory either: a link is removed, not followed."""
    parent, name = os.path.split(os.path.normpath(path))
    try:
        parent_fd = os.open(parent or ".", _DIR)
    except FileNotFoundError:
        return
    try:
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            _rm_dir_at(parent_fd, name, path)
        else:
            os.unlink(name, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)


def _rm_dir_at(parent_fd: int, name: str, shown: str) -> None:
    """Empty and remove the directory `name` of `parent_fd`."""
    from pyrunc import syscalls  # ctypes: not on the path of `state`/`list`, which only read

    no_escape = syscalls.RESOLVE_NO_XDEV | syscalls.RESOLVE_NO_SYMLINKS | syscalls.RESOLVE_NO_MAGICLINKS
    try:
        fd = syscalls.openat2(parent_fd, name, _DIR | os.O_NOFOLLOW, 0, no_escape)
    except OSError as err:
        if err.errno == errno.EXDEV:
            raise OSError(errno.EBUSY, "refusing to remove a mount point", shown) from None
        if err.errno == errno.ENOENT:
            return
        raise OSError(err.errno, err.strerror, shown) from None
    try:
        with os.scandir(fd) as entries:
            children = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        for child, is_dir in children:
            if is_dir:
                _rm_dir_at(fd, child, f"{shown}/{child}")
            else:
                try:
                    os.unlink(child, dir_fd=fd)
                except IsADirectoryError:  # replaced by a directory meanwhile: walk it too
                    _rm_dir_at(fd, child, f"{shown}/{child}")
                except FileNotFoundError:
                    continue
    finally:
        os.close(fd)
    try:
        os.rmdir(name, dir_fd=parent_fd)
    except FileNotFoundError:
        pass


# --- holes in files (issue 11 finding 9) ------------------------------------------------
# Holes in files: kept when pybuild copies or writes file data (issue 11 finding 9).
# 
# A 2 GB sparse file (a VM disk, a database preallocation) used to become 2 GB of written zeros
# on every unpack and copy. The rules, as GNU tar and BuildKit's copy keep them:
# - copying a file (COPY, ADD of a plain file): only the data segments SEEK_DATA/SEEK_HOLE report
#   are copied (copy_file_range, so reflinks where the filesystem has them); holes stay holes;
# - writing a stream (a tar entry, sparse or not): a block of zeros at a block boundary is seeked
#   over instead of written, so whatever a tar holds as zeros lands as holes;
# - the file gets its full size with ftruncate at the end (a trailing hole).
# On a filesystem without SEEK_DATA the whole file is one data segment: a plain copy.
# 
# API
#   copy_file_data(src_fd, dst_fd, size)        dst must be empty and opened for writing
#   SparseWriter(fd).write(data) ... .finish()   position-tracking writer that seeks over zero blocks
#   data_segments(fd, size) -> [(offset, length)]

BLOCK = 4096
_ZERO = bytes(BLOCK)
_CHUNK = 1 << 20
_ZEROS = bytes(_CHUNK)


def data_segments(fd: int, size: int) -> list[tuple[int, int]]:
    """(offset, length) of the data in `fd` (its holes left out); [(0, size)] without SEEK_DATA."""
    segments: list[tuple[int, int]] = []
    pos = 0
    try:
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as err:
                if err.errno == errno.ENXIO:  # only a hole is left
                    break
                raise
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            if end > start:
                segments.append((start, end - start))
            pos = end
    except OSError as err:
        if err.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return [(0, size)] if size else []
        raise
    return segments


def copy_file_data(src: int, dst: int, size: int) -> None:
    """Copy `size` bytes of src into the empty dst, keeping src's holes."""
    for offset, length in data_segments(src, size):
        _copy_range(src, dst, offset, length)
    os.ftruncate(dst, size)


def _copy_range(src: int, dst: int, offset: int, length: int) -> None:
    done = 0
    while done < length:
        try:
            n = os.copy_file_range(src, dst, length - done, offset + done, offset + done)
        except OSError as err:
            if err.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            n = _copy_by_read(src, dst, offset + done, length - done)
        if n == 0:
            raise OSError(errno.EIO, "file shrank while being copied")
        done += n


def _copy_by_read(src: int, dst: int, offset: int, length: int) -> int:
    data = os.pread(src, min(length, _CHUNK), offset)
    if data:
        writer = SparseWriter(dst, offset)
        writer.write(data)
    return len(data)


class SparseWriter:
    """Writes a stream sequentially into a new (empty) file at the fd's offsets, leaving out every
    block-aligned piece that is all zeros: unwritten ranges of a new file read as zeros, and the
    filesystem keeps them as holes. finish() sets the final size (a trailing hole has no bytes)."""

    def __init__(self, fd: int, offset: int = 0) -> None:
        self.fd = fd
        self.pos = offset

    def write(self, data: bytes | bytearray | memoryview) -> None:
        raw = data if isinstance(data, bytes) else bytes(data)
        n = len(raw)
        if (raw == _ZEROS[:n]) if n <= _CHUNK else raw.count(0) == n:  # all zeros (memcmp): skip
            self.pos += n
            return
        view = memoryview(raw)
        if raw.find(_ZERO) < 0:  # no run of a block of zeros anywhere: no hole possible
            self._pwrite(view, self.pos)
            self.pos += n
            return
        off = 0
        run = -1  # start of the pending run of non-zero blocks
        while off < n:
            piece = view[off:off + BLOCK - (self.pos + off) % BLOCK]
            if piece == _ZERO[:len(piece)]:
                if run >= 0:
                    self._pwrite(view[run:off], self.pos + run)
                    run = -1
            elif run < 0:
                run = off
            off += len(piece)
        if run >= 0:
            self._pwrite(view[run:n], self.pos + run)
        self.pos += n

    def _pwrite(self, data: memoryview, at: int) -> None:
        while data:
            written = os.pwrite(self.fd, data, at)
            at += written
            data = data[written:]

    def finish(self) -> None:
        os.ftruncate(self.fd, self.pos)
