"""Layer tars: a deterministic tar of a directory, with diffID, compressed digest and size in one pass.

The input is an overlay upper dir (or any plain dir). The tar is deterministic: entries sorted per
directory by byte name (a directory before its contents), no atime/ctime, numeric uid/gid with empty
uname/gname, mtimes as integers (clamped to SOURCE_DATE_EPOCH when given), hard links kept as link
entries to the first path seen, xattrs (file capabilities included) as PAX `SCHILY.xattr.*` records,
sockets skipped (tar cannot hold them, docker skips them too). Headers are written by this module (ustar,
PAX for long names/big numbers/xattrs, Go-style `PaxHeaders.0/` names, two zero blocks at the end) rather
than by `tarfile`, which is 2x slower over a pipe and writes float mtimes as PAX records.

Overlay form -> OCI form (image-spec layer.md "Whiteouts"):
  char device 0:0 NAME                          -> empty regular file `.wh.NAME` (mode 0, owner/mtime kept)
  dir with trusted.overlay.opaque=y (or user.)  -> the dir, then empty file `DIR/.wh..wh..opq`
  other trusted.overlay.* / user.overlay.* xattrs are overlay bookkeeping and never reach the tar;
  `overlay.redirect` / `overlay.metacopy` mean the upper dir is not a full diff: refused (mount the
  overlay with redirect_dir=off,metacopy=off).
  any other entry named `.wh.*` (a file a RUN step or COPY made) is refused: every unpacker would read
  it as a whiteout (deleting what it names, or failing on `.wh.`/`.wh..`), not as the file it was.

Public API
  write_layer(src, out, compression="gzip", level=None, exclude=(), source_date_epoch=None,
              threads=None) -> LayerDigests(diff_id, digest, size, uncompressed_size, media_type, entries)
      `out` gets the compressed stream; `exclude` lists paths relative to src ("etc/hosts", "proc") that
      are left out with everything under them.
  commit_layer(store, src, **same options) -> (Descriptor, LayerDigests): writes the blob into the store.
  recompress(tar_stream, out, compression="gzip") -> LayerDigests: an existing tar (any compression) as a
      layer blob (entries = -1: not counted).
  is_empty_diff(src, exclude=()) -> bool: nothing to commit (docker adds no layer then).
  unpack_blob / unpack_tar: re-exported from pybuild.unpack.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pybuild.compress import GZIP, MEDIA_TYPES, open_compressor
from pybuild.errors import PybuildError
from pybuild.image import Descriptor
from pybuild.unpack import unpack_blob, unpack_tar

if TYPE_CHECKING:
    from pybuild.store import Store

__all__ = ["LayerDigests", "write_layer", "commit_layer", "recompress", "is_empty_diff", "unpack_blob",
           "unpack_tar", "LayerError"]

_BLOCK = 512
_READ = 1 << 20
_OPAQUE_KEYS = ("trusted.overlay.opaque", "user.overlay.opaque")
_REFUSED_KEYS = ("overlay.redirect", "overlay.metacopy")


class LayerError(PybuildError):
    """A tree that cannot be turned into a faithful layer (names the path)."""


@dataclass(frozen=True, slots=True)
class LayerDigests:
    diff_id: str            # sha256 of the uncompressed tar
    digest: str             # sha256 of the compressed blob
    size: int               # compressed size
    uncompressed_size: int
    media_type: str
    entries: int            # tar entries written (0 = empty diff)


class _HashingOut:
    """Counts and hashes what the compressor emits, then hands it on (hash=None: count only, for a
    destination that hashes by itself, such as the store's BlobWriter)."""

    def __init__(self, out: Any, hash_output: bool = True) -> None:
        self._out = out
        self.hash = hashlib.sha256() if hash_output else None
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self.hash is not None:
            self.hash.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)


def _octal(value: int, width: int) -> bytes | None:
    text = b"%o" % value
    if len(text) > width - 1:
        return None
    return text.rjust(width - 1, b"0") + b"\0"


