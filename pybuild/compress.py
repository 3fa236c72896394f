"""Layer compression: parallel gzip (pigz-style, one valid gzip stream), zstd, and sniffing decompression.

Why parallel gzip works in threads: zlib releases the GIL while it deflates, so N threads use N cores.
The input is cut into blocks; each block is deflated on its own (primed with the previous block's last
32 KiB as dictionary, as pigz does, so the ratio matches serial gzip) and ended with Z_SYNC_FLUSH, which
leaves the stream byte-aligned with no final bit. Concatenating such blocks and a final Z_FINISH block is
one valid deflate stream; the gzip header and trailer (CRC-32 computed in order on the calling thread,
ISIZE) wrap it. Output order is the input order: a bounded queue of futures is drained in submission order.

Public API
  GZIP, ZSTD, NONE (names accepted by `open_compressor`); MEDIA_TYPES {name: layer media type}
  open_compressor(name, out, level=None, threads=None) -> sink with write(data) and close()
  open_decompressed(raw) -> readable stream (gzip, zstd, bzip2, xz sniffed from magic bytes; else raw)
  default_threads() -> cores this process may use
"""

from __future__ import annotations

import collections
import os
import struct
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO, Protocol

from pybuild.errors import PybuildError
from pybuild.image import MT_LAYER, MT_LAYER_GZIP, MT_LAYER_ZSTD

GZIP, ZSTD, NONE = "gzip", "zstd", "none"
MEDIA_TYPES = {GZIP: MT_LAYER_GZIP, ZSTD: MT_LAYER_ZSTD, NONE: MT_LAYER}
# The default gzip is ISA-L's deflate (python-isal) at its level 3: measured on this machine's /usr
# (python 49 MB, share 150 MB, bin 152 MB, x86-64 libraries 220 MB) it comes out 0.4 % smaller to
# 0.4 % larger than zlib level 1, pybuild's default before, at 270-360 MB/s on one core where zlib 1
# deflates at ~60 MB/s a core (and zlib 6, gzip's own default, at ~21 MB/s for 7-10 % smaller blobs).
# An explicit --compression-level N is zlib's level N, gzip's meaning, for those who want gzip -6
# sizes. Without python-isal (a platform it has no wheel for) the default falls back to zlib 1.
DEFAULT_GZIP_LEVEL: int | None = None
ISAL_LEVEL = 3
ZLIB_FALLBACK_LEVEL = 1
DEFAULT_ZSTD_LEVEL = 3
_BLOCK = 1 << 20
_WINDOW = 32768
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, mtime 0, OS unknown: as Go writes it


class Writable(Protocol):
    def write(self, data: Any, /) -> Any: ...


class Sink(Protocol):
    def write(self, data: bytes | bytearray | memoryview, /) -> Any: ...
    def close(self) -> None: ...


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _isal() -> Any:
    try:
        from isal import isal_zlib
    except ImportError:
        return None
    return isal_zlib


def deflater(level: int | None) -> tuple[Any, int]:
    """(zlib-compatible module, level) for a --compression-level (None: the default)."""
    if level is None:
        isal_zlib = _isal()
        return (isal_zlib, ISAL_LEVEL) if isal_zlib is not None else (zlib, ZLIB_FALLBACK_LEVEL)
    return zlib, level


def _deflate(mod: Any, data: bytes, zdict: bytes | None, level: int, last: bool) -> bytes:
    if zdict:
        comp = mod.compressobj(level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, zdict)
    else:
        comp = mod.compressobj(level, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class ParallelGzip:
    """A gzip writer that deflates blocks on a thread pool; close() writes the trailer."""

    def __init__(self, out: Writable, level: int | None = DEFAULT_GZIP_LEVEL, threads: int | None = None,
                 block: int = _BLOCK) -> None:
        self._out = out
        self._mod, self._level = deflater(level)
        self._block = block
        self._threads = threads or default_threads()
        self._pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="gzip")
        self._pending: collections.deque[Future[bytes]] = collections.deque()
        self._buf = bytearray()
        self._prev_tail: bytes | None = None
        self._crc = 0
        self._size = 0
        out.write(_GZIP_HEADER)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._buf += data
        while len(self._buf) >= self._block:
            chunk = bytes(self._buf[: self._block])
            del self._buf[: self._block]
            self._submit(chunk, last=False)
        return len(data)

    def _submit(self, chunk: bytes, last: bool) -> None:
        self._pending.append(self._pool.submit(_deflate, self._mod, chunk, self._prev_tail, self._level, last))
        self._prev_tail = chunk[-_WINDOW:]
        while len(self._pending) > 2 * self._threads:
            self._out.write(self._pending.popleft().result())

    def close(self) -> None:
        try:
            self._submit(bytes(self._buf), last=True)
            self._buf.clear()
            while self._pending:
                self._out.write(self._pending.popleft().result())
            self._out.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF))
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


class _Plain:
    def __init__(self, out: Writable) -> None:
        self._out = out

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._out.write(data)
        return len(data)

    def close(self) -> None:
        pass


class _Zstd:
    def __init__(self, out: Writable, level: int, threads: int) -> None:
        try:
            import zstandard
        except ImportError:
            raise PybuildError("zstd compression needs the Python package 'zstandard' (pip install zstandard)") \
                from None
        # Always the multi-threaded mode, even for one thread: its output is the same for any number of
        # workers >= 1 (measured: 1, 2, 4, 8), while threads=0 (single-threaded mode) frames differently,
        # so a layer's digest would depend on the cores of the machine that built it.
        cctx = zstandard.ZstdCompressor(level=level, threads=max(1, threads))
        self._writer = cctx.stream_writer(out, closefd=False, write_return_read=True)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return self._writer.write(data)

    def close(self) -> None:
        self._writer.close()


