"""The container's init: the ordered in-container sequence up to execve.

Runs as pid 1 of the new pid namespace, a forked child of the runtime (never a
re-exec). Invariants:
- Non-dumpable from the intermediate's first instruction to execve, so no
  container process can open /proc/<init>/{exe,fd,mem} (the host interpreter).
- Nothing is imported here after pivot_root: every module this file needs is
  imported at the top or by create.py before fork; after pivot_root it only
  makes syscalls on data it already has.
- Every failure reaches a caller: until `start` releases init it is sent on
  the sync socket (create reports it); after that it is written to exec.fifo,
  which `start` (or `run`) reads until EOF, and EOF without text means init
  exec'd (the write end is close-on-exec).
- After the seccomp filter is loaded nothing but execve runs (runc loads it as
  late as it can; here it is always the last step, see _late_seccomp): a
  profile may deny any syscall init would still make, and a denied one would
  kill init unseen.
"""

from __future__ import annotations

import _signal  # not `signal`: its enum conversions cost ms per run
import errno
import fcntl
import os
import resource
import _socket
import struct

from pyrunc import capabilities, exeguard, fds, hooks, lifeline, lsm, procattrs, rootfs, safepath, sync, syscalls as s, tty
from pyrunc.errors import ConfigError, PyruncError
from pyrunc.launch import Launch

RLIMITS = {name: i for i, name in enumerate((  # asm-generic/resource.h numbering
    "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
    "RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
    "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME"))}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
_PYTHON_IGNORED = (_signal.SIGPIPE, _signal.SIGXFSZ)  # the interpreter ignores these at startup


class Step(PyruncError):
    """An init failure that names its step."""


def run(launch: Launch, sock: _socket.socket) -> None:
    """Never returns: execs the user process or exits 1 after reporting."""
    try:
        s.set_comm(sync.INIT_COMM)
        _setup(launch, sock)
        _detached(sock)
        _wait_and_exec(launch, sock)
    except BaseException as err:  # everything, even KeyboardInterrupt: report, then die
        _report(launch, sock, err)
    os._exit(1)


def _report(launch: Launch, sock: _socket.socket, err: BaseException) -> None:
    """To `start` through exec.fifo once it released init, else to create."""
    fd = launch.extra.get("fifo_w")
    if fd is None:
        sync.send_error(sock, err)
        return
    try:
        os.write(fd, sync.error_text(err).encode(errors="replace"))
    except OSError:
        pass  # start died with us; the exit status and `state` still say stopped


def _late_seccomp(launch: Launch) -> bool:
    """The filter goes in right before execve unless it has a notify listener
    (its fd must reach create, which hands it to listenerPath)."""
    return launch.seccomp is not None and bool(launch.seccomp.program) and not launch.seccomp.needs_notify


def _setup(launch: Launch, sock: _socket.socket) -> None:
    spec, proc = launch.spec, launch.spec.process
    os.setsid()
    _uts(launch)
    if launch.ns.has("network") and launch.new_netns:
        _loopback_up()
    if launch.oom_score_adj is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(launch.oom_score_adj))
    if launch.ns.has("mount"):
        _build_rootfs(launch, sock)
    else:
        _build_rootfs_in_host_ns(launch, sock)
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
        _load_seccomp(launch, sock)  # the listener fd must reach create before ready
    _user(launch)
    cwd = proc.cwd or "/"
    try:
        os.chdir(cwd)
    except OSError as err:
        raise Step(f"chdir to cwd ({cwd!r}) set in config.json failed: {err.strerror}") from None
    fds.verify_cwd(cwd)  # CVE-2024-21626: a leaked host dir fd as cwd
    if "HOME" not in launch.env:
        launch.env["HOME"] = _home_of(proc.user.uid)
    if proc.args:  # none: config.json has no process, start reports it
        launch.exec_path = _look_path(proc.args[0], launch.env)
    if proc.no_new_privileges:
        s.prctl(s.PR_SET_NO_NEW_PRIVS, 1)
    sync.send(sock, "ready")


def _detached(sock: _socket.socket) -> None:
    """create has saved the container: from here on init outlives it (lifeline.py)."""
    sync.expect(sock, "created")
    lifeline.disarm()
    sync.send(sock, "detached")


