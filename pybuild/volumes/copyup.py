"""A new volume's first content: the image's tree at the mount path (docker's copy-up), and sizes.

The image is an attacker's: its path may be a symlink (`/data -> /etc`, `-> ../../../host`),
its tree may hold links to host paths, hard links, devices, deep nesting. So:
- the source is resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
  against the container's root: a link resolves inside the image, exactly where the runtime will
  mount the volume (it resolves the destination the same way), never on the host;
- the walk goes from directory fd to directory fd, every entry opened O_NOFOLLOW and checked by
  fstat to be what lstat said; symlinks are copied as symlinks (their targets are text), never
  followed; hard links inside the tree stay hard links; sockets are skipped;
- everything is created with O_EXCL / mkdirat / symlinkat in the volume's new, empty `_data`,
  which no container has mounted yet (the copy runs once, before the first container starts);
- ownership, modes, times and `security.capability` follow the image (docker's copy), the
  volume's root takes the image directory's owner and mode (docker's copyOwnership);
- at most MAX_DEPTH nested directories: a deeper image is refused, not half-copied in silence.

`tree_size` walks a tree the same way (no link followed, no mount crossed, hard links once).
"""

from __future__ import annotations

import errno
import os
import stat

from pybuild.volumes import VolumeError

MAX_DEPTH = 256
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CAP = "security.capability"


def _open_source(root: str, path: str) -> int | None:
    """An fd of the directory at `path` inside `root`, or None when the image has none there."""
    from pyrunc import syscalls as s

    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return s.openat2(root_fd, path.lstrip("/") or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, 0,
                         s.RESOLVE_IN_ROOT | s.RESOLVE_NO_MAGICLINKS | s.RESOLVE_NO_XDEV)
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            return None  # nothing there, or a file: nothing to copy (the runtime reports a bad target)
        raise VolumeError(f"copy-up {path}: {err.strerror}") from None
    finally:
        os.close(root_fd)


def _meta(fd: int, st: os.stat_result) -> None:
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_cap(src: int, dst: int) -> None:
    try:
        os.setxattr(dst, _CAP, os.getxattr(src, _CAP))
    except OSError as err:
        if err.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise


class _Copy:
    def __init__(self, dest_root: int) -> None:
        self.dest_root = dest_root
        self.links: dict[tuple[int, int], str] = {}   # (dev, ino) of a multi-link file -> its path in dest

    def entry(self, sfd: int, dfd: int, name: str, rel: str, depth: int) -> None:
        st = os.stat(name, dir_fd=sfd, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            if depth >= MAX_DEPTH:
                raise VolumeError(f"copy-up: more than {MAX_DEPTH} nested directories at {rel}")
            os.mkdir(name, 0o700, dir_fd=dfd)
            child_s = self._open_same(sfd, name, _DIR, st)
            try:
                child_d = os.open(name, _DIR, dir_fd=dfd)
                try:
                    self.tree(child_s, child_d, rel, depth + 1)
                    _meta(child_d, st)
                finally:
                    os.close(child_d)
            finally:
                os.close(child_s)
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.links:
                os.link(self.links[key], name, src_dir_fd=self.dest_root, dst_dir_fd=dfd, follow_symlinks=False)
                return
            self._file(sfd, dfd, name, st)
            if st.st_nlink > 1:
                self.links[key] = rel
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=sfd), name, dir_fd=dfd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)
        elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dfd)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dfd, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)
        # sockets are not copied (docker skips them too)

    @staticmethod
    def _open_same(sfd: int, name: str, flags: int, st: os.stat_result) -> int:
        fd = os.open(name, flags, dir_fd=sfd)
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            os.close(fd)
            raise VolumeError(f"copy-up: {name} changed while it was copied")
        return fd

    def _file(self, sfd: int, dfd: int, name: str, st: os.stat_result) -> None:
        from pyrunc.fsutil import copy_file_data

        src = self._open_same(sfd, name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, st)
        try:
            dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                          dir_fd=dfd)
            try:
                copy_file_data(src, dst, st.st_size)
                _meta(dst, st)
                _copy_cap(src, dst)
            finally:
                os.close(dst)
        finally:
            os.close(src)

    def tree(self, sfd: int, dfd: int, rel: str, depth: int) -> None:
        with os.scandir(sfd) as entries:
            names = sorted(e.name for e in entries)
        for name in names:
            self.entry(sfd, dfd, name, f"{rel}/{name}" if rel else name, depth)


def copy_up(root: str, path: str, dest: str) -> bool:
    """Copy the image's tree at `path` (inside the mounted rootfs `root`) into the empty
    directory `dest`. Returns whether the image had a directory there."""
    src = _open_source(root, path)
    if src is None:
        return False
    try:
        dst = os.open(dest, _DIR)
        try:
            if os.listdir(dst):
                return False  # not empty: someone put content there first; docker copies only into empty
            try:
                _Copy(dst).tree(src, dst, "", 0)
            except OSError as err:
                raise VolumeError(f"copy-up {path}: {err.strerror}"
                                  f"{': ' + str(err.filename) if err.filename else ''}") from None
            _meta(dst, os.fstat(src))
        finally:
            os.close(dst)
    finally:
        os.close(src)
    return True


def tree_size(path: str) -> int:
    """Bytes of the regular files and links under `path`, hard links once, never following a
    link nor crossing a mount (a container's `ln -s / x` must not make this walk the host)."""
    try:
        top = os.open(path, _DIR)
    except OSError:
        return 0
    dev = os.fstat(top).st_dev
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [top]
    try:
        while stack:
            fd = stack.pop()
            try:
                with os.scandir(fd) as entries:
                    names = [e.name for e in entries]
                for name in names:
                    try:
                        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                        if stat.S_ISDIR(st.st_mode):
                            if st.st_dev == dev:  # a mount point is someone else's tree
                                stack.append(os.open(name, _DIR, dir_fd=fd))
                        elif (st.st_dev, st.st_ino) not in seen:
                            seen.add((st.st_dev, st.st_ino))
                            total += st.st_size
                    except OSError as err:  # removed or replaced meanwhile by the container that owns it
                        if err.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                            raise
            finally:
                os.close(fd)
    finally:
        for fd in stack:
            os.close(fd)
    return total
