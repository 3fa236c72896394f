"""The container's filesystem view: planned in the parent, built by init.

`plan(spec)` turns mounts, devices, /dev links, read-only and masked paths,
cwd and root.readonly into a tuple of `MountOp` plain values, in the parent,
before anything exists (pure: golden unit tests, `pyrunc explain`; a config
error is raised before any fork). `execute` is the thin part init runs in the
container's new mount namespace while the host's /proc is still reachable:
every target is resolved inside the rootfs by `safepath` and mounted through
`/proc/self/fd/N` of an O_PATH fd, so a symlink in the image can never send a
mount, a mask or a device node to the host. Everything init calls here is
imported at the top of this module (nothing is imported after fork).

Order (runc prepareRootfs + finalizeRootfs): rootfs propagation and self-bind,
`mounts` in config order, /dev nodes and symlinks, [hooks], masked and
read-only paths, cwd, read-only root, pivot_root.
"""

from __future__ import annotations

import errno
import os
import stat

from pyrunc import cgroupfs, copyup, mountopts, mountsrc, safepath, syscalls as s
from pyrunc.errors import ConfigError, KernelError, SecurityError
from pyrunc.rootless import mount_hint
from pyrunc.record import Record

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


class MountOp(Record):
    """One step of building the container's filesystem, decided in the parent.

    `kind` says what the executor does with it:
    - "mount": mount `fstype` from `source` on `dest` (`flags`, `data`; `copyup`: tmpcopyup);
    - "bind": bind `source` (a host path, already joined to the bundle) on `dest`, then
      remount with `remount` if non-zero (`clear`: bits the options cleared, kept off when a
      user namespace locks the source's flags);
    - "cgroup": the container's cgroup filesystems on `dest` (cgroupfs), `own_ns` with a
      cgroup namespace;
    - "device": the node `dest` (`mode`, `rdev`, `uid`, `gid`; a bind of the host's node when
      `bind_node`);
    - "symlink": `dest` -> `source` in /dev (`replace`: an existing entry goes first);
    - "readonly", "mask": linux.readonlyPaths / maskedPaths (skipped when missing);
    - "cwd": make process.cwd; "root-readonly": root.readonly.
    `phase` says when init runs it: BUILD (config mounts, /dev), AFTER_HOOKS (after the
    createContainer hooks and sysctls: read-only and masked paths, cwd), LAST (after the
    console is set up: root.readonly), as runc orders them.
    Config mounts also carry `propagation` and `attr_set`/`attr_clr` (mount_setattr) applied
    after the mount, `index` (the mount's place in `mounts`, for the bind sources the parent
    opened: mountsrc), `guard` ("/proc" or "/sys": the destination must not be a symlink)
    and `new_root` (a mount onto /: the root fd follows it). `field` names the config field
    the op comes from (errors, `pyrunc explain`)."""

    kind: str
    field: str
    dest: str
    source: str = ""
    fstype: str | None = None
    flags: int = 0
    data: str = ""
    remount: int = 0
    clear: int = 0
    propagation: tuple[int, ...] = ()
    attr_set: int = 0
    attr_clr: int = 0
    copyup: bool = False
    own_ns: bool = False
    index: int = -1
    guard: str = ""
    new_root: bool = False
    mode: int = 0
    rdev: int = 0
    uid: int = 0
    gid: int = 0
    bind_node: bool = False
    replace: bool = False
    phase: int = 0


BUILD, AFTER_HOOKS, LAST = 0, 1, 2  # MountOp.phase