def _uts(launch: Launch) -> None:
    spec = launch.spec
    for value, setter, name in ((spec.hostname, s.sethostname, "hostname"),
                                (spec.domainname, s.setdomainname, "domainname")):
        if value is None:
            continue
        if not launch.ns.has("uts"):
            raise ConfigError(f".{name}", "unable to set a hostname without a private UTS namespace")
        setter(value)


def _loopback_up() -> None:
    sk = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        ifreq = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(sk.fileno(), SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(sk.fileno(), SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))
    finally:
        sk.close()


def _build_rootfs_in_host_ns(launch: Launch, sock: _socket.socket) -> None:
    """No mount namespace: the container still lives in its rootfs (chroot, as
    runc and crun), and the config's mounts are made there, in the host's
    mount namespace, as runc does. They are recorded (mount id and point) in
    the state dir, so `delete` detaches exactly these and nothing else; a
    failure here detaches them at once."""
    if launch.spec.root.readonly:
        raise ConfigError(".root.readonly", "needs a mount namespace: the remount would make the host's "
                          "mount of the rootfs read-only")
    before = rootfs.mounts_under(launch.rootfs)
    root_fd = os.open(launch.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _populate(launch, sock, root_fd)
        rootfs.record_host_mounts(launch.fifo_fd, before, launch.rootfs)
    except BaseException:
        rootfs.detach_new_mounts(before, launch.rootfs)
        raise
    finally:
        os.close(root_fd)
    exeguard.seal_imports()
    rootfs.chroot(launch.rootfs)


def _build_rootfs(launch: Launch, sock: _socket.socket) -> None:
    spec = launch.spec
    linux = spec.linux
    root_fd = rootfs.prepare_root(launch.rootfs, linux.rootfs_propagation if linux else None)
    try:
        _populate(launch, sock, root_fd)
        if spec.root.readonly:
            rootfs.remount_readonly(root_fd, "/")
    finally:
        os.close(root_fd)
    # From here on the image's files are what a path import would find: refuse
    # every import that is not already loaded (SECURITY.md 4b).
    exeguard.seal_imports()
    rootfs.pivot(launch.rootfs, launch.no_pivot)
    rootfs.apply_root_propagation(linux.rootfs_propagation if linux else None)


def _populate(launch: Launch, sock: _socket.socket, root_fd: int) -> None:
    """mounts, /dev, hooks barrier, createContainer hooks, sysctls, masks, cwd."""
    spec = launch.spec
    linux = spec.linux
    for i, m in enumerate(spec.mounts):
        rootfs.mount_entry(root_fd, m, i, launch.bundle, launch.ns.has("cgroup"), launch.ns.new_user,
                           launch.cgroup_dirs, launch.mount_fds.get(i))
    if not rootfs.bind_dev_mounted(spec.mounts):
        rootfs.create_devices(root_fd, linux.devices if linux else (), launch.ns.new_user or
                              bool(launch.ns.join and launch.ns.join[0][0] == "user"))
        rootfs.dev_symlinks(root_fd)
    if launch.has_runtime_hooks:
        _hooks_barrier(launch, sock)
    if spec.hooks.create_container:
        hooks.run_all("createContainer", spec.hooks.create_container, launch.hook_state)
    if launch.sysctl_writer is not None:
        launch.sysctl_writer(root_fd)
    if linux:
        rootfs.readonly_paths(root_fd, linux.readonly_paths)
        rootfs.mask_paths(root_fd, linux.masked_paths)
    if spec.process.cwd:
        rootfs.make_cwd(root_fd, spec.process.cwd)
    if launch.console is not None:  # after the config's mounts, as runc: its devpts is the one used
        _terminal(launch, root_fd, console=True)


def _terminal(launch: Launch, root_fd: int, console: bool) -> None:
    c = launch.console
    fd, c.child_fd = c.child_fd, -1
    tty.setup(root_fd, fd, c.rows, c.cols, console)


def _hooks_barrier(launch: Launch, sock: _socket.socket) -> None:
    """Let the parent run prestart/createRuntime hooks; it answers with the
    state JSON (with init's host pid) for the hooks init runs itself."""
    sync.send(sock, "hooks")
    msg, _ = sync.expect(sock, "hooks-done")
    launch.hook_state = msg["state"].encode()


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
            for line in f:
                parts = line.split(b":")
                if len(parts) >= 6 and parts[2] == str(uid).encode():
                    return parts[5].decode(errors="replace") or "/"
    except OSError:
        pass  # no passwd file in the image: the default below is runc's
    return "/"


def _look_path(arg0: str, env: dict[str, str]) -> str:
    """runc's exec.LookPath in the container root, before ready, so that a
    missing binary fails `create`, not `start`."""
    if "/" in arg0:
        candidates = [arg0]
    else:
        candidates = [os.path.join(d or ".", arg0) for d in env.get("PATH", DEFAULT_PATH).split(":")]
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_mode & 0o170000) == 0o100000 and os.access(path, os.X_OK):
            return path
    where = "" if "/" in arg0 else " in $PATH"
    detail = "no such file or directory" if "/" in arg0 else "executable file not found" + where
    raise Step(f'exec: "{arg0}": {detail}')


