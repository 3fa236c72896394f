"""Safe unpacking of layer tars into a directory.

Security invariant: nothing a tar says can create, change or remove anything outside `dest`. Entry
names with `..` are refused; absolute names are taken relative to dest; every parent directory is opened
with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so symlinks (from this tar or earlier layers) resolve
inside dest as they would inside the container; the final component is created with *at() calls on that
fd and never followed (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW). Hard link targets are resolved the same way.

Two modes (image-spec layer.md "Whiteouts"):
  "overlay": the layer is unpacked alone, to serve as an overlay lowerdir. `.wh.NAME` becomes a char
             device 0:0 NAME, `.wh..wh..opq` becomes the xattr trusted.overlay.opaque=y (user.overlay.opaque
             with `xattr_ns="user"`, for userxattr mounts) on its directory.
  "apply":   the layer is applied over what dest already holds (flattening for bundles, --output
             type=local): `.wh.NAME` removes NAME, `.wh..wh..opq` empties its directory of everything that
             earlier layers put there. Whiteouts never hide entries of their own layer.
Ownership is applied when running as root (`keep_owner` defaults to euid == 0); modes, mtimes, xattrs,
devices, fifos and hard links always. Overlay bookkeeping xattrs in a tar are refused (a layer must not set
trusted.overlay.redirect on the host).

Public API
  unpack_tar(stream, dest, mode="overlay", keep_owner=None, xattr_ns="trusted") -> (diff_id, size)
      `stream` is the uncompressed tar; the return value is its sha256 and length (read to EOF).
  unpack_blob(raw, media_type, dest, mode="overlay", ...) -> (diff_id, size): decompresses first (sniffed).
  clean_name(name) -> tuple of components (raises UnpackError for escaping names)
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tarfile
from typing import Any, BinaryIO

from pybuild.errors import PybuildError
from pyrunc import syscalls

_READ = 1 << 20
_RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS
_O_PATH = getattr(os, "O_PATH", 0o10000000)


class UnpackError(PybuildError):
    """A layer tar that cannot be unpacked safely or faithfully (names the entry)."""


class _HashingReader:
    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(_READ):
            pass


def clean_name(name: str) -> tuple[str, ...]:
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnpackError(f"unpack: {name!r}: path escapes the root")
    return parts


class _Unpacker:
    def __init__(self, dest: str, mode: str, keep_owner: bool, xattr_ns: str) -> None:
        if mode not in ("overlay", "apply"):
            raise UnpackError(f"unpack: unknown mode {mode!r}")
        self.mode = mode
        self.keep_owner = keep_owner
        self.opaque_key = f"{xattr_ns}.overlay.opaque"
        self.root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.root_path = os.readlink(f"/proc/self/fd/{self.root}")
        self.fds: dict[tuple[str, ...], int] = {}
        self.retired: list[int] = []  # fds dropped from the cache but maybe still in use by this entry
        self.created: set[tuple[str, ...]] = set()
        self.dir_times: list[tuple[tuple[str, ...], int]] = []

    def close(self) -> None:
        self._drop_fds()
        self._close_retired()
        os.close(self.root)

    def _drop_fds(self) -> None:
        self.retired.extend(self.fds.values())
        self.fds.clear()

    def _close_retired(self) -> None:
        for fd in self.retired:
            os.close(fd)
        self.retired.clear()

    def dirfd(self, parts: tuple[str, ...], create: bool = True, depth: int = 0) -> int:
        """An O_PATH fd for the directory `parts` inside dest, creating missing dirs (0755, as docker);
        a dangling symlink on the way is followed inside dest and its target created, as docker's
        FollowSymlinkInScope + MkdirAll would."""
        if not parts:
            return self.root
        fd = self.fds.get(parts)
        if fd is not None:
            return fd
        try:
            fd = syscalls.openat2(self.root, "/".join(parts), _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
                                  resolve=_RESOLVE)
        except FileNotFoundError:
            if not create:
                raise
            if depth > 40:
                raise UnpackError(f"unpack: {'/'.join(parts)}: too many levels of symbolic links") from None
            parent = self.dirfd(parts[:-1], True, depth + 1)
            try:
                os.mkdir(parts[-1], 0o755, dir_fd=parent)
            except FileExistsError:
                if not stat.S_ISLNK(os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode):
                    raise
                return self.dirfd(self._link_target(parent, parts[-1]), True, depth + 1)
            return self.dirfd(parts, False, depth + 1)
        except NotADirectoryError:
            raise UnpackError(f"unpack: {'/'.join(parts)}: a parent is not a directory") from None
        if len(self.fds) > 512:
            self._drop_fds()
        self.fds[parts] = fd
        return fd

    def _link_target(self, parent: int, name: str) -> tuple[str, ...]:
        """Where the symlink `name` in directory fd `parent` points, as components inside dest
        (`..` stops at dest's root, as RESOLVE_IN_ROOT does)."""
        target = os.readlink(name, dir_fd=parent)
        if target.startswith("/"):
            base: list[str] = []
        else:
            here = os.readlink(f"/proc/self/fd/{parent}")
            rel = os.path.relpath(here, self.root_path)
            base = [] if rel == "." else rel.split("/")
        for part in target.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if base:
                    base.pop()
            else:
                base.append(part)
        return tuple(base)

    def _remove(self, pfd: int, name: str) -> None:
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        self._drop_fds()  # cached fds below this name would go stale
        if stat.S_ISDIR(st.st_mode):
            self._empty_dir(os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                    dir_fd=pfd), keep=None)
            os.rmdir(name, dir_fd=pfd)
        else:
            os.unlink(name, dir_fd=pfd)

    def _empty_dir(self, fd: int, keep: tuple[str, ...] | None) -> None:
        """Remove the children of the directory open as `fd` (closed here), sparing `keep + (child,)`
        entries created by this layer."""
        try:
            for child in os.listdir(fd):
                if keep is not None and keep + (child,) in self.created:
                    continue
                self._remove(fd, child)
        finally:
            os.close(fd)

    def whiteout(self, parts: tuple[str, ...], m: tarfile.TarInfo) -> None:
        parent, base = parts[:-1], parts[-1]
        pfd = self.dirfd(parent)
        if base == ".wh..wh..opq":
            if self.mode == "overlay":
                os.setxattr(f"/proc/self/fd/{pfd}", self.opaque_key, b"y")
            else:
                self._empty_dir(os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd), parent)
            return
        target = base[4:]
        if not target or parent + (target,) in self.created:
            return
        if self.mode == "overlay":
            self._remove(pfd, target)
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
            self._meta_path(pfd, target, m, {}, symlink=False)
        else:
            self._remove(pfd, target)

    def entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        self._close_retired()
        parts = clean_name(m.name)
        if parts and parts[-1].startswith(".wh."):
            self.whiteout(parts, m)
            return
        xattrs = _xattrs(m)
        if not parts:  # the root entry ("./"): its metadata goes on dest itself
            if m.isdir():
                self._meta_fd(self.root, m, xattrs)
                self.dir_times.append(((), int(m.mtime)))
            return
        pfd = self.dirfd(parts[:-1])
        name = parts[-1]
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and not (m.isdir() and stat.S_ISDIR(st.st_mode)):
            self._remove(pfd, name)
        self.created.add(parts)
        if m.isdir():
            if st is None or not stat.S_ISDIR(st.st_mode):
                os.mkdir(name, 0o700, dir_fd=pfd)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                self._meta_fd(fd, m, xattrs)
            finally:
                os.close(fd)
            self.dir_times.append((parts, int(m.mtime)))
        elif m.isreg():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=pfd)
            try:
                src = tf.extractfile(m)
                assert src is not None
                while chunk := src.read(_READ):
                    os.write(fd, chunk)
                self._meta_fd(fd, m, xattrs)
                os.utime(fd, ns=(int(m.mtime) * 10**9, int(m.mtime) * 10**9))
            finally:
                os.close(fd)
        elif m.islnk():
            tparts = clean_name(m.linkname)
            if not tparts:
                raise UnpackError(f"unpack: {m.name}: hard link to the root")
            try:
                tfd = self.dirfd(tparts[:-1], create=False)
                os.link(tparts[-1], name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            except FileNotFoundError:
                raise UnpackError(f"unpack: {m.name}: hard link target {m.linkname} not found") from None
        else:
            if m.issym():
                os.symlink(m.linkname, name, dir_fd=pfd)
            elif m.ischr() or m.isblk() or m.isfifo():
                kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
                try:
                    os.mknod(name, kind | 0o600, os.makedev(m.devmajor, m.devminor), dir_fd=pfd)
                except PermissionError:
                    raise UnpackError(f"unpack: {m.name}: creating a device node needs root") from None
            else:
                raise UnpackError(f"unpack: {m.name}: unsupported tar entry type {m.type!r}")
            self._meta_path(pfd, name, m, xattrs, symlink=m.issym())

    def _meta_fd(self, fd: int, m: tarfile.TarInfo, xattrs: dict[str, bytes]) -> None:
        if self.keep_owner:
            os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode & 0o7777)  # after chown, which clears set-id bits
        for key, value in xattrs.items():
            os.setxattr(fd, key, value)

    def _meta_path(self, pfd: int, name: str, m: tarfile.TarInfo, xattrs: dict[str, bytes], symlink: bool) -> None:
        if self.keep_owner:
            os.chown(name, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        if not symlink:
            os.chmod(name, m.mode & 0o7777, dir_fd=pfd)  # not a symlink: following cannot happen
        for key, value in xattrs.items():
            os.setxattr(f"/proc/self/fd/{pfd}/{name}", key, value, follow_symlinks=False)
        ns = int(m.mtime) * 10**9
        os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)

    def finish(self) -> None:
        for parts, mtime in reversed(self.dir_times):
            try:
                fd = self.dirfd(parts, create=False) if parts else self.root
            except FileNotFoundError:
                continue  # removed by a later whiteout
            os.utime(f"/proc/self/fd/{fd}", ns=(mtime * 10**9, mtime * 10**9))