def plan(spec, bundle: str, *, mount_ns: bool = True, cgroup_ns: bool = False,
         bind_devices: bool = False, kcore: bool = True) -> tuple[MountOp, ...]:
    """Every filesystem step of the container, in runc's order, as plain values
    (pure: no I/O; what depends on the host comes in as arguments). Config
    errors and refused destinations are raised here, before anything is made.
    `bind_devices`: device nodes are binds of the host's (user namespace);
    `kcore`: the host has /proc/kcore (runc then links /dev/core to it)."""
    linux = spec.linux
    if spec.root is not None and spec.root.readonly and not mount_ns:
        raise ConfigError(".root.readonly", "needs a mount namespace: the remount would make the host's "
                          "mount of the rootfs read-only")
    ops = [_plan_mount(m, i, bundle, cgroup_ns) for i, m in enumerate(spec.mounts)]
    if not bind_dev_mounted(spec.mounts):
        ops += _plan_devices(linux.devices if linux else (), bind_devices)
        links = list(DEV_SYMLINKS) + ([("/proc/kcore", "/dev/core")] if kcore else [])
        ops += [MountOp("symlink", "(default)", path, source=target) for target, path in links]
        ops.append(MountOp("symlink", "(default)", "/dev/ptmx", source="pts/ptmx", replace=True))
    if linux:
        for kind, key, paths in (("readonly", "readonlyPaths", linux.readonly_paths),
                                 ("mask", "maskedPaths", linux.masked_paths)):
            first: dict[str, int] = {}  # a repeated path is done once, at its first place
            for i, p in enumerate(paths):
                first.setdefault(p, i)
            ops += [MountOp(kind, f".linux.{key}[{i}]", p, phase=AFTER_HOOKS) for p, i in first.items()]
    if spec.process is not None and spec.process.cwd:
        ops.append(MountOp("cwd", ".process.cwd", spec.process.cwd, phase=AFTER_HOOKS))
    if mount_ns and spec.root is not None and spec.root.readonly:
        ops.append(MountOp("root-readonly", ".root.readonly", "/", phase=LAST))
    return tuple(ops)


def describe(op: MountOp) -> str:
    """One line for a person: kind, target, then every field that differs from
    its default, flags by name (golden tests, `pyrunc explain`)."""
    words = [op.kind, op.dest]
    for name in op._fields[3:]:
        value = getattr(op, name)
        if value == op._defaults[name]:
            continue
        if name in ("flags", "remount", "clear"):
            value = ",".join(mountopts.flag_names(value))
        elif name in ("attr_set", "attr_clr"):
            value = ",".join(mountopts.attr_names(value))
        elif name == "propagation":
            value = ";".join(",".join(mountopts.flag_names(p)) for p in value)
        elif name == "mode":
            value = f"{value:o}"
        elif name == "rdev":
            value = f"{os.major(value)}:{os.minor(value)}"
        elif name == "phase":
            value = ("build", "after-hooks", "last")[value]
        words.append(f"{name}={value}")
    return " ".join(str(w) for w in words) + f"  <- {op.field}"


def _plan_mount(m, index: int, bundle: str, cgroup_ns: bool) -> MountOp:
    field = f".mounts[{index}]"
    dest = m.destination
    if not dest.startswith("/"):
        dest = "/" + dest  # runc accepts relative destinations as relative to /
    opts = mountopts.parse(m.options, m.type, field)
    mtype = m.type or ("bind" if opts.is_bind else None)
    norm = os.path.normpath(dest)
    guard = ""
    if norm in ("/proc", "/sys"):
        guard = norm
        if norm == "/proc" and mtype != "proc" and not opts.is_bind:
            raise SecurityError(f"{field}: {dest} must be mounted as proc, not {mtype}")
    elif norm.startswith("/proc/") and norm not in PROC_SUBMOUNT_OK:
        raise SecurityError(f"{field}: {dest} cannot be mounted because it is inside /proc")
    common = dict(field=field, dest=dest, propagation=opts.propagation, attr_set=opts.attr_set,
                  attr_clr=opts.attr_clr, index=index, guard=guard, new_root=norm == "/")
    if opts.is_bind:
        source = m.source or ""
        if not source:
            raise ConfigError(f"{field}.source", "a bind mount needs a source")
        if not source.startswith("/"):
            source = os.path.join(bundle, source)
        extra = opts.flags & ~(s.MS_BIND | s.MS_REC | s.MS_REMOUNT)
        return MountOp("bind", source=source, flags=s.MS_BIND | (opts.flags & s.MS_REC),
                       remount=s.MS_BIND | s.MS_REMOUNT | extra if extra else 0, clear=opts.clear, **common)
    if mtype in ("cgroup", "cgroup2"):
        return MountOp("cgroup", fstype=mtype, flags=opts.flags, own_ns=cgroup_ns, **common)
    flags = opts.flags | (DEFAULT_PROC_FLAGS if mtype == "proc" else 0)
    return MountOp("mount", source=m.source or "", fstype=mtype, flags=flags, data=opts.data,
                   copyup="tmpcopyup" in opts.extensions, **common)


