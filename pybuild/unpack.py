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

Whiteouts (issue 11): NAME must be one plain name (`.wh.`, `.wh..`, `.wh...` are refused, as containerd
refuses them with "invalid whiteout name"; a layer entry cannot contain `/` in a component). Every removal
is made relative to the fd of the directory it applies to, never follows a symlink (the directory is
reopened with O_NOFOLLOW / RESOLVE_NO_SYMLINKS) and never crosses a mount (RESOLVE_NO_XDEV, st_dev): a
mount point met on the way is an error. With `owned` (a set shared by the layers of one flatten into a
directory that was not empty), removals only take what this flatten created (by inode), so flattening
into a user's directory never deletes the user's own files.
  "plain":   an archive extracted by `ADD` under `prefix` (an in-image path) of a rootfs: entries are
             files, never whiteouts, so a `.wh.*` name is refused (in the layer it would become one);
             `chown` (--chown) replaces every entry's owner.
Regular files keep their holes: GNU and PAX sparse entries, and any block of zeros, are seeked over
(pybuild.sparse), so a 2 GB sparse file stays a few blocks on disk. Ownership is applied when running as root (`keep_owner` defaults to euid == 0); modes, mtimes, xattrs,
devices, fifos and hard links always. Overlay bookkeeping xattrs in a tar are refused (a layer must not set
trusted.overlay.redirect on the host).

Public API
  unpack_tar(stream, dest, mode="overlay", keep_owner=None, xattr_ns=None, owned=None) -> (diff_id, size)
      `stream` is the uncompressed tar; the return value is its sha256 and length (read to EOF).
  unpack_blob(raw, media_type, dest, mode="overlay", ...) -> (diff_id, size): decompresses first (sniffed).
  clean_name(name) -> tuple of components (raises UnpackError for escaping names)
  whiteout_target(base) -> None | "" (opaque) | the plain name hidden (UnpackError for invalid ones)
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tarfile
from typing import Any, BinaryIO

from pybuild import fault_point
from pybuild.errors import PybuildError
from pyrunc.fsutil import SparseWriter
from pyrunc import syscalls

_READ = 1 << 20
_RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS
_O_PATH = getattr(os, "O_PATH", 0o10000000)


class UnpackError(PybuildError):
    """A layer tar that cannot be unpacked safely or faithfully (names the entry)."""


