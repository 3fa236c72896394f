"""Holes in files: kept when pybuild copies or writes file data (issue 11 finding 9).

A 2 GB sparse file (a VM disk, a database preallocation) used to become 2 GB of written zeros
on every unpack and copy. The rules, as GNU tar and BuildKit's copy keep them:
- copying a file (COPY, ADD of a plain file): only the data segments SEEK_DATA/SEEK_HOLE report
  are copied (copy_file_range, so reflinks where the filesystem has them); holes stay holes;
- writing a stream (a tar entry, sparse or not): a block of zeros at a block boundary is seeked
  over instead of written, so whatever a tar holds as zeros lands as holes;
- the file gets its full size with ftruncate at the end (a trailing hole).
On a filesystem without SEEK_DATA the whole file is one data segment: a plain copy.

Public API
  copy_file_data(src_fd, dst_fd, size)        dst must be empty and opened for writing
  SparseWriter(fd).write(data) ... .finish()   position-tracking writer that seeks over zero blocks
  data_segments(fd, size) -> [(offset, length)]
"""

from __future__ import annotations

import errno
import os

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
