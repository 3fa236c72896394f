"""`process.apparmorProfile` and `process.selinuxLabel`: checked in the parent, applied in init.

Parent (`check_lsm`, before any fork): a label asked for on a host whose LSM is
not enabled is an error naming the field and what is missing. runc refuses a
selinuxLabel the same way ("selinux label is specified in config, but selinux
is disabled or not supported"); for AppArmor runc 1.1 fails later, writing
/proc/self/attr/exec (EINVAL). Running unconfined when confinement was asked
for is never an option.

Init (`apply_exec_labels`, just before the uid change and execve): the label
is written to the *exec* attribute of init's own thread, so it takes effect at
the next execve -- the container's process. AppArmor: "exec <profile>" to
attr/apparmor/exec (attr/exec on kernels without the per-LSM directory).
SELinux: the label to attr/exec. Every write goes through the trusted procfs
handle of sysctl.trusted_proc(), following no symlink (`thread-self` is
resolved by readlink against that same handle), checked to be procfs: a fake
/proc, a symlinked /proc or a bind over attr/exec cannot swallow the label
(CVE-2019-16884, CVE-2019-19921, CVE-2023-28642, CVE-2025-52881).
"""

from __future__ import annotations

import os
TYPE_CHECKING = False  # collections.abc would import collections on the run hot path
if TYPE_CHECKING:
    from collections.abc import Callable

from pyrunc import sysctl
from pyrunc.errors import KernelError, MissingFeature

APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
SELINUX_ENFORCE = "/sys/fs/selinux/enforce"


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace").strip()
    except OSError:
        return None


def apparmor_enabled(read: Callable[[str], str | None] = _read) -> bool:
    return (read(APPARMOR_ENABLED) or "").startswith("Y")


def selinux_enabled(exists: Callable[[str], bool] = os.path.exists) -> bool:
    return exists(SELINUX_ENFORCE)


def check_lsm(apparmor_profile: str | None, selinux_label: str | None,
              apparmor: bool | None = None, selinux: bool | None = None) -> None:
    """Refuse labels the host cannot apply (parent side)."""
    if apparmor_profile:
        if apparmor is None:
            apparmor = apparmor_enabled()
        if not apparmor:
            raise MissingFeature("process.apparmorProfile",
                                 f"profile {apparmor_profile!r} is set but AppArmor is not enabled "
                                 f"on this host ({APPARMOR_ENABLED} is not Y)")
    if selinux_label:
        if selinux is None:
            selinux = selinux_enabled()
        if not selinux:
            raise MissingFeature("process.selinuxLabel",
                                 "selinux label is specified in config, but selinux is disabled or "
                                 f"not supported ({SELINUX_ENFORCE} is missing)")


def _thread_attr(proc_fd: int) -> str:
    """`PID/task/TID/attr` of the calling thread, as numbered in `proc_fd`'s instance."""
    try:
        return os.readlink("thread-self", dir_fd=proc_fd) + "/attr"
    except OSError as err:
        raise KernelError("readlink", err.errno or 2, "/proc/thread-self") from None


def apply_exec_labels(proc_fd: int, apparmor_profile: str | None, selinux_label: str | None) -> None:
    """In init: set the labels the container's process gets at execve."""
    if not apparmor_profile and not selinux_label:
        return
    attr = _thread_attr(proc_fd)
    if apparmor_profile:
        target = f"{attr}/apparmor/exec"
        try:
            fd = sysctl.open_proc_file(proc_fd, target)
        except KernelError as err:
            if err.errno != 2:  # ENOENT: a kernel without attr/apparmor/
                raise
            fd = sysctl.open_proc_file(proc_fd, f"{attr}/exec")
        _write(fd, f"exec {apparmor_profile}", "process.apparmorProfile")
    if selinux_label:
        _write(sysctl.open_proc_file(proc_fd, f"{attr}/exec"), selinux_label, "process.selinuxLabel")


def _write(fd: int, value: str, field: str) -> None:
    try:
        os.write(fd, value.encode())
    except OSError as err:
        raise KernelError(f"{field}: write attr/exec", err.errno or 22, None, value) from None
    finally:
        os.close(fd)