def _pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length).encode()) + len(body) != length:
        length = len(str(length).encode()) + len(body)
    return str(length).encode() + body


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    if len(name) <= 100:
        return b"", name
    for i in range(len(name) - 1, 0, -1):
        if name[i:i + 1] == b"/" and i <= 155 and len(name) - i - 1 <= 100 and len(name) - i - 1 > 0:
            return name[:i], name[i + 1:]
    return None


def _raw_header(name: bytes, prefix: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
                typeflag: bytes, linkname: bytes, major: int, minor: int) -> bytes:
    def num(value: int, width: int) -> bytes:
        return _octal(value, width) or _octal(0, width)  # type: ignore[return-value]

    parts = [name.ljust(100, b"\0"), num(mode, 8), num(uid, 8), num(gid, 8), num(size, 12),
             num(mtime, 12), b" " * 8, typeflag, linkname.ljust(100, b"\0"), b"ustar\x0000",
             b"\0" * 32, b"\0" * 32, num(major, 8), num(minor, 8), prefix.ljust(155, b"\0"), b"\0" * 12]
    block = bytearray(b"".join(parts))
    assert len(block) == 512
    checksum = sum(block)
    block[148:156] = b"%06o\0 " % checksum
    return bytes(block)


def tar_header(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int, typeflag: bytes,
               linkname: bytes = b"", major: int = 0, minor: int = 0,
               xattrs: dict[bytes, bytes] | None = None) -> bytes:
    """One entry's header blocks (a PAX 'x' header first when ustar cannot hold the entry)."""
    pax: list[tuple[bytes, bytes]] = []
    split = _split_ustar(name)
    if split is None:
        pax.append((b"path", name))
        split = (b"", name[-100:].lstrip(b"/") or b"x")
    if len(linkname) > 100:
        pax.append((b"linkpath", linkname))
        linkname = linkname[:100]
    for key, value, width in ((b"uid", uid, 8), (b"gid", gid, 8), (b"size", size, 12), (b"mtime", mtime, 12)):
        if _octal(value, width) is None:
            pax.append((key, str(value).encode()))
    uid = uid if _octal(uid, 8) else 0
    gid = gid if _octal(gid, 8) else 0
    mtime = mtime if _octal(mtime, 12) else 0
    hsize = size if _octal(size, 12) else 0
    for key in sorted(xattrs or ()):
        pax.append((b"SCHILY.xattr." + key, xattrs[key]))  # type: ignore[index]
    out = b""
    if pax:
        data = b"".join(_pax_record(k, v) for k, v in pax)
        base = name.rstrip(b"/").rsplit(b"/", 1)
        paxname = (base[0] + b"/PaxHeaders.0/" + base[1] if len(base) == 2 else b"PaxHeaders.0/" + base[0])
        out = _raw_header(paxname[:100], b"", 0o644, 0, 0, len(data), 0, b"x", b"", 0, 0)
        out += data + b"\0" * (-len(data) % _BLOCK)
    return out + _raw_header(split[1], split[0], mode, uid, gid, hsize, mtime, typeflag, linkname, major, minor)


class _TarSink:
    """The uncompressed tar stream: hashes it (diffID) and feeds the compressor."""

    def __init__(self, compressor: Any) -> None:
        self._comp = compressor
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.hash.update(data)
        self.size += len(data)
        self._comp.write(data)


