"""The only module that touches ctypes: thin, policy-free syscall wrappers.

Python 3.11 has no os.unshare/os.setns/mount/pivot_root, so they live here.
Every wrapper raises OSError(errno, strerror, path) through `_check`, so the
callers decide what an error means. Numbers for syscalls that glibc does not
wrap come from `_NR`, per architecture.

This module is imported by the container init *before* pivot_root (nothing is
imported after it), so it must not import anything lazily itself.

It is built on `_ctypes`, the C half of ctypes, not on the `ctypes` package:
`_C` below names the dozen C types and helpers used here. `import ctypes`
costs ≈1.4 ms more than `_ctypes` with them (≈30 type classes, the
byte-order variants in ctypes._endian, `types`) and `run`, `create` and
`exec` import this module twice (the interpreter guard's first process,
pyrunc/exeguard.py, and the second), `delete` once.
"""

from __future__ import annotations

import os
import struct

import _ctypes


class _C:
    """The part of `ctypes` this module uses, over the same `_ctypes` objects
    ctypes.__init__ builds it from (CPython 3.11): same classes, same calls."""

    Structure = _ctypes.Structure
    Array = _ctypes.Array
    byref = _ctypes.byref
    sizeof = _ctypes.sizeof
    addressof = _ctypes.addressof
    get_errno = _ctypes.get_errno

    class c_int(_ctypes._SimpleCData):  # noqa: N801 (ctypes' names)
        _type_ = "i"

    class c_uint(_ctypes._SimpleCData):  # noqa: N801
        _type_ = "I"

    class c_long(_ctypes._SimpleCData):  # noqa: N801
        _type_ = "l"

    class c_ulong(_ctypes._SimpleCData):  # noqa: N801
        _type_ = "L"

    class c_ushort(_ctypes._SimpleCData):  # noqa: N801
        _type_ = "H"

    class c_uint64(_ctypes._SimpleCData):  # noqa: N801
        _type_ = "Q"

    class c_char(_ctypes._SimpleCData):  # noqa: N801 (arrays of it get .value and .raw)
        _type_ = "c"

    class c_char_p(_ctypes._SimpleCData):  # noqa: N801
        _type_ = "z"

    class c_void_p(_ctypes._SimpleCData):  # noqa: N801
        _type_ = "P"

    c_int32 = c_int  # the fixed-size names as ctypes binds them on Linux (LP64 and ILP32: int is 4 bytes)
    c_uint32 = c_uint
    c_size_t = c_ulong  # the size of a pointer everywhere Linux runs

    @staticmethod
    def create_string_buffer(init: bytes | int, size: int | None = None) -> _ctypes.Array:
        """A zeroed char array of `size` (an int `init`: of that size), holding
        the bytes of a bytes `init` (NULs included), as ctypes' function does."""
        if isinstance(init, int):
            return (_C.c_char * init)()
        buf = (_C.c_char * (len(init) + 1 if size is None else size))()
        buf.value = init
        return buf


class _Lib:
    """A loaded library's functions, as ctypes.CDLL/PyDLL give them: called with
    the C types above, returning a C int unless `restype` is set, errno kept
    for `_C.get_errno()` (use_errno); PyDLL's hold the GIL (FUNCFLAG_PYTHONAPI)."""

    def __init__(self, flags: int) -> None:
        class Function(_ctypes.CFuncPtr):
            _flags_ = flags
            _restype_ = _C.c_int

        self._function = Function
        self._handle = _ctypes.dlopen(None, os.RTLD_LOCAL)

    def __getattr__(self, name: str) -> _ctypes.CFuncPtr:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        function = self._function(_ctypes.dlsym(self._handle, name))
        setattr(self, name, function)
        return function


_libc = _Lib(_ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO)
_syscall = _libc.syscall
_syscall.restype = _C.c_long

MACHINE = os.uname().machine