def _load_seccomp(launch: Launch, sock: _socket.socket) -> None:
    fd = launch.seccomp_load(launch.seccomp)
    if fd:
        sync.send(sock, "seccomp", fds=[fd])
        os.close(fd)


def _wait_and_exec(launch: Launch, sock: _socket.socket) -> None:
    if launch.fifo_fd is not None:
        # Kept open (close-on-exec) after the byte: `start` reads on to EOF,
        # and any failure from here on is written to it (see _report).
        fd = os.open(safepath.fd_path(launch.fifo_fd), os.O_WRONLY | os.O_CLOEXEC)
        launch.extra["fifo_w"] = fd
        os.write(fd, b"0")
        os.close(launch.fifo_fd)
        sock.close()  # create is gone or waits on the fifo too (run)
    if not launch.spec.process.args:
        raise ConfigError(".process", "is not set: there is no process to start")
    if launch.spec.hooks.start_container:
        hooks.run_all("startContainer", launch.spec.hooks.start_container, launch.hook_state)
    _labels(launch)
    if launch.proc_attrs is not None:
        procattrs.apply_final(launch.proc_attrs)
    s.close_range(3 + launch.preserve_fds, 0xFFFFFFFF, s.CLOSE_RANGE_CLOEXEC)
    _seccomp_then_exec(launch, launch.exec_path)


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


def run_exec(launch: Launch, sock: _socket.socket) -> None:
    """`pyrunc exec`'s process, already in the container's namespaces and
    cgroup: the same privilege steps as init, then execve. Never returns."""
    try:
        os.setsid()  # as runc's nsexec: the process leads its own group, so getpgrp() != 0
        if launch.console is not None:
            root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # the container's root
            try:
                _terminal(launch, root_fd, console=False)
            finally:
                os.close(root_fd)
        proc = launch.spec.process
        for rl in proc.rlimits:
            resource.setrlimit(RLIMITS[rl.type], (rl.soft, rl.hard))
        if launch.proc_attrs is not None:
            procattrs.apply(launch.proc_attrs)
        if launch.seccomp is not None and launch.seccomp.needs_notify:
            _close_listener(launch.seccomp_load(launch.seccomp))
        _user(launch)
        try:
            os.chdir(proc.cwd or "/")
        except OSError as err:
            raise Step(f"chdir to cwd ({proc.cwd!r}) failed: {err.strerror}") from None
        fds.verify_cwd(proc.cwd)  # CVE-2024-21626: `exec --cwd /proc/self/fd/N`
        if "HOME" not in launch.env:
            launch.env["HOME"] = _home_of(proc.user.uid)
        path = _look_path(proc.args[0], launch.env)
        if proc.no_new_privileges:
            s.prctl(s.PR_SET_NO_NEW_PRIVS, 1)
        _labels(launch)
        if launch.proc_attrs is not None:
            procattrs.apply_final(launch.proc_attrs)
        s.close_range(3 + launch.preserve_fds, 0xFFFFFFFF, s.CLOSE_RANGE_CLOEXEC)
        _seccomp_then_exec(launch, path)
    except BaseException as err:  # everything: report, then die
        sync.send_error(sock, err)
    os._exit(1)


def _close_listener(fd: int | None) -> None:
    if fd:
        os.close(fd)  # exec'd processes share init's listener; nothing to hand over


def _labels(launch: Launch) -> None:
    """AppArmor profile / SELinux label for the execve, through a verified procfs."""
    proc = launch.spec.process
    if not proc.apparmor_profile and not proc.selinux_label:
        return
    from pyrunc import sysctl  # imported by create.py before fork when labels are set

    proc_fd = sysctl.trusted_proc()
    try:
        lsm.apply_exec_labels(proc_fd, proc.apparmor_profile, proc.selinux_label)
    finally:
        os.close(proc_fd)