def _xattrs(m: tarfile.TarInfo) -> dict[str, bytes]:
    out = {}
    for key, value in m.pax_headers.items():
        if not key.startswith("SCHILY.xattr."):
            continue
        name = key[len("SCHILY.xattr."):]
        if ".overlay." in name and name.split(".", 1)[0] in ("trusted", "user"):
            raise UnpackError(f"unpack: {m.name}: refusing overlay xattr {name} from a layer")
        out[name] = value.encode("utf-8", "surrogateescape")
    return out


def unpack_tar(stream: BinaryIO | Any, dest: str, mode: str = "overlay", keep_owner: bool | None = None,
               xattr_ns: str = "trusted") -> tuple[str, int]:
    """Unpack an uncompressed tar stream into `dest`; returns (sha256 of the tar, its length)."""
    reader = _HashingReader(stream)
    unpacker = _Unpacker(dest, mode, os.geteuid() == 0 if keep_owner is None else keep_owner, xattr_ns)
    try:
        with tarfile.open(fileobj=reader, mode="r|", encoding="utf-8", errors="surrogateescape",
                          bufsize=_READ) as tf:
            for member in tf:
                try:
                    unpacker.entry(tf, member)
                except OSError as err:
                    if err.errno == errno.ELOOP:
                        raise UnpackError(f"unpack: {member.name}: too many symlinks") from None
                    raise UnpackError(f"unpack: {member.name}: {err.strerror}") from None
        unpacker.finish()
    except tarfile.TarError as err:
        raise UnpackError(f"unpack: invalid tar: {err}") from None
    finally:
        unpacker.close()
    reader.drain()
    return "sha256:" + reader.hash.hexdigest(), reader.size


def unpack_blob(raw: BinaryIO | Any, media_type: str, dest: str, mode: str = "overlay",
                keep_owner: bool | None = None, xattr_ns: str = "trusted") -> tuple[str, int]:
    """Decompress (gzip/zstd/bzip2/xz sniffed; `media_type` is informative) and unpack; returns (diffID, size)."""
    from pybuild.compress import open_decompressed
    result = unpack_tar(open_decompressed(raw), dest, mode, keep_owner, xattr_ns)
    drain = getattr(raw, "drain", None)
    if drain is not None:
        drain()  # a verifying reader checks its digest at EOF
    return result