class _Walker:
    def __init__(self, src: str, sink: _TarSink, exclude: Iterable[str], epoch: int | None) -> None:
        self.src = src
        self.sink = sink
        self.exclude = {p.strip("/") for p in exclude if p.strip("/")}
        self.epoch = epoch
        self.links: dict[tuple[int, int], bytes] = {}
        self.entries = 0
        self.buf = bytearray(_READ)

    def _mtime(self, st: os.stat_result) -> int:
        mtime = int(st.st_mtime)
        return min(mtime, self.epoch) if self.epoch is not None else mtime

    def _xattrs(self, path: str) -> tuple[dict[bytes, bytes], bool]:
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError as err:
            if err.errno in (95, 61):  # EOPNOTSUPP, ENODATA: filesystem without xattrs
                return {}, False
            raise
        out: dict[bytes, bytes] = {}
        opaque = False
        for key in sorted(names):
            if ".overlay." in key and key.split(".", 1)[0] in ("trusted", "user"):
                if key in _OPAQUE_KEYS:
                    opaque = os.getxattr(path, key, follow_symlinks=False) == b"y"
                elif key.endswith(_REFUSED_KEYS):
                    raise LayerError(f"layer: {path}: has {key}: the overlay must be mounted with "
                                     "redirect_dir=off,metacopy=off to give a full diff")
                continue
            out[key.encode()] = os.getxattr(path, key, follow_symlinks=False)
        return out, opaque

    def walk(self, rel: str) -> None:
        path = os.path.join(self.src, rel) if rel else self.src
        with os.scandir(path) as it:
            names = sorted((os.fsencode(e.name), e.name) for e in it)
        for _, name in names:
            child = f"{rel}/{name}" if rel else name
            if child in self.exclude:
                continue
            try:
                self.entry(child)
            except OSError as err:
                raise LayerError(f"layer: {os.path.join(self.src, child)}: {err.strerror or err}") from None

    def entry(self, rel: str) -> None:
        path = os.path.join(self.src, rel)
        st = os.lstat(path)
        mode = st.st_mode
        name = os.fsencode(rel)
        mtime = self._mtime(st)
        perm = stat.S_IMODE(mode)
        if stat.S_ISCHR(mode) and st.st_rdev == 0:  # overlay whiteout
            head, _, base = name.rpartition(b"/")
            wh = (head + b"/" if head else b"") + b".wh." + base
            self._emit(tar_header(wh, 0, st.st_uid, st.st_gid, 0, mtime, b"0"))
            return
        if stat.S_ISSOCK(mode):
            return
        if os.path.basename(rel).startswith(".wh."):
            raise LayerError(f"layer: /{rel}: names beginning with .wh. are OCI whiteout markers; "
                             "a layer cannot hold such a file")
        xattrs, opaque = self._xattrs(path)
        if stat.S_ISDIR(mode):
            self._emit(tar_header(name + b"/", perm, st.st_uid, st.st_gid, 0, mtime, b"5", xattrs=xattrs))
            if opaque:
                self._emit(tar_header(name + b"/.wh..wh..opq", perm & 0o777, st.st_uid, st.st_gid, 0, mtime,
                                      b"0"))
            self.walk(rel)
            return
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = self.links.get(key)
            if first is not None:
                self._emit(tar_header(name, perm, st.st_uid, st.st_gid, 0, mtime, b"1", first, xattrs=xattrs))
                return
            self.links[key] = name
        if stat.S_ISREG(mode):
            self._emit(tar_header(name, perm, st.st_uid, st.st_gid, st.st_size, mtime, b"0", xattrs=xattrs))
            self._copy(path, st.st_size)
        elif stat.S_ISLNK(mode):
            target = os.fsencode(os.readlink(path))
            self._emit(tar_header(name, perm, st.st_uid, st.st_gid, 0, mtime, b"2", target, xattrs=xattrs))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            flag = b"3" if stat.S_ISCHR(mode) else b"4"
            self._emit(tar_header(name, perm, st.st_uid, st.st_gid, 0, mtime, flag, b"",
                                  os.major(st.st_rdev), os.minor(st.st_rdev), xattrs=xattrs))
        elif stat.S_ISFIFO(mode):
            self._emit(tar_header(name, perm, st.st_uid, st.st_gid, 0, mtime, b"6", xattrs=xattrs))
        else:
            raise LayerError(f"layer: {path}: unsupported file type {stat.S_IFMT(mode):o}")

    def _emit(self, data: bytes) -> None:
        self.entries += 1
        self.sink.write(data)

    def _copy(self, path: str, size: int) -> None:
        view = memoryview(self.buf)
        left = size
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            while left > 0:
                n = os.readv(fd, [view[: min(left, _READ)]])
                if n == 0:
                    raise LayerError(f"layer: {path}: file shrank while being archived")
                self.sink.write(view[:n])
                left -= n
        finally:
            os.close(fd)
        if size % _BLOCK:
            self.sink.write(b"\0" * (_BLOCK - size % _BLOCK))