def open_compressor(name: str, out: Writable, level: int | None = None, threads: int | None = None) -> Sink:
    threads = threads or default_threads()
    if name == GZIP:
        return ParallelGzip(out, level, threads)
    if name == ZSTD:
        return _Zstd(out, DEFAULT_ZSTD_LEVEL if level is None else level, threads)
    if name == NONE:
        return _Plain(out)
    raise PybuildError(f"compression: unknown algorithm {name!r} (gzip, zstd or none)")


class _Decompressor:
    """Incremental decompression of possibly multi-member streams (gzip members, bz2/xz concatenations).

    `factory()` returns a bz2/lzma-style decompressor (eof, unused_data, needs_input, decompress(data,
    max_length)); gzip uses the zlib adapter below. Trailing zero padding after the last member is accepted,
    as gzip(1) does."""

    def __init__(self, raw: BinaryIO, first: bytes, factory: Any) -> None:
        self._raw = raw
        self._factory = factory
        self._dec = factory()
        self._input = first
        self._out = bytearray()
        self._eof = False

    def _fill(self, want: int) -> None:
        while len(self._out) < want and not self._eof:
            if self._dec.eof:
                rest = self._dec.unused_data or self._raw.read(_BLOCK)
                while rest and not rest.strip(b"\x00"):
                    rest = self._raw.read(_BLOCK)
                if not rest:
                    self._eof = True
                    break
                self._dec = self._factory()
                self._input = rest
            if not self._input and self._dec.needs_input:
                self._input = self._raw.read(_BLOCK)
                if not self._input:
                    pending = self._dec.decompress(b"", max(want - len(self._out), 65536))
                    if not pending:
                        raise PybuildError("decompress: compressed stream is truncated")
                    self._out += pending
                    continue
            try:
                self._out += self._dec.decompress(self._input, max(want - len(self._out), 65536))
            except (zlib.error, OSError, EOFError, ValueError) as err:  # bz2: OSError; lzma: LZMAError(Exception)
                raise PybuildError(f"decompress: corrupt compressed stream: {err}") from None
            except Exception as err:
                if type(err).__name__ in ("LZMAError", "IsalError"):  # neither derives from OSError
                    raise PybuildError(f"decompress: corrupt compressed stream: {err}") from None
                raise
            self._input = b""

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            chunks = []
            while chunk := self.read(_BLOCK):
                chunks.append(chunk)
            return b"".join(chunks)
        self._fill(n)
        data = bytes(self._out[:n])
        del self._out[:n]
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass


class _ZlibGzip:
    """zlib's decompressobj with the bz2/lzma decompressor interface (needs_input, buffered tail)."""

    def __init__(self) -> None:
        mod = _isal() or zlib  # ISA-L inflates ~2x faster than zlib here, same results and errors
        self._d = mod.decompressobj(16 + zlib.MAX_WBITS)
        self._tail = b""

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    @property
    def needs_input(self) -> bool:
        return not self._tail and not self._d.eof

    def decompress(self, data: bytes, max_length: int) -> bytes:
        out = self._d.decompress(self._tail + data if self._tail else data, max_length)
        self._tail = self._d.unconsumed_tail
        return out


def open_decompressed(raw: BinaryIO) -> BinaryIO:
    """Wrap `raw` so that reads return the decompressed bytes; the format is sniffed, not trusted."""
    first = raw.read(6)
    if first[:2] == b"\x1f\x8b":
        return _Decompressor(raw, first, _ZlibGzip)  # type: ignore[return-value]
    if first[:4] == b"\x28\xb5\x2f\xfd":
        try:
            import zstandard
        except ImportError:
            raise PybuildError("zstd layer: needs the Python package 'zstandard'") from None
        reader = zstandard.ZstdDecompressor().stream_reader(_Prefixed(raw, first), read_across_frames=True,
                                                            closefd=False)
        return _ZstdReader(reader, zstandard.ZstdError)  # type: ignore[return-value]
    if first[:3] == b"BZh":
        import bz2
        return _Decompressor(raw, first, bz2.BZ2Decompressor)  # type: ignore[return-value]
    if first[:6] == b"\xfd7zXZ\x00":
        import lzma
        return _Decompressor(raw, first, lzma.LZMADecompressor)  # type: ignore[return-value]
    return _Prefixed(raw, first)  # type: ignore[return-value]


class _ZstdReader:
    """zstandard's reader, its ZstdError (not an OSError) reported as PybuildError like the others."""

    def __init__(self, reader: Any, error: type[Exception]) -> None:
        self._reader = reader
        self._error = error

    def read(self, n: int = -1) -> bytes:
        try:
            return self._reader.read(n)
        except self._error as err:
            raise PybuildError(f"decompress: corrupt compressed stream: {err}") from None

    def readable(self) -> bool:
        return True


class _Prefixed:
    """`raw` with bytes already read put back in front."""

    def __init__(self, raw: BinaryIO, first: bytes) -> None:
        self._raw = raw
        self._first = first

    def read(self, n: int = -1) -> bytes:
        if self._first:
            if n is None or n < 0:
                data, self._first = self._first + self._raw.read(), b""
                return data
            data, self._first = self._first[:n], self._first[n:]
            if len(data) < n:
                data += self._raw.read(n - len(data))
            return data
        return self._raw.read(n)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass
