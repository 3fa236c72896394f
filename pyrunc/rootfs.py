"""Build the container's filesystem view, in init, before pivot_root.

Everything here runs in the container's new mount namespace while the host's
/proc is still reachable, so every target is resolved inside the rootfs by
`safepath` and mounted through `/proc/self/fd/N` of an O_PATH fd: a symlink in
the image can never send a mount, a mask or a device node to the host.

Order (runc prepareRootfs + finalizeRootfs): rootfs propagation and self-bind,
`mounts` in config order, /dev nodes and symlinks, [hooks], masked and
read-only paths, cwd, read-only root, pivot_root.
"""

from __future__ import annotations

import errno
import os
import stat

from pyrunc import mountopts, safepath, syscalls as s
from pyrunc.errors import ConfigError, KernelError, SecurityError
from pyrunc.rootless import mount_hint

DEFAULT_DEVICES = (  # path, major, minor (char devices, 0666, root)
    ("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
    ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0),
)
DEV_SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"))
# Files under /proc that may be mounted over (LXCFS), as runc allows.
PROC_SUBMOUNT_OK = {"/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",
                    "/proc/swaps", "/proc/uptime", "/proc/loadavg", "/proc/slabinfo",
                    "/proc/net/dev", "/proc/sys/kernel/ns_last_pid"}
DEFAULT_PROC_FLAGS = s.MS_NOSUID | s.MS_NODEV | s.MS_NOEXEC


def _kerr(call: str, err: OSError, path: str) -> KernelError:
    return KernelError(call, err.errno or errno.EIO, path)


def root_propagation(propagation: str | None) -> int:
    """MS_* flags for linux.rootfsPropagation (0: none asked)."""
    if propagation is None:
        return 0
    flags = mountopts.PROPAGATION.get(propagation)
    if flags is None:
        raise ConfigError(".linux.rootfsPropagation", f"unknown propagation {propagation!r}")
    return flags


def prepare_root(rootfs: str, propagation: str | None) -> int:
    """Make mount events not leak to the host, bind the rootfs onto itself
    (pivot_root needs a mount point) and return an O_PATH fd of it.

    The host's tree becomes a recursive slave (private when private was
    asked), and the rootfs' parent mount private when it is shared (runc's
    rootfsParentMountPrivate): pivot_root refuses a shared parent, and the
    self-bind would propagate to the host. The propagation asked for is put on
    the new root after pivot_root (apply_root_propagation): shared cannot be
    pivoted, and binding out of an unbindable mount fails."""
    asked = root_propagation(propagation)
    private = asked & s.MS_PRIVATE
    s.mount(None, "/", None, s.MS_REC | (s.MS_PRIVATE if private else s.MS_SLAVE))
    parent, shared = _parent_mount(rootfs)
    if shared:
        s.mount(None, parent, None, s.MS_PRIVATE)
    s.mount(rootfs, rootfs, None, s.MS_BIND | s.MS_REC)
    return os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _parent_mount(path: str) -> tuple[str, bool]:
    """(mount point, is shared) of the mount that holds `path`: the longest
    mount point that is `path` or one of its parents, in this mount namespace."""
    best, shared = "/", False
    for _mid, point, optional in _mountinfo():
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, shared = point, any(o.startswith(b"shared:") for o in optional)
    return best, shared


def _mountinfo():
    """(mount id, mount point, optional fields) of each mount in this namespace."""
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            fields = line.split(b" - ", 1)[0].split()
            yield (int(fields[0]), fields[4].decode(errors="surrogateescape").replace("\\040", " "),
                   fields[6:])


def apply_root_propagation(propagation: str | None) -> None:
    """After pivot_root: the container's / gets linux.rootfsPropagation."""
    flags = root_propagation(propagation)
    if flags:
        try:
            s.mount(None, "/", None, flags)
        except OSError as err:
            raise _kerr("rootfsPropagation", err, "/") from None


def _source_is_dir(source: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(source).st_mode)
    except FileNotFoundError:
        raise ConfigError(".mounts", f"bind source {source}: no such file or directory") from None


