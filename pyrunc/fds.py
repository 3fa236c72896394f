"""File descriptor hygiene and the cwd check before the container's execve.

CVE-2024-21626: runc's init kept an fd to the host's /sys/fs/cgroup open, and
`process.cwd = "/proc/self/fd/7"` put the container's cwd on the host. Two
rules close it, and init applies both, in this order:

    close_fds_before_exec(preserve, keep)   before chdir(process.cwd)
    os.chdir(cwd); verify_cwd(cwd)           right after the chdir

`close_fds_before_exec` closes every fd >= 3 + preserve that init does not
still need, and marks the ones it still needs (the exec.fifo, the sync socket)
close-on-exec, so nothing of the host reaches the container: not at exec, and
not through /proc/<init>/fd while init waits in the fifo. fds 3 .. 3+preserve-1
(`--preserve-fds`, `LISTEN_FDS`) are made inheritable; they are the only
exceptions (runc `UnsafeCloseFrom(PassedFilesCount+3)`).

`verify_cwd` is runc's `verifyCwd`: a cwd outside the current root reads back
from getcwd(2) as "(unreachable)/..." which glibc turns into ENOENT.

Pure syscalls, no imports after module load: init calls these after pivot_root.
"""

from __future__ import annotations

import os
TYPE_CHECKING = False  # collections.abc would import collections on the run hot path
if TYPE_CHECKING:
    from collections.abc import Iterable

from pyrunc import syscalls
from pyrunc.errors import KernelError, SecurityError

FIRST_FD = 3


def close_fds_before_exec(preserve: int = 0, keep: Iterable[int] = ()) -> None:
    """Close every fd >= 3+preserve except `keep`; mark `keep` CLOEXEC; make the preserved fds inheritable."""
    first = FIRST_FD + preserve
    kept = sorted({fd for fd in keep if fd >= first})
    start = first
    for fd in kept:
        if fd > start:
            syscalls.close_range(start, fd - 1)
        os.set_inheritable(fd, False)
        start = fd + 1
    syscalls.close_range(start)
    for fd in range(FIRST_FD, first):
        try:
            os.set_inheritable(fd, True)
        except OSError as err:
            raise KernelError("preserve fd", err.errno or 9, str(fd)) from None


def open_fds(pid: int | str = "self") -> list[int]:
    """The fd numbers a process has open (for checks and tests)."""
    return sorted(int(name) for name in os.listdir(f"/proc/{pid}/fd"))


def verify_cwd(expected: str | None = None) -> str:
    """Refuse a cwd outside the container's root (CVE-2024-21626); returns getcwd()."""
    try:
        cwd = os.getcwd()
    except FileNotFoundError:
        raise SecurityError(f"process.cwd {expected or ''}: current working directory is outside of "
                            "the container mount namespace root -- possible container breakout detected"
                            ) from None
    if not cwd.startswith("/"):
        raise SecurityError(f"process.cwd {expected or ''}: getcwd returned a non-absolute path {cwd!r}")
    return cwd
