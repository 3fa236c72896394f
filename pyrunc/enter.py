"""Entering the container: the last steps of a process before execve, the same for init and exec.

Both init (after its rootfs is built) and the process of `pyrunc exec` (after
the intermediate joined the container's namespaces and cgroup) go through
this module, so a process is made one way (runc: standard_init and
setns_init share finalizeNamespace):

    terminal(...)       the pty of the container's devpts as stdio (tty.py);
                        init: after its mounts, with /dev/console; exec: first
    prepare(...)        rlimits, personality, scheduler/ioPriority/affinity,
                        the seccomp listener (if any), user + capabilities,
                        cwd (checked: CVE-2024-21626), HOME, the program
                        looked up, no_new_privs
    [init: ready, then wait on exec.fifo for `start`]
    finish(...)         LSM labels, the final CPU affinity, every fd but stdio
                        and --preserve-fds close-on-exec, Python's SIG_IGNs
                        reset, the seccomp filter, execve

Invariants (docs/SECURITY.md 4): the process is non-dumpable from the fork of
the intermediate until execve; nothing is imported here (everything was
imported before the fork, and import is sealed before the container's mount
namespace is entered); after the seccomp filter only execve runs.
"""

from __future__ import annotations

import _signal  # not `signal`: its enum conversions cost ms per run
import errno
import os
import resource
import _socket

from pyrunc import capabilities, fds, lsm, procattrs, sync, sysctl, syscalls as s, tty
from pyrunc.errors import PyruncError
from pyrunc.launch import Launch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

RLIMITS = {name: i for i, name in enumerate((  # asm-generic/resource.h numbering
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
    "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME"))}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PYTHON_IGNORED = (_signal.SIGPIPE, _signal.SIGXFSZ)  # the interpreter ignores these at startup


class Step(PyruncError):
    """A failure in the container's process that names its step."""


def prepare(launch: Launch, on_listener: Callable[[int | None], None]) -> None:
    """Everything up to no_new_privs; `on_listener` gets the seccomp notify fd
    (init hands it to create; an exec process shares init's listener)."""
    proc = launch.spec.process
    for rl in proc.rlimits:
        try:
            resource.setrlimit(RLIMITS[rl.type], (rl.soft, rl.hard))
        except (ValueError, OSError) as err:
            raise Step(f"setrlimit {rl.type} soft={rl.soft} hard={rl.hard}: {err}") from None
    if launch.personality is not None:
        s.personality(launch.personality)
    if launch.proc_attrs is not None:
        procattrs.apply(launch.proc_attrs)
    if launch.seccomp is not None and launch.seccomp.needs_notify:
        on_listener(launch.seccomp_load(launch.seccomp))  # the listener fd must reach create before ready
    _user(launch)
    cwd = proc.cwd or "/"
    try:
        os.chdir(cwd)
    except OSError as err:
        raise Step(f"chdir to cwd ({cwd!r}) set in config.json failed: {err.strerror}") from None
    fds.verify_cwd(cwd)  # CVE-2024-21626: a leaked host dir fd as cwd (`exec --cwd /proc/self/fd/N`)
    if "HOME" not in launch.env:
        launch.env["HOME"] = _home_of(proc.user.uid)
    if proc.args:  # none: config.json has no process, start reports it
        launch.exec_path = _look_path(proc.args[0], launch.env)
    if proc.no_new_privileges:
        s.prctl(s.PR_SET_NO_NEW_PRIVS, 1)


def finish(launch: Launch) -> None:
    """The labels, the fds, the filter, execve. Never returns."""
    _labels(launch)
    if launch.proc_attrs is not None:
        procattrs.apply_final(launch.proc_attrs)
    s.close_range(3 + launch.preserve_fds, 0xFFFFFFFF, s.CLOSE_RANGE_CLOEXEC)
    _seccomp_then_exec(launch, launch.exec_path)


def run_exec(launch: Launch, sock: _socket.socket) -> None:
    """`pyrunc exec`'s process, already in the container's namespaces and
    cgroup: the same steps as init, then execve. Never returns."""
    try:
        os.setsid()  # as runc's nsexec: the process leads its own group, so getpgrp() != 0
        if launch.console is not None:
            root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # the container's root
            try:
                terminal(launch, root_fd, console=False)
            finally:
                os.close(root_fd)
        prepare(launch, _close_listener)
        finish(launch)
    except BaseException as err:  # everything: report, then die
        sync.send_error(sock, err)
    os._exit(1)


def terminal(launch: Launch, root_fd: int, console: bool) -> None:
    """The pty (tty.setup): init binds it over /dev/console, exec does not. A master that
    comes back to this pyrunc (a foreground terminal: `parent` is set) is relayed by it."""
    c = launch.console
    fd, c.child_fd = c.child_fd, -1
    tty.setup(root_fd, fd, c.rows, c.cols, console, relayed=c.parent is not None)