# Syscall numbers glibc 2.36 does not wrap (or wraps badly), per architecture.
_NR_TABLE: dict[str, dict[str, int]] = {
    "x86_64": {
        "clone": 56, "pivot_root": 155, "setns": 308, "seccomp": 317, "execveat": 322,
        "pidfd_send_signal": 424, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "pidfd_open": 434,
        "clone3": 435, "close_range": 436, "openat2": 437, "pidfd_getfd": 438,
        "mount_setattr": 442, "keyctl": 250, "bpf": 321, "personality": 135,
        "ioprio_set": 251, "set_mempolicy": 238, "sched_setattr": 314,
    },
    "aarch64": {
        "clone": 220, "pivot_root": 41, "setns": 268, "seccomp": 277, "execveat": 281,
        "pidfd_send_signal": 424, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "pidfd_open": 434,
        "clone3": 435, "close_range": 436, "openat2": 437, "pidfd_getfd": 438,
        "mount_setattr": 442, "keyctl": 219, "bpf": 280, "personality": 92,
        "ioprio_set": 30, "set_mempolicy": 237, "sched_setattr": 274,
    },
}
_NR = _NR_TABLE.get(MACHINE, _NR_TABLE["x86_64"])

# --- constants -------------------------------------------------------------
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
CLONE_PARENT = 0x00008000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_DETACH = 2
MNT_FORCE = 1
UMOUNT_NOFOLLOW = 8

# openat2 resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# open_tree / move_mount / mount_setattr
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100
AT_RECURSIVE = 0x8000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_IDMAP = 0x100000

# prctl
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
PR_SET_KEEPCAPS = 8
PR_SET_NAME = 15
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47

# seccomp(2)
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_GET_NOTIF_SIZES = 3

# keyctl
KEYCTL_JOIN_SESSION_KEYRING = 1


def _check(result: int, path: str | None = None) -> int:
    if result < 0:
        err = _C.get_errno()
        raise OSError(err, os.strerror(err), path)
    return result


def _b(path: str | bytes | None) -> bytes | None:
    if path is None:
        return None
    return path if isinstance(path, bytes) else os.fsencode(path)


def syscall_number(name: str) -> int:
    return _NR[name]


# --- namespaces -------------------------------------------------------------
def unshare(flags: int) -> None:
    _check(_libc.unshare(_C.c_int(flags)))


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(_C.c_int(fd), _C.c_int(nstype)))


# --- mounts -------------------------------------------------------------------
def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    res = _libc.mount(_b(source), _b(target), _b(fstype), _C.c_ulong(flags), _b(data))
    _check(res, target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), _C.c_int(flags)), target)


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_syscall(_NR["pivot_root"], _b(new_root), _b(put_old)), new_root)


def open_tree(dirfd: int, path: str, flags: int) -> int:
    return _check(_syscall(_NR["open_tree"], _C.c_int(dirfd), _b(path), _C.c_uint(flags)), path)


def move_mount(from_dirfd: int, from_path: str, to_dirfd: int, to_path: str, flags: int) -> None:
    _check(_syscall(_NR["move_mount"], _C.c_int(from_dirfd), _b(from_path),
                    _C.c_int(to_dirfd), _b(to_path), _C.c_uint(flags)), to_path)


class _MountAttr(_C.Structure):
    _fields_ = [("attr_set", _C.c_uint64), ("attr_clr", _C.c_uint64),
                ("propagation", _C.c_uint64), ("userns_fd", _C.c_uint64)]


def mount_setattr(dirfd: int, path: str, flags: int, attr_set: int = 0, attr_clr: int = 0,
                  propagation: int = 0, userns_fd: int = 0) -> None:
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    _check(_syscall(_NR["mount_setattr"], _C.c_int(dirfd), _b(path), _C.c_uint(flags),
                    _C.byref(attr), _C.c_size_t(_C.sizeof(attr))), path)