def _plan_devices(devices: tuple, bind_node: bool) -> list[MountOp]:
    """The default nodes plus linux.devices (a same-path entry overrides a default)."""
    wanted = {p: MountOp("device", "(default)", p, mode=stat.S_IFCHR | 0o666, rdev=os.makedev(ma, mi),
                         bind_node=bind_node) for p, ma, mi in DEFAULT_DEVICES}
    kinds = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
    for i, d in enumerate(devices):
        _parent, name = os.path.split(os.path.normpath(d.path))
        if not name or name == ".." or not d.path.startswith("/"):
            raise ConfigError(".linux.devices", f"device {d.path}: must be an absolute path naming a file")
        mode = (d.file_mode if d.file_mode is not None else 0o666) & 0o7777
        wanted[d.path] = MountOp("device", f".linux.devices[{i}]", d.path, mode=kinds[d.type] | mode,
                                 rdev=os.makedev(d.major or 0, d.minor or 0), uid=d.uid or 0,
                                 gid=d.gid or 0, bind_node=bind_node)
    return list(wanted.values())


def execute(root_fd: int, ops: tuple[MountOp, ...], phase: int, *, mount_fds: dict[int, int] | None = None,
            cgroup_dirs: tuple[str, ...] = ()) -> None:
    """Carry out the `ops` of `phase` (from plan) on the rootfs whose O_PATH fd is `root_fd`.
    Every target is resolved inside the rootfs by safepath; `mount_fds` are the
    bind sources the parent opened (mountsrc), `cgroup_dirs` the container's
    cgroups (init may not be in them yet)."""
    null: list[int] = []  # the verified /dev/null, opened at the first mask
    try:
        for op in ops:
            if op.phase != phase:
                continue
            kind = op.kind
            if kind in ("mount", "bind", "cgroup"):
                _mount(root_fd, op, (mount_fds or {}).get(op.index), cgroup_dirs)
            elif kind == "device":
                _make_node(root_fd, op)
            elif kind == "symlink":
                _symlink(root_fd, op)
            elif kind == "readonly":
                _readonly(root_fd, op.dest)
            elif kind == "mask":
                _mask(root_fd, op.dest, null)
            elif kind == "cwd":
                os.close(safepath.mkdir_all(root_fd, op.dest))
            elif kind == "root-readonly":
                remount_readonly(root_fd, "/")
            else:
                raise ValueError(f"unknown rootfs op {kind!r}")
    finally:
        for fd in null:
            os.close(fd)


def _mount(root_fd: int, op: MountOp, source_fd: int | None, cgroup_dirs: tuple[str, ...]) -> None:
    if op.guard:
        safepath.check_not_symlink(root_fd, op.guard, "mount destination")
    if op.kind == "bind":
        _bind(root_fd, op, source_fd)
    elif op.kind == "cgroup":
        for path in cgroupfs.mount_cgroups(root_fd, op.dest, op.flags, op.own_ns, cgroup_dirs):
            remount_readonly(root_fd, path)
    else:
        target = safepath.create_target(root_fd, op.dest, True)
        data = _tmpfs_mode(target, op.data) if op.fstype == "tmpfs" else op.data
        try:
            if op.copyup:
                copyup.tmpcopyup(root_fd, target, op.source or "tmpfs", op.fstype, op.flags, data, op.dest)
            else:
                s.mount(op.source or op.fstype, safepath.fd_path(target), op.fstype, op.flags, data or None)
        except OSError as err:
            raise KernelError(f"mount {op.fstype}", err.errno or errno.EIO, op.dest,
                              mount_hint(op.fstype, err.errno)) from None
        finally:
            os.close(target)
    if op.new_root:
        _follow_new_root(root_fd)
    _after_mount(root_fd, op)


def _source_is_dir(source: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(source).st_mode)
    except FileNotFoundError:
        raise ConfigError(".mounts", f"bind source {source}: no such file or directory") from None


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