def _late_seccomp(launch: Launch) -> bool:
    """The filter goes in right before execve unless it has a notify listener
    (its fd must reach create, which hands it to listenerPath)."""
    return launch.seccomp is not None and bool(launch.seccomp.program) and not launch.seccomp.needs_notify


def _user(launch: Launch) -> None:
    user = launch.spec.process.user
    plan = launch.caps
    if _late_seccomp(launch) and not launch.spec.process.no_new_privileges:
        # Without no_new_privs loading a filter needs CAP_SYS_ADMIN, and the
        # filter is loaded last: keep it in effective and permitted until then.
        # execve recomputes both from bounding, inheritable and ambient (which
        # stay as configured), so the process gets exactly what runc gives it.
        plan = capabilities.with_held(plan, capabilities.CAP_NUMBERS["CAP_SYS_ADMIN"])
    _fix_stdio(user.uid)
    capabilities.drop_bounding(plan)
    capabilities.set_keepcaps()
    if not launch.extra.get("keep_groups"):
        try:
            os.setgroups(list(user.additional_gids))
        except PermissionError:
            if user.additional_gids:
                raise Step("setgroups: not permitted (is setgroups denied in this user namespace?)") from None
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    capabilities.clear_keepcaps()
    capabilities.apply_sets(plan)
    capabilities.raise_ambient(plan)
    os.umask(user.umask if user.umask is not None else 0o022)


def _fix_stdio(uid: int) -> None:
    """Give stdin/stdout/stderr to the process user (runc fixStdioPermissions):
    they were opened outside the container, and a non-root process must be
    able to reopen /proc/self/fd/1 and the like. Only the uid changes; a
    descriptor on /dev/null, or one the kernel will not let us chown (owner
    unmapped, read-only), is left alone as runc does."""
    try:
        null = os.stat("/dev/null").st_rdev
    except OSError:
        null = None
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue  # closed by the caller
        if st.st_uid == uid or (null is not None and st.st_rdev == null):
            continue
        try:
            os.fchown(fd, uid, -1)
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.EPERM, errno.EROFS):
                raise Step(f"chown stdio fd {fd} to uid {uid}: {err.strerror}") from None


def _home_of(uid: int) -> str:
    """HOME from the container's /etc/passwd, "/" when absent (runc)."""
    try:
        with open("/etc/passwd", "rb") as f:
            data = f.read()
    except OSError:
        data = b""  # no passwd file in the image: home_from_passwd's default is runc's
    return home_from_passwd(data, uid)


def home_from_passwd(data: bytes, uid: int) -> str:
    """The home directory of `uid` in a passwd file's bytes, "/" when absent
    (runc); shared with `pyrunc explain`, which reads the rootfs's file."""
    for line in data.splitlines():
        parts = line.split(b":")
        if len(parts) >= 6 and parts[2] == str(uid).encode():
            return parts[5].decode(errors="replace") or "/"
    return "/"


def _look_path(arg0: str, env: dict[str, str]) -> str:
    """runc's exec.LookPath in the container root, before ready, so that a
    missing binary fails `create`, not `start`."""
    if "/" in arg0:
        candidates = [arg0]
    else:
        candidates = [os.path.join(d or ".", arg0) for d in env.get("PATH", DEFAULT_PATH).split(":")]
    denied = False
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_mode & 0o170000) == 0o100000 and os.access(path, os.X_OK):
            return path
        denied = True
    if "/" not in arg0:
        detail = "executable file not found in $PATH"
    else:  # Go's findExecutable: there but not an executable file is EPERM's text, not ENOENT's
        detail = "permission denied" if denied else "no such file or directory"
    raise Step(f'exec: "{arg0}": {detail}')


def _seccomp_then_exec(launch: Launch, path: str) -> None:
    """The filter, then execve and nothing else: the C arrays are built first."""
    args = s.ExecArgs(path, list(launch.spec.process.args), [f"{k}={v}" for k, v in launch.env.items()])
    for sig in _PYTHON_IGNORED:  # execve keeps SIG_IGN: the process gets the defaults, as runc's
        _signal.signal(sig, _signal.SIG_DFL)
    if _late_seccomp(launch):
        launch.seccomp_load(launch.seccomp)
    try:
        s.execve(args)
    except OSError as err:
        raise Step(f'exec: "{launch.spec.process.args[0]}": {err.strerror.lower()}') from None


def _close_listener(fd: int | None) -> None:
    if fd:
        os.close(fd)  # exec'd processes share init's listener; nothing to hand over


def _labels(launch: Launch) -> None:
    """AppArmor profile / SELinux label for the execve, through a verified procfs."""
    proc = launch.spec.process
    if not proc.apparmor_profile and not proc.selinux_label:
        return
    proc_fd = sysctl.trusted_proc()
    try:
        lsm.apply_exec_labels(proc_fd, proc.apparmor_profile, proc.selinux_label)
    finally:
        os.close(proc_fd)