def write_layer(src: str, out: Any, compression: str = GZIP, level: int | None = None,
                exclude: Iterable[str] = (), source_date_epoch: int | None = None,
                threads: int | None = None, hash_output: bool = True) -> LayerDigests:
    """Archive `src` into `out` (compressed) and return the digests; see the module docstring.
    With hash_output=False the blob digest is left empty ("") for a caller whose `out` hashes."""
    hashed = _HashingOut(out, hash_output)
    comp = open_compressor(compression, hashed, level, threads)
    sink = _TarSink(comp)
    walker = _Walker(src, sink, exclude, source_date_epoch)
    try:
        walker.walk("")
        sink.write(b"\0" * (2 * _BLOCK))
    finally:
        comp.close()
    diff_id = "sha256:" + sink.hash.hexdigest()
    if compression == "none":
        digest = diff_id
    else:
        digest = "sha256:" + hashed.hash.hexdigest() if hashed.hash is not None else ""
    return LayerDigests(diff_id=diff_id, digest=digest, size=hashed.size, uncompressed_size=sink.size,
                        media_type=MEDIA_TYPES[compression], entries=walker.entries)


def commit_layer(store: Store, src: str, compression: str = GZIP, level: int | None = None,
                 exclude: Iterable[str] = (), source_date_epoch: int | None = None,
                 threads: int | None = None) -> tuple[Descriptor, LayerDigests]:
    """write_layer straight into a store blob; returns the manifest descriptor and the digests."""
    import dataclasses
    with store.blob_writer() as writer:  # it hashes the blob: write_layer need not do it twice
        result = write_layer(src, writer, compression, level, exclude, source_date_epoch, threads,
                             hash_output=False)
        digest, size = writer.commit(result.diff_id if compression == "none" else None)
    result = dataclasses.replace(result, digest=digest, size=size)
    return Descriptor(result.media_type, result.digest, result.size), result


def is_empty_diff(src: str, exclude: Iterable[str] = ()) -> bool:
    """True when `src` holds nothing but the excluded paths (and the dirs leading to them, unchanged)."""
    skip = {p.strip("/") for p in exclude if p.strip("/")}
    parents = {os.path.dirname(p) for p in skip}
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        rel = "" if rel == "." else rel
        for name in dirnames + filenames:
            child = f"{rel}/{name}" if rel else name
            if child in skip:
                continue
            if name in dirnames and _is_ancestor(child, parents):
                continue
            return False
        dirnames[:] = [d for d in dirnames if (f"{rel}/{d}" if rel else d) not in skip]
    return True


def _is_ancestor(path: str, parents: set[str]) -> bool:
    return any(p == path or p.startswith(path + "/") for p in parents)


def recompress(stream: Any, out: Any, compression: str = GZIP, level: int | None = None,
               threads: int | None = None) -> LayerDigests:
    """A tar stream (plain or gzip/zstd/bzip2/xz, sniffed) -> `out` in `compression`, with its digests.

    Used by `pybuild import FILE.tar` and for docker-archive layers. The first header must be a
    ustar/GNU tar header: anything else is refused rather than stored as a layer nobody can unpack."""
    from pybuild.compress import open_decompressed
    plain = open_decompressed(stream)
    hashed = _HashingOut(out)
    comp = open_compressor(compression, hashed, level, threads)
    diff = hashlib.sha256()
    size = 0
    try:
        while chunk := plain.read(1 << 20):
            if size == 0 and chunk[257:262] != b"ustar":
                raise LayerError("layer: input is not a tar archive (no ustar header)")
            diff.update(chunk)
            size += len(chunk)
            comp.write(chunk)
    finally:
        comp.close()
    if size == 0:
        raise LayerError("layer: input is empty, not a tar archive")
    diff_id = "sha256:" + diff.hexdigest()
    digest = diff_id if compression == "none" else "sha256:" + hashed.hash.hexdigest()
    return LayerDigests(diff_id=diff_id, digest=digest, size=hashed.size, uncompressed_size=size,
                        media_type=MEDIA_TYPES[compression], entries=-1)