class _HashingReader:
    """The tar stream, hashed as it goes (the diffID), read ahead in _READ chunks, and seekable
    *forward only*, so tarfile can run in its random-access mode ("r:") on a stream: its
    streaming mode ("r|") copies every byte through a growing buffer, which made it the largest
    cost of an unpack (measured: 1.2 s of 2.5 s for 173 MB). A backward seek is an error, never
    a silent re-read; members are read once, in order."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.hash = hashlib.sha256()
        self.size = 0          # bytes taken from `raw` (and hashed)
        self._buf = b""
        self._at = 0           # read position inside _buf
        self._pos = 0          # stream position of the caller

    def _more(self) -> bool:
        data = self._raw.read(_READ)
        if not data:
            return False
        self.hash.update(data)
        self.size += len(data)
        self._buf = self._buf[self._at:] + data if self._at < len(self._buf) else data
        self._at = 0
        return True

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            chunks = [self._buf[self._at:]]
            self._at = len(self._buf)
            while self._more():
                chunks.append(self._buf)
                self._at = len(self._buf)
            out = b"".join(chunks)
        else:
            while len(self._buf) - self._at < n and self._more():
                pass
            out = self._buf[self._at:self._at + n]
            self._at += len(out)
        self._pos += len(out)
        return out

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self._pos
        elif whence != 0:
            raise OSError(errno.ESPIPE, "tar stream: only absolute and relative forward seeks")
        if offset < self._pos:
            raise OSError(errno.ESPIPE, "tar stream: backward seek")
        while offset > self._pos:
            if not self.read(min(offset - self._pos, _READ)):
                break  # past the end: tarfile sees EOF on its next read
        return self._pos

    def drain(self) -> None:
        self._at = len(self._buf)
        while self._more():
            self._at = len(self._buf)


WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
_NO_ESCAPE = syscalls.RESOLVE_NO_XDEV | syscalls.RESOLVE_NO_SYMLINKS | syscalls.RESOLVE_NO_MAGICLINKS


def clean_name(name: str) -> tuple[str, ...]:
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise UnpackError(f"unpack: {name!r}: path escapes the root")
    return parts


def whiteout_target(base: str, entry: str = "") -> str | None:
    """What a tar entry's last component hides: None for an ordinary name, "" for the opaque marker
    (`.wh..wh..opq`: the directory's earlier content), else the one plain name it removes. A name
    that would point at the directory itself or its parent (`.wh.`, `.wh..`, `.wh...`) is refused:
    joined to its directory it would empty that directory's parent (issue 11)."""
    if not base.startswith(WHITEOUT_PREFIX):
        return None
    if base == OPAQUE:
        return ""
    target = base[len(WHITEOUT_PREFIX):]
    if target in ("", ".", "..") or "/" in target or "\0" in target:
        raise UnpackError(f"unpack: {entry or base}: invalid whiteout name {base!r}")
    return target


class _Unpacker:
    def __init__(self, dest: str, mode: str, keep_owner: bool, xattr_ns: str,
                 owned: set[tuple[int, int]] | None = None, prefix: str = "",
                 chown: tuple[int, int] | None = None) -> None:
        if mode not in ("overlay", "apply", "plain"):
            raise UnpackError(f"unpack: unknown mode {mode!r}")
        self.mode = mode
        self.prefix = clean_name(prefix)
        self.chown = chown
        self.keep_owner = keep_owner
        self.owned = owned  # None: everything below dest is this unpack's (a fresh directory)
        self.opaque_key = f"{xattr_ns}.overlay.opaque"
        self.root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.root_dev = os.fstat(self.root).st_dev
        self.root_path = os.readlink(f"/proc/self/fd/{self.root}")
        self.fds: dict[tuple[str, ...], int] = {}
        self.retired: list[int] = []  # fds dropped from the cache but maybe still in use by this entry
        self.created: set[tuple[str, ...]] = set()
        self.dir_times: list[tuple[tuple[str, ...], int, int, int]] = []  # parts, mtime, dev, ino

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
                self._own(parent, parts[-1])
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

    def _own(self, pfd: int, name: str) -> None:
        """Remember an inode this unpack created (only when unpacking over someone else's tree)."""
        if self.owned is not None:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            self.owned.add((st.st_dev, st.st_ino))

    def _mine(self, st: os.stat_result) -> bool:
        return self.owned is None or (st.st_dev, st.st_ino) in self.owned

    def _remove(self, pfd: int, name: str, replacing: bool = False) -> None:
        """Remove `name` of the directory fd `pfd`: never through a symlink, never across a mount,
        only what this unpack created (see `owned`). `replacing`: a layer entry takes this path, so
        a non-directory is replaced even if it was not ours (it is overwritten, as by any copy)."""
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if st.st_dev != self.root_dev:
            raise UnpackError(f"unpack: {name}: refusing to remove across a mount point")
        self._drop_fds()  # cached fds below this name would go stale
        if not stat.S_ISDIR(st.st_mode):
            if replacing or self._mine(st):
                os.unlink(name, dir_fd=pfd)
            return
        try:
            fd = syscalls.openat2(pfd, name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                  resolve=_NO_ESCAPE)
        except OSError as err:
            if err.errno == errno.EXDEV:
                raise UnpackError(f"unpack: {name}: refusing to remove a mount point") from None
            raise
        self._empty_dir(fd, keep=None)
        if self._mine(st):
            os.rmdir(name, dir_fd=pfd)
        elif replacing:
            try:
                os.rmdir(name, dir_fd=pfd)
            except OSError as err:
                if err.errno != errno.ENOTEMPTY:
                    raise
                raise UnpackError(f"unpack: {name}: cannot replace a directory holding files this unpack "
                                  "did not write") from None

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

    def _whiteout_parent(self, parts: tuple[str, ...]) -> int | None:
        """A fresh O_PATH fd of the directory a whiteout applies to, resolved inside dest without
        crossing a mount; None if it does not exist (nothing to hide in apply mode)."""
        if not parts:
            return os.dup(self.root)
        try:
            return syscalls.openat2(self.root, "/".join(parts), _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
                                    resolve=_RESOLVE | syscalls.RESOLVE_NO_XDEV)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as err:
            if err.errno == errno.EXDEV:
                raise UnpackError(f"unpack: {'/'.join(parts)}: a whiteout below a mount point") from None
            raise

    def whiteout(self, parts: tuple[str, ...], target: str, m: tarfile.TarInfo) -> None:
        parent = parts[:-1]
        if self.mode == "overlay":
            pfd = self.dirfd(parent)
            if not target:
                os.setxattr(f"/proc/self/fd/{pfd}", self.opaque_key, b"y")
                return
            if parent + (target,) in self.created:
                return
            self._remove(pfd, target)
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
            self._meta_path(pfd, target, m, {}, symlink=False)
            return
        wfd = self._whiteout_parent(parent)
        if wfd is None:
            return
        try:
            if not target:
                dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=wfd)
                self._empty_dir(dfd, parent)
            elif parent + (target,) not in self.created:
                self._remove(wfd, target)
        finally:
            os.close(wfd)

    def entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        self._close_retired()
        rel = clean_name(m.name)
        if self.mode == "plain":
            if rel and rel[-1].startswith(WHITEOUT_PREFIX):
                raise UnpackError(f"unpack: {m.name}: names beginning with .wh. are reserved for OCI "
                                  "whiteouts; a layer cannot hold this file")
            if not rel:
                return  # the archive's "./": dest keeps its own metadata
        parts = self.prefix + rel
        target = whiteout_target(parts[-1], m.name) if rel else None
        if target is not None:
            self.whiteout(parts, target, m)
            return
        xattrs = _xattrs(m)
        if not parts:  # the root entry ("./"): its metadata goes on dest itself
            if m.isdir():
                self._meta_fd(self.root, m, xattrs)
                root_st = os.fstat(self.root)
                self.dir_times.append(((), int(m.mtime), root_st.st_dev, root_st.st_ino))
            return
        pfd = self.dirfd(parts[:-1])
        name = parts[-1]
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and not (m.isdir() and stat.S_ISDIR(st.st_mode)):
            self._remove(pfd, name, replacing=True)
        self.created.add(parts)
        if m.isdir():
            if st is None or not stat.S_ISDIR(st.st_mode):
                os.mkdir(name, 0o700, dir_fd=pfd)
                self._own(pfd, name)
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            try:
                self._meta_fd(fd, m, xattrs)
                dst = os.fstat(fd)
            finally:
                os.close(fd)
            self.dir_times.append((parts, int(m.mtime), dst.st_dev, dst.st_ino))
        elif m.isreg():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=pfd)
            self._own(pfd, name)
            try:
                src = tf.extractfile(m)
                assert src is not None
                raw = getattr(src, "raw", src)  # tarfile's member reader: seeks without the stream
                out = SparseWriter(fd)  # zero blocks (GNU/PAX sparse holes included) stay holes
                for offset, length in (m.sparse or [(0, m.size)]):
                    raw.seek(offset)  # a sparse map: read only its data segments, not the holes
                    out.pos = offset
                    while length > 0 and (chunk := raw.read(min(length, _READ))):
                        out.write(chunk)
                        length -= len(chunk)
                out.pos = m.size
                out.finish()
                self._meta_fd(fd, m, xattrs)
                os.utime(fd, ns=(int(m.mtime) * 10**9, int(m.mtime) * 10**9))
            finally:
                os.close(fd)
        elif m.islnk():
            tparts = self.prefix + clean_name(m.linkname)  # inside the archive: below the prefix
            if len(tparts) == len(self.prefix):
                raise UnpackError(f"unpack: {m.name}: hard link to the root")
            try:
                tfd = self.dirfd(tparts[:-1], create=False)
                os.link(tparts[-1], name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
                self._own(pfd, name)
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
            self._own(pfd, name)
            self._meta_path(pfd, name, m, xattrs, symlink=m.issym())

    def _meta_fd(self, fd: int, m: tarfile.TarInfo, xattrs: dict[str, bytes]) -> None:
        if self.keep_owner:
            os.fchown(fd, *(self.chown or (m.uid, m.gid)))
        os.fchmod(fd, m.mode & 0o7777)  # after chown, which clears set-id bits
        for key, value in xattrs.items():
            os.setxattr(fd, key, value)

    def _meta_path(self, pfd: int, name: str, m: tarfile.TarInfo, xattrs: dict[str, bytes], symlink: bool) -> None:
        if self.keep_owner:
            os.chown(name, *(self.chown or (m.uid, m.gid)), dir_fd=pfd, follow_symlinks=False)
        if not symlink:
            os.chmod(name, m.mode & 0o7777, dir_fd=pfd)  # not a symlink: following cannot happen
        for key, value in xattrs.items():
            os.setxattr(f"/proc/self/fd/{pfd}/{name}", key, value, follow_symlinks=False)
        ns = int(m.mtime) * 10**9
        os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)

    def finish(self) -> None:
        """Directory mtimes last (creating children changed them). A directory may have been removed
        or replaced since (by a later entry: a symlink `dd -> /etc` after `dd/`): each is reopened
        inside dest and must still be the same directory inode, else it is skipped; the time is set
        through the fd, so no symlink is followed."""
        self._drop_fds()
        for parts, mtime, dev, ino in reversed(self.dir_times):
            try:
                fd = syscalls.openat2(self.root, "/".join(parts) or ".",
                                      _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, resolve=_RESOLVE)
            except (FileNotFoundError, NotADirectoryError):
                continue  # removed by a later whiteout or entry
            except OSError as err:
                if err.errno == errno.ELOOP:
                    continue  # now a symlink
                raise
            try:
                st = os.fstat(fd)
                if (st.st_dev, st.st_ino) == (dev, ino) and stat.S_ISDIR(st.st_mode):
                    os.utime(f"/proc/self/fd/{fd}", ns=(mtime * 10**9, mtime * 10**9))
            finally:
                os.close(fd)


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