def _bind(root_fd: int, op: MountOp, source_fd: int | None) -> None:
    source, dest = op.source, op.dest
    if source_fd is not None:  # opened by the runtime as host root (mountsrc)
        is_dir = stat.S_ISDIR(os.fstat(source_fd).st_mode)
    else:
        is_dir = _source_is_dir(source)
    target = safepath.create_target(root_fd, dest, is_dir)
    try:
        if source_fd is not None:
            mountsrc.attach(source_fd, target)
        else:
            s.mount(source, safepath.fd_path(target), None, op.flags)
    except OSError as err:
        raise _kerr("bind mount", err, f"{source} on {dest}") from None
    finally:
        os.close(target)
    if not op.remount:
        return
    fd = safepath.open_in_root(root_fd, dest)
    path = safepath.fd_path(fd)
    try:
        try:
            s.mount(None, path, None, op.remount)
        except PermissionError:
            # In a user namespace the source mount's flags are locked: keep them.
            s.mount(None, path, None, op.remount | (mountopts.statvfs_locked_flags(path) & ~op.clear))
    except OSError as err:
        raise _kerr("remount bind", err, dest) from None
    finally:
        os.close(fd)


def _after_mount(root_fd: int, op: MountOp) -> None:
    if not op.propagation and not (op.attr_set or op.attr_clr):
        return
    fd = safepath.open_in_root(root_fd, op.dest)
    try:
        for prop in op.propagation:
            s.mount(None, safepath.fd_path(fd), None, prop)
        if op.attr_set or op.attr_clr:
            s.mount_setattr(fd, "", s.AT_EMPTY_PATH | s.AT_RECURSIVE, op.attr_set, op.attr_clr)
    except OSError as err:
        raise _kerr("mount propagation", err, op.dest) from None
    finally:
        os.close(fd)


def bind_dev_mounted(mounts: tuple) -> bool:
    return any(os.path.normpath(m.destination) == "/dev" and "bind" in
               (m.type or "") + ",".join(m.options) for m in mounts)


def _make_node(root_fd: int, op: MountOp) -> None:
    # Anywhere in the rootfs, as runc: the parent is resolved inside the root.
    path = op.dest
    parent_path, name = os.path.split(os.path.normpath(path))
    parent = safepath.mkdir_all(root_fd, parent_path)
    old_umask = os.umask(0)  # the mode is the config's
    try:
        try:
            os.unlink(name, dir_fd=parent)
        except FileNotFoundError:
            pass
        if op.bind_node:
            fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=parent)
            os.close(fd)
            target = safepath.open_in_root(root_fd, path)
            try:
                s.mount(path, safepath.fd_path(target), None, s.MS_BIND)
            finally:
                os.close(target)
        else:
            os.mknod(name, op.mode, op.rdev, dir_fd=parent)
            os.chown(name, op.uid, op.gid, dir_fd=parent, follow_symlinks=False)
    except OSError as err:
        raise _kerr("create device", err, path) from None
    finally:
        os.umask(old_umask)
        os.close(parent)


def _symlink(root_fd: int, op: MountOp) -> None:
    parent_path, name = os.path.split(op.dest)
    parent = safepath.mkdir_all(root_fd, parent_path)
    try:
        if op.replace:
            try:
                os.unlink(name, dir_fd=parent)
            except FileNotFoundError:
                pass
        try:
            os.symlink(op.source, name, dir_fd=parent)
        except FileExistsError:
            pass
    finally:
        os.close(parent)


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


def _existing(root_fd: int, path: str) -> int | None:
    """An O_PATH fd of `path` in the root, or None when it is missing (skipped,
    as runc and crun do)."""
    try:
        return safepath.open_in_root(root_fd, path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _mask(root_fd: int, path: str, null: list[int]) -> None:
    """`null` caches the verified /dev/null across the masks of one execute()."""
    if not null:
        null.append(_verified_dev_null(root_fd))
    fd = _existing(root_fd, path)
    if fd is None:
        return
    try:
        if safepath.is_dir_fd(fd):
            s.mount("tmpfs", safepath.fd_path(fd), "tmpfs", s.MS_RDONLY, "nr_blocks=1,nr_inodes=1")
        else:
            s.mount(safepath.fd_path(null[0]), safepath.fd_path(fd), None, s.MS_BIND)
    except OSError as err:
        raise _kerr("mask", err, path) from None
    finally:
        os.close(fd)


def _readonly(root_fd: int, path: str) -> None:
    fd = _existing(root_fd, path)
    if fd is None:
        return
    try:
        s.mount(safepath.fd_path(fd), safepath.fd_path(fd), None, s.MS_BIND | s.MS_REC)
    except OSError as err:
        raise _kerr("readonly path", err, path) from None
    finally:
        os.close(fd)
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