# --- path resolution ------------------------------------------------------------
class _OpenHow(_C.Structure):
    _fields_ = [("flags", _C.c_uint64), ("mode", _C.c_uint64), ("resolve", _C.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    how = _OpenHow(flags, mode, resolve)
    return _check(_syscall(_NR["openat2"], _C.c_int(dirfd), _b(path), _C.byref(how),
                           _C.c_size_t(_C.sizeof(how))), path)


# --- processes ------------------------------------------------------------------
def pidfd_open(pid: int, flags: int = 0) -> int:
    return _check(_syscall(_NR["pidfd_open"], _C.c_int(pid), _C.c_uint(flags)))


class _PidfdInfo(_C.Structure):  # struct pidfd_info (linux/pidfd.h), up to exit_code
    _fields_ = [("mask", _C.c_uint64), ("cgroupid", _C.c_uint64)] + [
        (n, _C.c_uint32) for n in ("pid", "tgid", "ppid", "ruid", "rgid", "euid", "egid", "suid", "sgid",
                                       "fsuid", "fsgid")] + [("exit_code", _C.c_int32),
                                                             ("coredump_mask", _C.c_uint32),
                                                             ("spare1", _C.c_uint32)]


PIDFD_INFO_EXIT = 1 << 3
_PIDFD_GET_INFO = (3 << 30) | (_C.sizeof(_PidfdInfo) << 16) | (0xFF << 8) | 11  # _IOWR(0xFF, 11, ...)


def pidfd_exit_status(pidfd: int) -> int | None:
    """The wait status of the exited process behind `pidfd` (Linux 6.15
    PIDFD_GET_INFO with PIDFD_INFO_EXIT, even after another parent reaped
    it); None while it runs or where the kernel cannot tell."""
    import fcntl

    info = _PidfdInfo(mask=PIDFD_INFO_EXIT)
    try:
        fcntl.ioctl(pidfd, _PIDFD_GET_INFO, info)
    except OSError:
        return None
    return info.exit_code if info.mask & PIDFD_INFO_EXIT else None


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    _check(_syscall(_NR["pidfd_send_signal"], _C.c_int(pidfd), _C.c_int(sig), None,
                    _C.c_uint(0)))


def set_comm(name: bytes) -> None:
    """PR_SET_NAME: the calling thread's comm (15 bytes at most)."""
    _check(_libc.prctl(_C.c_int(PR_SET_NAME), _C.c_char_p(name[:15]), _C.c_ulong(0),
                       _C.c_ulong(0), _C.c_ulong(0)))


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(_C.c_int(option), _C.c_ulong(arg2), _C.c_ulong(arg3),
                              _C.c_ulong(arg4), _C.c_ulong(arg5)))


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, _C.c_size_t(len(raw))))


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, _C.c_size_t(len(raw))))


def personality(persona: int) -> int:
    return _check(_libc.personality(_C.c_ulong(persona)))


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    _check(_syscall(_NR["close_range"], _C.c_uint(first), _C.c_uint(last), _C.c_uint(flags)))


CLOSE_RANGE_CLOEXEC = 1 << 2


def keyctl_join_session_keyring(name: str | None) -> int:
    return _check(_syscall(_NR["keyctl"], _C.c_int(KEYCTL_JOIN_SESSION_KEYRING), _b(name)))


def execveat(dirfd: int, path: str, argv: list[str], envp: list[str], flags: int) -> None:
    """Only returns by raising: execveat(2) replaces the process on success."""
    c_argv = (_C.c_char_p * (len(argv) + 1))(*[a.encode() for a in argv], None)
    c_envp = (_C.c_char_p * (len(envp) + 1))(*[e.encode() for e in envp], None)
    _check(_syscall(_NR["execveat"], _C.c_int(dirfd), _b(path), c_argv, c_envp, _C.c_int(flags)), path)