def _in_userns() -> bool:
    from pybuild.rootless import active

    return active()


def unpack_tar(stream: BinaryIO | Any, dest: str, mode: str = "overlay", keep_owner: bool | None = None,
               xattr_ns: str | None = None, owned: set[tuple[int, int]] | None = None, prefix: str = "",
               chown: tuple[int, int] | None = None) -> tuple[str, int]:
    """Unpack an uncompressed tar stream into `dest`; returns (sha256 of the tar, its length).
    `owned`: see the module docstring (None when dest was empty: all of it is this unpack's);
    `prefix`, `chown`: "plain" mode (ADD), entries go below dest/prefix, resolved inside dest.
    `xattr_ns` None: overlay's own (`user` in a user namespace, pybuild.rootless)."""
    if xattr_ns is None:
        from pybuild.rootless import overlay_xattr_ns

        xattr_ns = overlay_xattr_ns()
    reader = _HashingReader(stream)
    unpacker = _Unpacker(dest, mode, os.geteuid() == 0 if keep_owner is None else keep_owner, xattr_ns, owned,
                         prefix, chown)
    try:
        with tarfile.open(fileobj=reader, mode="r:", encoding="utf-8", errors="surrogateescape") as tf:
            for member in tf:
                try:
                    unpacker.entry(tf, member)
                except OSError as err:
                    if err.errno == errno.ELOOP:
                        raise UnpackError(f"unpack: {member.name}: too many symlinks") from None
                    if err.errno == errno.EINVAL and unpacker.keep_owner and _in_userns():
                        owner = chown or (member.uid, member.gid)
                        raise UnpackError(f"unpack: {member.name}: owner {owner[0]}:{owner[1]} is not mapped in "
                                          "this user namespace (rootless: above the user's subordinate ids?)") from None
                    raise UnpackError(f"unpack: {member.name}: {err.strerror}") from None
                fault_point("layer.entry")
        unpacker.finish()
    except tarfile.TarError as err:
        raise UnpackError(f"unpack: invalid tar: {err}") from None
    finally:
        unpacker.close()
    reader.drain()
    return "sha256:" + reader.hash.hexdigest(), reader.size


def unpack_blob(raw: BinaryIO | Any, media_type: str, dest: str, mode: str = "overlay",
                keep_owner: bool | None = None, xattr_ns: str | None = None,
                owned: set[tuple[int, int]] | None = None) -> tuple[str, int]:
    """Decompress (gzip/zstd/bzip2/xz sniffed; `media_type` is informative) and unpack; returns (diffID, size)."""
    from pybuild.compress import open_decompressed
    result = unpack_tar(open_decompressed(raw), dest, mode, keep_owner, xattr_ns, owned)
    drain = getattr(raw, "drain", None)
    if drain is not None:
        drain()  # a verifying reader checks its digest at EOF
    return result
