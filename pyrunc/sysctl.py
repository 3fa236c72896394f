"""`linux.sysctl`: validated in the parent, written in init through a verified procfs.

Validation (runc `validate.sysctl`): only sysctls that live in a namespace the
container owns are allowed, so a container cannot change the host:
  * kernel.msgmax msgmnb msgmni sem shmall shmmax shmmni shm_rmid_forced and
    fs.mqueue.*   -- need a new ipc namespace
  * net.*         -- need a new network namespace (not the host's, not by path to it)
  * kernel.domainname -- needs a new uts namespace; kernel.hostname is refused
    because it conflicts with the OCI `hostname` field (as runc)
Anything else (kernel.core_pattern, vm.*, ...) is an error. Keys are dotted
names; a key with "/", an empty component, ".", "..", NUL or whitespace is
refused before any rule is looked at (CVE-2025-52881: `kernel/../../sysrq-trigger`).

Writing (CVE-2025-52881, CVE-2019-16884): init never writes through a path
string under the container's /proc, which hostile mounts may have replaced.
It opens `trusted_proc()` -- a private, detached procfs instance from
fsopen("proc")/fsmount that no container mount can cover -- and every file is
reached from it with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
RESOLVE_NO_MAGICLINKS|RESOLVE_NO_XDEV), then checked with fstatfs to be procfs.
Sysctl writes act on the namespaces of the *writing task*, so the instance's
pid namespace does not matter. The same handle serves lsm.py.
"""

from __future__ import annotations

import errno
import os
TYPE_CHECKING = False  # collections.abc would import collections on the run hot path
if TYPE_CHECKING:
    from collections.abc import Mapping

from pyrunc import syscalls
from pyrunc.errors import ConfigError, KernelError, MissingFeature, SecurityError

IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                         "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})
_RESOLVE = (syscalls.RESOLVE_BENEATH | syscalls.RESOLVE_NO_SYMLINKS | syscalls.RESOLVE_NO_MAGICLINKS
            | syscalls.RESOLVE_NO_XDEV)
PROC_ROOT_INO = 1
_BAD_CHARS = frozenset("/\0 \t\n\r")


def _field(key: str) -> str:
    return f".linux.sysctl[{key!r}]"


def key_to_path(key: str) -> str:
    """`net.ipv4.ip_forward` -> `net/ipv4/ip_forward`, refusing path tricks."""
    if not key or any(ch in _BAD_CHARS for ch in key):
        raise ConfigError(_field(key), "sysctl key must be a dotted name without '/', NUL or spaces")
    parts = key.split(".")
    if any(part in ("", ".", "..") for part in parts):
        raise ConfigError(_field(key), "sysctl key has an empty component or '..'")
    return "/".join(parts)


def validate_sysctl(sysctl: Mapping[str, str], new_namespaces: set[str],
                    host_netns: bool = False) -> dict[str, str]:
    """Check every key; returns {relative path under /proc/sys: value} in config order.

    `new_namespaces` holds the namespace types the container does not share with
    the host ("ipc", "network", "uts"); `host_netns` is True when the network
    namespace is given by a path that is the host's own.
    """
    plan: dict[str, str] = {}
    for key, value in sysctl.items():
        path = key_to_path(key)
        if "\0" in value:
            raise ConfigError(_field(key), "sysctl value contains NUL")
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if "ipc" not in new_namespaces:
                raise ConfigError(_field(key), "sysctl is not allowed in the host's ipc namespace")
        elif key.startswith("net."):
            if "network" not in new_namespaces or host_netns:
                raise ConfigError(_field(key), "sysctl is not allowed in the host's network namespace")
        elif key == "kernel.domainname":
            if "uts" not in new_namespaces:
                raise ConfigError(_field(key), "sysctl is not allowed in the host's uts namespace")
        elif key == "kernel.hostname":
            raise ConfigError(_field(key), "sysctl is not allowed as it conflicts with the OCI 'hostname' field")
        else:
            raise ConfigError(_field(key), "sysctl is not in a separate kernel namespace")
        plan[path] = value
    return plan


def trusted_proc() -> int:
    """A procfs handle that container mounts cannot cover; verified procfs.

    Call it in init before any mount of the config is made. Prefers a detached
    fsmount instance; where the kernel refuses a new procfs (a user namespace
    sharing the host's pid namespace), falls back to the /proc that init
    inherited, which is still the host's at that point and checked to be the
    root of a procfs.
    """
    try:
        ctx = syscalls.fsopen("proc")
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EACCES):
            raise MissingFeature("fsopen(proc)", os.strerror(err.errno or 38)) from None
        return _inherited_proc()
    try:
        syscalls.fsconfig(ctx, syscalls.FSCONFIG_CMD_CREATE)
        fd = syscalls.fsmount(ctx)
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EACCES):
            raise KernelError("fsmount", err.errno or 1, "proc") from None
        return _inherited_proc()
    finally:
        os.close(ctx)
    check_procfs(fd, "proc")
    return fd


def _inherited_proc() -> int:
    fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        check_procfs(fd, "/proc")
        if os.fstat(fd).st_ino != PROC_ROOT_INO:
            raise SecurityError("/proc: not the root of a procfs mount")
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_procfs(fd: int, what: str) -> None:
    """Raise unless `fd` lives on procfs (CVE-2019-16884: a fake /proc)."""
    magic = syscalls.fstatfs_type(fd)
    if magic != syscalls.PROC_SUPER_MAGIC:
        raise SecurityError(f"{what}: not on procfs (f_type {magic:#x}): refusing to write")


def open_proc_file(proc_fd: int, path: str, flags: int = os.O_WRONLY) -> int:
    """Open `path` under a procfs handle without following any link or crossing a mount."""
    try:
        fd = syscalls.openat2(proc_fd, path, flags | os.O_CLOEXEC | os.O_NOFOLLOW, 0, _RESOLVE)
    except OSError as err:
        raise KernelError("openat2", err.errno or 2, f"/proc/{path}") from None
    try:
        check_procfs(fd, f"/proc/{path}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_proc_file(proc_fd: int, path: str, value: str) -> None:
    fd = open_proc_file(proc_fd, path)
    try:
        os.write(fd, value.encode())
    except OSError as err:
        raise KernelError("write", err.errno or 5, f"/proc/{path}") from None
    finally:
        os.close(fd)


def write_sysctls(proc_fd: int, plan: Mapping[str, str]) -> None:
    """In init, in the container's namespaces: write each validated sysctl."""
    for path, value in plan.items():
        write_proc_file(proc_fd, f"sys/{path}", value)