class ExecArgs:
    """execve(2)'s arguments as C arrays, built before the seccomp filter is
    loaded so that nothing but the execve itself runs after it."""

    __slots__ = ("path", "argv", "envp", "_keep")

    def __init__(self, path: str, argv: list[str], envp: list[str]) -> None:
        self._keep = [os.fsencode(a) for a in argv] + [os.fsencode(e) for e in envp]
        self.path = os.fsencode(path)
        self.argv = (_C.c_char_p * (len(argv) + 1))(*self._keep[:len(argv)], None)
        self.envp = (_C.c_char_p * (len(envp) + 1))(*self._keep[len(argv):], None)


_execve = _libc.execve
_execve.restype = _C.c_int


def execve(args: ExecArgs) -> None:
    """Only returns by raising: execve(2) replaces the process on success."""
    _execve(args.path, args.argv, args.envp)
    err = _C.get_errno()
    raise OSError(err, os.strerror(err), os.fsdecode(args.path))


# --- seccomp ---------------------------------------------------------------------------
class SockFprog(_C.Structure):
    _fields_ = [("len", _C.c_ushort), ("filter", _C.c_void_p)]


def seccomp_set_mode_filter(program: bytes, flags: int = 0) -> int:
    """Load a classic-BPF program (bytes of struct sock_filter); returns the
    listener fd when flags ask for one (SECCOMP_FILTER_FLAG_NEW_LISTENER), else 0."""
    buf = _C.create_string_buffer(program, len(program))
    prog = SockFprog(len(program) // 8, _C.addressof(buf))
    return _check(_syscall(_NR["seccomp"], _C.c_uint(SECCOMP_SET_MODE_FILTER),
                           _C.c_uint(flags), _C.byref(prog)))


def seccomp_get_action_avail(action: int) -> bool:
    val = _C.c_uint32(action)
    try:
        _check(_syscall(_NR["seccomp"], _C.c_uint(SECCOMP_GET_ACTION_AVAIL), _C.c_uint(0),
                        _C.byref(val)))
    except OSError:
        return False
    return True


# --- bpf(2): cgroup device programs -------------------------------------------------
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2


def _bpf(cmd: int, attr: _C.Array) -> int:  # type: ignore[type-arg]
    return _check(_syscall(_NR["bpf"], _C.c_int(cmd), attr, _C.c_uint(_C.sizeof(attr))))


def bpf_prog_load(prog_type: int, insns: bytes, license: str, expected_attach_type: int = 0,
                  log_size: int = 65536) -> int:
    """Load an eBPF program; on EINVAL/EACCES the verifier log is in the OSError's filename."""
    code = _C.create_string_buffer(insns, len(insns))
    lic = _C.create_string_buffer(license.encode())
    log = _C.create_string_buffer(log_size)
    attr = _C.create_string_buffer(128)
    struct.pack_into("<IIQQIIQ", attr, 0, prog_type, len(insns) // 8, _C.addressof(code),
                     _C.addressof(lic), 1, log_size, _C.addressof(log))
    struct.pack_into("<I", attr, 68, expected_attach_type)
    res = _syscall(_NR["bpf"], _C.c_int(BPF_PROG_LOAD), attr, _C.c_uint(128))
    if res < 0:
        err = _C.get_errno()
        raise OSError(err, os.strerror(err), log.value.decode(errors="replace").strip() or None)
    return res


def bpf_prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    attr = _C.create_string_buffer(struct.pack("<IIII", target_fd, prog_fd, attach_type, flags), 32)
    _bpf(BPF_PROG_ATTACH, attr)


def bpf_prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    attr = _C.create_string_buffer(struct.pack("<IIII", target_fd, prog_fd, attach_type, 0), 32)
    _bpf(BPF_PROG_DETACH, attr)


def bpf_prog_query(target_fd: int, attach_type: int, max_ids: int = 64) -> list[int]:
    """IDs of the programs attached to a cgroup fd for `attach_type`."""
    ids = (_C.c_uint32 * max_ids)()
    attr = _C.create_string_buffer(40)
    struct.pack_into("<IIIIQI", attr, 0, target_fd, attach_type, 0, 0, _C.addressof(ids), max_ids)
    _bpf(BPF_PROG_QUERY, attr)
    count = struct.unpack_from("<I", attr, 24)[0]
    return list(ids[:count])


def bpf_prog_get_fd_by_id(prog_id: int) -> int:
    attr = _C.create_string_buffer(struct.pack("<III", prog_id, 0, 0), 16)
    return _bpf(BPF_PROG_GET_FD_BY_ID, attr)


# --- inotify (cgroup v2 memory.events watching) ---------------------------------------
IN_MODIFY = 0x2
IN_CLOEXEC = os.O_CLOEXEC
IN_NONBLOCK = os.O_NONBLOCK


def inotify_init1(flags: int = 0) -> int:
    return _check(_libc.inotify_init1(_C.c_int(flags)))


def inotify_add_watch(fd: int, path: str, mask: int) -> int:
    return _check(_libc.inotify_add_watch(_C.c_int(fd), _b(path), _C.c_uint32(mask)), path)


# --- security helpers (capabilities.py, sysctl.py, lsm.py, exeguard.py) ---------------
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4
PROC_SUPER_MAGIC = 0x9FA0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSOPEN_CLOEXEC = 0x1
FSMOUNT_CLOEXEC = 0x1


class _Statfs(_C.Structure):
    _fields_ = [("f_type", _C.c_long), ("f_bsize", _C.c_long), ("f_blocks", _C.c_ulong),
                ("f_bfree", _C.c_ulong), ("f_bavail", _C.c_ulong), ("f_files", _C.c_ulong),
                ("f_ffree", _C.c_ulong), ("f_fsid", _C.c_int * 2), ("f_namelen", _C.c_long),
                ("f_frsize", _C.c_long), ("f_flags", _C.c_long), ("f_spare", _C.c_long * 4)]


def fstatfs_type(fd: int) -> int:
    """f_type (the filesystem magic) of the filesystem `fd` lives on; os.fstatvfs lacks it."""
    buf = _Statfs()
    _check(_libc.fstatfs(_C.c_int(fd), _C.byref(buf)))
    return int(buf.f_type) & 0xFFFFFFFF


def fsopen(fstype: str, flags: int = FSOPEN_CLOEXEC) -> int:
    return _check(_syscall(_NR["fsopen"], _b(fstype), _C.c_uint(flags)), fstype)


def fsconfig(fd: int, cmd: int, key: str | None = None, value: str | None = None, aux: int = 0) -> None:
    _check(_syscall(_NR["fsconfig"], _C.c_int(fd), _C.c_uint(cmd), _b(key), _b(value),
                    _C.c_int(aux)), key)


def fsmount(fd: int, flags: int = FSMOUNT_CLOEXEC, attr_flags: int = 0) -> int:
    return _check(_syscall(_NR["fsmount"], _C.c_int(fd), _C.c_uint(flags), _C.c_uint(attr_flags)))


def seccomp_filter_flags_supported(flags: int) -> bool:
    """Whether the kernel knows these SECCOMP_FILTER_FLAG_* bits: it checks the flags
    before it reads the (NULL) program, so EFAULT means known and EINVAL unknown
    (the probe libseccomp uses)."""
    res = _syscall(_NR["seccomp"], _C.c_uint(SECCOMP_SET_MODE_FILTER), _C.c_uint(flags),
                   _C.c_void_p(0))
    if res >= 0:
        return True
    return _C.get_errno() == _EFAULT


_EFAULT = 14  # errno.EFAULT (this module keeps its imports minimal)


# --- scheduling, I/O priority, memory policy (process.scheduler/ioPriority, linux.memoryPolicy)
def ioprio_set(which: int, who: int, ioprio: int) -> None:
    _check(_syscall(_NR["ioprio_set"], _C.c_int(which), _C.c_int(who), _C.c_int(ioprio)))


class SchedAttr(_C.Structure):
    _fields_ = [("size", _C.c_uint32), ("sched_policy", _C.c_uint32), ("sched_flags", _C.c_uint64),
                ("sched_nice", _C.c_int32), ("sched_priority", _C.c_uint32),
                ("sched_runtime", _C.c_uint64), ("sched_deadline", _C.c_uint64),
                ("sched_period", _C.c_uint64)]


def sched_setattr(attr: SchedAttr) -> None:
    attr.size = _C.sizeof(SchedAttr)
    _check(_syscall(_NR["sched_setattr"], _C.c_int(0), _C.byref(attr), _C.c_uint(0)))


def set_mempolicy(mode: int, nodemask: int, maxnode: int) -> None:
    words = max(1, (maxnode + 63) // 64)
    mask = (_C.c_ulong * words)(*[(nodemask >> (64 * i)) & 0xFFFFFFFFFFFFFFFF for i in range(words)])
    _check(_syscall(_NR["set_mempolicy"], _C.c_int(mode), mask if nodemask else None,
                    _C.c_ulong(maxnode + 1 if nodemask else 0)))


# --- fork into new namespaces -------------------------------------------------------------
# PyDLL's functions: the GIL stays held, as in os.fork
_pythonapi = _Lib(_ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI)
_pysyscall = _Lib(_ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI | _ctypes.FUNCFLAG_USE_ERRNO).syscall
_pysyscall.restype = _C.c_long
_SIGCHLD = 17


def _forked(call) -> int:
    """Run a fork-like syscall as os.fork does (the interpreter's before/after-fork
    hooks); the child gets 0."""
    api = _pythonapi
    api.PyOS_BeforeFork()
    pid = call()
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    err = _C.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, os.strerror(err))
    return pid


def clone_fork(flags: int) -> int:
    """fork(2) that also creates the namespaces in `flags`, like os.fork (the
    interpreter's before/after-fork hooks run). The child gets 0; with
    CLONE_NEWPID it is pid 1 of the new namespace at once, which saves the
    intermediate process an unshare(CLONE_NEWPID) needs."""
    return _forked(lambda: _pysyscall(_NR["clone"], _C.c_ulong(flags | _SIGCHLD), None, None, None, None))


RENAME_NOREPLACE = 1 << 0
CLONE_INTO_CGROUP = 0x200000000


class _CloneArgs(_C.Structure):
    _fields_ = [(name, _C.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls",
        "set_tid", "set_tid_size", "cgroup")]


def clone_into_cgroup(cgroup_fd: int, flags: int = 0) -> int:
    """fork(2) whose child starts in the cgroup2 directory `cgroup_fd`
    (clone3 CLONE_INTO_CGROUP), like os.fork otherwise; `flags` adds CLONE_NEW*
    namespaces as clone_fork's do. No cgroup.procs write, so no migration under
    the global threadgroup lock (whose first writer waits for an RCU grace
    period, 10-20 ms here)."""
    args = _CloneArgs(flags=flags | CLONE_INTO_CGROUP, exit_signal=_SIGCHLD, cgroup=cgroup_fd)
    return _forked(lambda: _pysyscall(_NR["clone3"], _C.byref(args), _C.c_size_t(_C.sizeof(args))))


RENAME_EXCHANGE = 1 << 1


def renameat2(olddirfd: int, oldpath: str, newdirfd: int, newpath: str, flags: int = 0) -> None:
    """rename with flags: RENAME_NOREPLACE (claim a name atomically, EEXIST if taken),
    RENAME_EXCHANGE (swap two entries; the mount-race tests use it)."""
    _check(_libc.renameat2(_C.c_int(olddirfd), _b(oldpath), _C.c_int(newdirfd), _b(newpath),
                           _C.c_uint(flags)), oldpath)


NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3), linux/nsfs.h


def ns_get_nstype(fd: int) -> int:
    """The CLONE_NEW* type of the namespace file `fd` (ioctl NS_GET_NSTYPE)."""
    import fcntl

    return fcntl.ioctl(fd, NS_GET_NSTYPE)