def mount_entry(root_fd: int, m, index: int, bundle: str, cgroup_ns: bool, user_ns: bool,
                cgroup_dirs: tuple[str, ...] = (), source_fd: int | None = None) -> None:
    field = f".mounts[{index}]"
    dest = m.destination
    if not dest.startswith("/"):
        dest = "/" + dest  # runc accepts relative destinations as relative to /
    opts = mountopts.parse(m.options, m.type, field)
    mtype = m.type or ("bind" if opts.is_bind else None)
    norm = os.path.normpath(dest)
    if norm in ("/proc", "/sys"):
        safepath.check_not_symlink(root_fd, norm, "mount destination")
        if norm == "/proc" and mtype != "proc" and not opts.is_bind:
            raise SecurityError(f"{field}: {dest} must be mounted as proc, not {mtype}")
    elif norm.startswith("/proc/") and norm not in PROC_SUBMOUNT_OK:
        raise SecurityError(f"{field}: {dest} cannot be mounted because it is inside /proc")
    if opts.is_bind:
        _bind(root_fd, m, opts, dest, bundle, user_ns, field, source_fd)
    elif mtype == "cgroup" or mtype == "cgroup2":
        from pyrunc.cgroupfs import mount_cgroups  # imported before fork by create when needed

        mount_cgroups(root_fd, dest, opts, cgroup_ns, cgroup_dirs)
    else:
        target = safepath.create_target(root_fd, dest, True)
        flags = opts.flags | (DEFAULT_PROC_FLAGS if mtype == "proc" else 0)
        data = _tmpfs_mode(target, opts.data) if mtype == "tmpfs" else opts.data
        try:
            if "tmpcopyup" in opts.extensions:
                from pyrunc.copyup import tmpcopyup  # imported before fork by create when needed

                tmpcopyup(root_fd, target, m.source or "tmpfs", mtype, flags, data, dest)
            else:
                s.mount(m.source or mtype, safepath.fd_path(target), mtype, flags, data or None)
        except OSError as err:
            raise KernelError(f"mount {mtype}", err.errno or errno.EIO, dest, mount_hint(mtype, err.errno)) from None
        finally:
            os.close(target)
    if norm == "/":
        _follow_new_root(root_fd)
    _after_mount(root_fd, opts, dest)


def _follow_new_root(root_fd: int) -> None:
    """A mount onto / covers the rootfs: root_fd (same number) now names the
    new top, so what follows (later mounts, /dev, masks, pivot) lands on it."""
    fd = os.open(os.readlink(safepath.fd_path(root_fd)), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.dup2(fd, root_fd, inheritable=False)
    finally:
        os.close(fd)


def _tmpfs_mode(target: int, data: str) -> str:
    """A tmpfs keeps its mount point's mode unless mode= is given (runc); the
    kernel's default would be 1777."""
    if any(o.startswith("mode=") for o in data.split(",")):
        return data
    mode = f"mode={stat.S_IMODE(os.fstat(target).st_mode):04o}"
    return f"{mode},{data}" if data else mode


def _bind(root_fd: int, m, opts: mountopts.MountOptions, dest: str, bundle: str, user_ns: bool,
          field: str, source_fd: int | None = None) -> None:
    source = m.source or ""
    if not source:
        raise ConfigError(f"{field}.source", "a bind mount needs a source")
    if not source.startswith("/"):
        source = os.path.join(bundle, source)
    if source_fd is not None:  # opened by the runtime as host root (mountsrc)
        is_dir = stat.S_ISDIR(os.fstat(source_fd).st_mode)
    else:
        is_dir = _source_is_dir(source)
    target = safepath.create_target(root_fd, dest, is_dir)
    try:
        if source_fd is not None:
            from pyrunc import mountsrc  # loaded by create before fork when it opened sources

            mountsrc.attach(source_fd, target)
        else:
            s.mount(source, safepath.fd_path(target), None, s.MS_BIND | (opts.flags & s.MS_REC))
    except OSError as err:
        raise _kerr("bind mount", err, f"{source} on {dest}") from None
    finally:
        os.close(target)
    extra = opts.flags & ~(s.MS_BIND | s.MS_REC | s.MS_REMOUNT)
    if not extra:
        return
    fd = safepath.open_in_root(root_fd, dest)
    path = safepath.fd_path(fd)
    try:
        flags = s.MS_BIND | s.MS_REMOUNT | extra
        try:
            s.mount(None, path, None, flags)
        except PermissionError:
            # In a user namespace the source mount's flags are locked: keep them.
            s.mount(None, path, None, flags | (mountopts.statvfs_locked_flags(path) & ~opts.clear))
    except OSError as err:
        raise _kerr("remount bind", err, dest) from None
    finally:
        os.close(fd)


def _after_mount(root_fd: int, opts: mountopts.MountOptions, dest: str) -> None:
    if not opts.propagation and not (opts.attr_set or opts.attr_clr):
        return
    fd = safepath.open_in_root(root_fd, dest)
    try:
        for prop in opts.propagation:
            s.mount(None, safepath.fd_path(fd), None, prop)
        if opts.attr_set or opts.attr_clr:
            s.mount_setattr(fd, "", s.AT_EMPTY_PATH | s.AT_RECURSIVE, opts.attr_set, opts.attr_clr)
    except OSError as err:
        raise _kerr("mount propagation", err, dest) from None
    finally:
        os.close(fd)


def bind_dev_mounted(mounts: tuple) -> bool:
    return any(os.path.normpath(m.destination) == "/dev" and "bind" in
               (m.type or "") + ",".join(m.options) for m in mounts)


def create_devices(root_fd: int, devices: tuple, use_bind: bool) -> None:
    """The default nodes plus linux.devices (a same-path entry overrides a default)."""
    wanted = {p: (stat.S_IFCHR | 0o666, os.makedev(ma, mi), 0, 0) for p, ma, mi in DEFAULT_DEVICES}
    kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
    for d in devices:
        mode = (d.file_mode if d.file_mode is not None else 0o666) & 0o7777
        wanted[d.path] = (kinds[d.type] | mode, os.makedev(d.major or 0, d.minor or 0),
                          d.uid or 0, d.gid or 0)
    old = os.umask(0)
    try:
        for path, (mode, dev, uid, gid) in wanted.items():
            _make_node(root_fd, path, mode, dev, uid, gid, use_bind)
    finally:
        os.umask(old)


def _make_node(root_fd: int, path: str, mode: int, dev: int, uid: int, gid: int, use_bind: bool) -> None:
    # Anywhere in the rootfs, as runc: the parent is resolved inside the root.
    parent_path, name = os.path.split(os.path.normpath(path))
    if not name or name == ".." or not path.startswith("/"):
        raise ConfigError(".linux.devices", f"device {path}: must be an absolute path naming a file")
    parent = safepath.mkdir_all(root_fd, parent_path)
    try:
        try:
            os.unlink(name, dir_fd=parent)
        except FileNotFoundError:
            pass
        if use_bind:
            fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=parent)
            os.close(fd)
            target = safepath.open_in_root(root_fd, path)
            try:
                s.mount(path, safepath.fd_path(target), None, s.MS_BIND)
            finally:
                os.close(target)
        else:
            os.mknod(name, mode, dev, dir_fd=parent)
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)
    except OSError as err:
        raise _kerr("create device", err, path) from None
    finally:
        os.close(parent)


def dev_symlinks(root_fd: int) -> None:
    dev = safepath.mkdir_all(root_fd, "/dev")
    try:
        links = list(DEV_SYMLINKS)
        if os.path.exists("/proc/kcore"):
            links.append(("/proc/kcore", "/dev/core"))
        for target, path in links:
            try:
                os.symlink(target, os.path.basename(path), dir_fd=dev)
            except FileExistsError:
                pass
        try:
            os.unlink("ptmx", dir_fd=dev)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", "ptmx", dir_fd=dev)
    finally:
        os.close(dev)


def _verified_dev_null(root_fd: int) -> int:
    """An O_PATH fd of the container's /dev/null, checked to be the real 1:3
    char device (CVE-2025-31133: a symlink or file there must not be bound
    over /proc files)."""
    fd = safepath.open_in_root(root_fd, "/dev/null")
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise SecurityError("/dev/null in the container is not the null device; refusing to mask with it")
    return fd


def _existing(root_fd: int, paths: tuple[str, ...]):
    """(path, O_PATH fd) for each distinct path that exists in the root; a
    missing one is skipped, as runc and crun do. The fd is closed after use."""
    for path in dict.fromkeys(paths):
        try:
            fd = safepath.open_in_root(root_fd, path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        try:
            yield path, fd
        finally:
            os.close(fd)


def mask_paths(root_fd: int, paths: tuple[str, ...]) -> None:
    if not paths:
        return
    null = _verified_dev_null(root_fd)
    try:
        for path, fd in _existing(root_fd, paths):
            try:
                if safepath.is_dir_fd(fd):
                    s.mount("tmpfs", safepath.fd_path(fd), "tmpfs", s.MS_RDONLY, "nr_blocks=1,nr_inodes=1")
                else:
                    s.mount(safepath.fd_path(null), safepath.fd_path(fd), None, s.MS_BIND)
            except OSError as err:
                raise _kerr("mask", err, path) from None
    finally:
        os.close(null)


def readonly_paths(root_fd: int, paths: tuple[str, ...]) -> None:
    for path, fd in _existing(root_fd, paths):
        try:
            s.mount(safepath.fd_path(fd), safepath.fd_path(fd), None, s.MS_BIND | s.MS_REC)
        except OSError as err:
            raise _kerr("readonly path", err, path) from None
        remount_readonly(root_fd, path)


def remount_readonly(root_fd: int, path: str) -> None:
    fd = safepath.open_in_root(root_fd, path)
    p = safepath.fd_path(fd)
    try:
        keep = mountopts.statvfs_locked_flags(p)
        s.mount(None, p, None, s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY | keep)
    except OSError as err:
        raise _kerr("remount read-only", err, path) from None
    finally:
        os.close(fd)


def make_cwd(root_fd: int, cwd: str) -> None:
    os.close(safepath.mkdir_all(root_fd, cwd))


HOST_MOUNTS = "host-mounts"  # in the state dir: mounts made without a mount namespace


def mounts_under(rootfs: str) -> dict[int, str]:
    """{mount id: mount point} of the mounts at or under `rootfs`, in this
    mount namespace."""
    prefix = rootfs.rstrip("/") + "/"
    return {mid: point for mid, point, _ in _mountinfo() if point == rootfs or point.startswith(prefix)}


def detach_new_mounts(before: dict[int, str], rootfs: str) -> None:
    """Detach what appeared under `rootfs` since `before`, newest first."""
    for mid, point in sorted(mounts_under(rootfs).items(), reverse=True):
        if mid not in before:
            try:
                s.umount2(point, s.MNT_DETACH)
            except OSError:
                pass  # already gone with a parent detached before it


def record_host_mounts(fifo_fd: int | None, before: dict[int, str], rootfs: str) -> None:
    """Write the mounts this init made (id and point, one a line) next to
    exec.fifo, for release_host_mounts at delete."""
    if fifo_fd is None:
        return
    state_dir = os.path.dirname(os.readlink(safepath.fd_path(fifo_fd)))
    new = [(mid, p) for mid, p in sorted(mounts_under(rootfs).items()) if mid not in before]
    dfd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fd = os.open(HOST_MOUNTS, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dfd)
    finally:
        os.close(dfd)
    try:
        os.write(fd, "".join(f"{mid} {p}\n" for mid, p in new).encode(errors="surrogateescape"))
    finally:
        os.close(fd)


def release_host_mounts(state_dir: str) -> None:
    """At delete: detach the mounts a container without a mount namespace
    made, newest first, each only if that very mount (same id) is still there."""
    try:
        with open(os.path.join(state_dir, HOST_MOUNTS), "rb") as f:
            made = [line.decode(errors="surrogateescape").rstrip("\n").split(" ", 1) for line in f]
    except FileNotFoundError:
        return
    for mid, point in reversed(made):
        if mounts_under(point).get(int(mid)) == point:
            try:
                s.umount2(point, s.MNT_DETACH)
            except OSError as err:
                raise _kerr("umount", err, point) from None


def chroot(rootfs: str) -> None:
    """No mount namespace: pivot_root would move the host's root."""
    try:
        os.chdir(rootfs)
        os.chroot(".")
        os.chdir("/")
    except OSError as err:
        raise _kerr("chroot", err, rootfs) from None


def pivot(rootfs: str, no_pivot: bool) -> None:
    """Switch the root; the old root is detached so nothing of the host stays."""
    if no_pivot:
        os.chdir(rootfs)
        s.mount(rootfs, "/", None, s.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
        return
    old = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        s.pivot_root(".", ".")
        os.fchdir(old)
        s.mount(None, ".", None, s.MS_SLAVE | s.MS_REC)
        s.umount2(".", s.MNT_DETACH)
        os.chdir("/")
    except OSError as err:
        raise _kerr("pivot_root", err, rootfs) from None
    finally:
        os.close(old)
        os.close(new)
