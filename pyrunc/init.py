"""The container's init: the ordered in-container sequence up to execve.

init builds the container (hostname, loopback, rootfs, hooks, sysctl, masks,
the terminal) and then enters it as every process does (enter.py: the same
steps as `pyrunc exec`'s process), with the wait for `start` in between.

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
  late as it can; here it is always the last step, see enter._late_seccomp): a
  profile may deny any syscall init would still make, and a denied one would
  kill init unseen.
"""

from __future__ import annotations

import fcntl
import os
import _socket
import struct

from pyrunc import INIT_COMM, enter, exeguard, hooks, lifeline, rootfs, safepath, sync, syscalls as s
from pyrunc.cgroups.common import join_self
from pyrunc.errors import ConfigError
from pyrunc.launch import Launch

SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def run(launch: Launch, sock: _socket.socket) -> None:
    """Never returns: execs the user process or exits 1 after reporting."""
    try:
        s.set_comm(INIT_COMM)
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


def _setup(launch: Launch, sock: _socket.socket) -> None:
    _join_cgroups(launch)
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
    enter.prepare(launch, lambda fd: _send_listener(sock, fd))
    sync.send(sock, "ready")


def _join_cgroups(launch: Launch) -> None:
    """Into the container's v1 cgroups, before anything else (process._clone_init:
    create then makes no cgroup.procs write, whose global lock waits for an RCU
    grace period). init is one thread: moving it (`tasks`) moves the process."""
    join = launch.extra.get("init_joins")
    if join:  # tolerant as the manager's add()
        join_self(*join, bool(getattr(launch.cgroup, "optional", False)), "the container's init")


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
    before = rootfs.mounts_under(launch.rootfs)
    root_fd = os.open(launch.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _populate(launch, sock, root_fd)  # root.readonly was refused by rootfs.plan
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
        rootfs.execute(root_fd, launch.rootfs_ops, rootfs.LAST)
    finally:
        os.close(root_fd)
    # From here on the image's files are what a path import would find: refuse
    # every import that is not already loaded (SECURITY.md 4b).
    exeguard.seal_imports()
    rootfs.pivot(launch.rootfs, launch.no_pivot)
    rootfs.apply_root_propagation(linux.rootfs_propagation if linux else None)


def _populate(launch: Launch, sock: _socket.socket, root_fd: int) -> None:
    """The rootfs plan's mounts and /dev, hooks barrier, createContainer hooks,
    sysctls, then its read-only and masked paths and cwd, the console."""
    spec = launch.spec
    rootfs.execute(root_fd, launch.rootfs_ops, rootfs.BUILD, mount_fds=launch.mount_fds,
                   cgroup_dirs=launch.cgroup_dirs)
    if launch.has_runtime_hooks:
        _hooks_barrier(launch, sock)
    if spec.hooks.create_container:
        hooks.run_all("createContainer", spec.hooks.create_container, launch.hook_state)
    if launch.sysctl_writer is not None:
        launch.sysctl_writer(root_fd)
    rootfs.execute(root_fd, launch.rootfs_ops, rootfs.AFTER_HOOKS)
    if launch.console is not None:  # after the config's mounts, as runc: its devpts is the one used
        enter.terminal(launch, root_fd, console=True)


def _hooks_barrier(launch: Launch, sock: _socket.socket) -> None:
    """Let the parent run prestart/createRuntime hooks; it answers with the
    state JSON (with init's host pid) for the hooks init runs itself."""
    sync.send(sock, "hooks")
    msg, _ = sync.expect(sock, "hooks-done")
    launch.hook_state = msg["state"].encode()


def _send_listener(sock: _socket.socket, fd: int | None) -> None:
    """The seccomp notify fd goes to create, which hands it to listenerPath."""
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
    enter.finish(launch)


