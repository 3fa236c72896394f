"""`tmpcopyup`: a tmpfs over a directory of the image, filled with what the
image had there (runc's extension, used by podman and CRI-O for /etc, /tmp…).

No scratch path. runc mounts the tmpfs on a temp dir, copies, then moves the
mount; pyrunc used `/tmp/.pyrunc-copyup-<pid>` of the host, and init is
always pid 1: parallel containers collided and any local user could block
them all by making that directory. Here the tmpfs goes straight onto the
destination (through the O_PATH fd that safepath resolved inside the rootfs),
and the copy reads the image's directory through that same fd, which still
names the directory underneath the new mount. Nothing outside the container's
own mount namespace is ever created.

The copy works on fds only: every entry is opened with O_NOFOLLOW relative to
its parent's fd, symlinks are copied as links (never followed), device nodes
and fifos are made again with mknod (never opened: reading an image's
`/dev/sda` node would copy a host disk), ownership, modes and times are kept,
and holes in sparse files stay holes. The walk is iterative: a deep tree is an
error at worst (EMFILE), never a RecursionError.
"""

from __future__ import annotations

import errno
import os
import stat

from pyrunc import fsutil, safepath, syscalls as s
from pyrunc.errors import KernelError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# per-mount flags a read-only bind remount must keep
_MOUNT_FLAGS = s.MS_NOSUID | s.MS_NODEV | s.MS_NOEXEC | s.MS_NOATIME | s.MS_NODIRATIME | s.MS_RELATIME


def tmpcopyup(root_fd: int, target: int, source: str, mtype: str | None, flags: int, data: str,
              dest: str) -> None:
    """Mount the tmpfs on `target` (an O_PATH fd of `dest` in the rootfs) and
    copy the directory it covers into it; read-only last, as runc does."""
    s.mount(source, safepath.fd_path(target), mtype, flags & ~s.MS_RDONLY, data or None)
    src = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=target)  # "." does not cross the mount
    try:
        top = safepath.open_in_root(root_fd, dest, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if os.fstat(top).st_dev == os.fstat(src).st_dev:
                raise KernelError("mount", errno.EIO, dest, "tmpcopyup: the new tmpfs is not at the destination")
            copy_tree(src, top)
            os.fchmod(top, stat.S_IMODE(os.fstat(src).st_mode))  # the directory's mode, as runc
            if flags & s.MS_RDONLY:
                s.mount(None, safepath.fd_path(top), None,
                        s.MS_REMOUNT | s.MS_BIND | s.MS_RDONLY | (flags & _MOUNT_FLAGS))
        finally:
            os.close(top)
    finally:
        os.close(src)


def copy_tree(src: int, dst: int) -> None:
    """Copy the contents of directory fd `src` into directory fd `dst`."""
    stack = [(src, dst, None)]  # (source dir fd, destination dir fd, stat to apply when done)
    try:
        while stack:
            s_fd, d_fd, done = stack.pop()
            if done is not None:  # a subdirectory is complete: its mode last (0555 dirs)
                try:
                    _own(d_fd, None, done)
                finally:
                    os.close(s_fd)
                    os.close(d_fd)
                continue
            with os.scandir(s_fd) as entries:
                names = [e.name for e in entries]
            for name in names:
                st = os.stat(name, dir_fd=s_fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    os.mkdir(name, 0o700, dir_fd=d_fd)
                    sub_s = os.open(name, _DIR, dir_fd=s_fd)
                    try:
                        sub_d = os.open(name, _DIR, dir_fd=d_fd)
                    except BaseException:
                        os.close(sub_s)
                        raise
                    stack.append((sub_s, sub_d, st))
                    stack.append((sub_s, sub_d, None))
                else:
                    _copy_entry(s_fd, d_fd, name, st)
    finally:
        for s_fd, d_fd, done in stack:
            if done is not None:  # every open pair appears once with its stat
                os.close(s_fd)
                os.close(d_fd)


def _copy_entry(s_fd: int, d_fd: int, name: str, st: os.stat_result) -> None:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        sf = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=s_fd)
        try:
            df = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=d_fd)
            try:
                fsutil.copy_file_data(sf, df, st.st_size)
                _own(df, None, st)
            finally:
                os.close(df)
        finally:
            os.close(sf)
        return
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(name, dir_fd=s_fd), name, dir_fd=d_fd)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        os.mknod(name, mode, st.st_rdev, dir_fd=d_fd)
    else:
        return  # a socket: meaningless without its listener (runc skips it too)
    _own(d_fd, name, st)


def _own(fd: int, name: str | None, st: os.stat_result) -> None:
    """Owner, then mode (chown clears set-id bits), then times; on `name` in
    dir fd `fd` without following it, or on `fd` itself."""
    if name is None:
        os.fchown(fd, st.st_uid, st.st_gid)
        os.fchmod(fd, stat.S_IMODE(st.st_mode))
        os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        return
    os.chown(name, st.st_uid, st.st_gid, dir_fd=fd, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=fd)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=fd, follow_symlinks=False)
