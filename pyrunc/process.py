"""Spawning a process into a container, for create and exec alike: fork the
intermediate, which joins the cgroup and the namespaces (making the new ones
for create) and forks the process; answer the children's requests (id maps,
hooks, seccomp listener fd) until init reports ready (`spawn`), or until the
exec'd process's pid is known (`spawn_into`).

Why an intermediate: setns/unshare(CLONE_NEWPID) only affect children, and
the user namespace must exist (with its maps written by the parent) before
the other namespaces are made so that they belong to it.

The intermediate of either kind is non-dumpable from its first instruction;
the one entering a running container seals imports before it joins the
container's mount namespace (docs/SECURITY.md 4b).
"""

from __future__ import annotations

import os
import _socket

from pyrunc import enter, exeguard, lifeline, monitor, namespaces, sync, syscalls as s
from pyrunc.errors import KernelError
from pyrunc.launch import Launch


def spawn(launch: Launch, on_hooks=None, on_pid=None):
    """Start init; returns (init pid, seccomp notify fd or None, the sync
    socket) once init is ready. init then waits for `detach()`. `on_pid(pid)`
    runs once init's pid is known and init is in its cgroup, or joins it first
    thing (_clone_init; create records it
    in the state; until then init's parent-death signal is what covers it).
    Raises ChildError with the child's message on failure (the caller's undo
    stack kills whatever is left)."""
    from pyrunc import init  # here, not at the top: exec never needs it (imported before any fork)

    parent_sock, child_sock = sync.pair()
    try:
        if _direct(launch):
            pid, joins = _clone_init(launch)
            if pid == 0:
                lifeline.arm()  # first: a SIGKILLed create takes init with it
                parent_sock.close()
                lifeline.check(child_sock)
                s.prctl(s.PR_SET_DUMPABLE, 0)
                if joins is not None:  # init.run joins them first (`tasks`); not "cgroup_join",
                    launch.extra["init_joins"] = (joins, "")  # which an intermediate has done already
                init.run(launch, child_sock)
            child_sock.close()
            launch.extra["init_pid"] = pid
            if joins is None:
                _placed(launch, pid)  # the cgroup write's RCU wait overlaps init's work (in part)
            if on_pid is not None:
                on_pid(pid)
            pid, notify_fd = _serve(launch, parent_sock, 0, on_hooks, pid)
        else:
            early = launch.cgroup is not None and _joins_cgroup_early(launch)
            v1, v2 = _cgroup_dirs(launch.cgroup) if early else ((), "")
            pid = _fork_into(v2) if v2 else -1
            if pid >= 0:
                v2 = ""  # born in it
            else:
                pid = os.fork()
            if pid == 0:
                lifeline.arm()
                parent_sock.close()
                lifeline.check(child_sock)
                if early:
                    launch.extra["cgroup_join"] = (v1, v2)
                _intermediate(launch, child_sock, init.run)
            child_sock.close()
            pid, notify_fd = _serve(launch, parent_sock, pid, on_hooks, on_pid=on_pid)
        kept, parent_sock = parent_sock, None
        return pid, notify_fd, kept
    finally:
        if parent_sock is not None:
            parent_sock.close()
        child_sock.close()  # idempotent


def spawn_into(launch: Launch, init_pid: int, mount_ns: bool) -> tuple[int, _socket.socket]:
    """`pyrunc exec`: start the process in the running container of `init_pid`;
    returns (pid, sync socket) once its pid is known. The socket then carries
    the process's failure before execve, or EOF at its execve (sync.wait_exec).
    Without a mount namespace to join, the process takes init's root (its
    chroot into the rootfs), or it would run on the host's."""
    parent_sock, child_sock = sync.pair()
    v1, v2 = _cgroup_dirs(launch.cgroup)
    try:
        mid = _fork_into(v2) if v2 else -1
        if mid >= 0:
            v2 = ""  # born in it
        else:
            mid = os.fork()  # no cgroup2, or no clone3 into it: the intermediate writes cgroup.procs
        if mid == 0:
            parent_sock.close()
            launch.extra["cgroup_join"] = (v1, v2)
            _intermediate(launch, child_sock, enter.run_exec, entering=True, root_of=0 if mount_ns else init_pid)
        child_sock.close()
        msg, _ = sync.expect(parent_sock, "pid")
        monitor.reap(mid)
        return msg["pid"], parent_sock
    except BaseException:
        parent_sock.close()
        raise


def detach(sock: _socket.socket) -> None:
    """The final state is saved: let init outlive create (it disarms its
    parent-death signal, then blocks on exec.fifo)."""
    sync.send(sock, "created")
    sync.expect(sock, "detached")


def _direct(launch: Launch) -> bool:
    """Clone init straight into its new namespaces when nothing must happen
    in between: no namespace joined by path, no user namespace (id maps), no
    cgroup namespace (rooted where its creator is) and no time namespace
    (offsets must be written before a process enters it)."""
    ns = launch.ns
    slow = s.CLONE_NEWCGROUP | s.CLONE_NEWTIME
    return not ns.join and not ns.new_user and not ns.unshare_flags & slow


def _clone_init(launch: Launch) -> tuple[int, tuple[str, ...] | None]:
    """Clone init into its new namespaces; (pid, the v1 cgroups init joins
    itself) where init can join all of its cgroups without the global
    threadgroup lock, else (pid, None) and the caller places it with
    cgroup.procs writes.

    A v1 cgroup.procs write (and any cgroup2 one) takes cgroup_threadgroup_rwsem
    for writing, and the first writer waits for an RCU grace period: 4-10 ms of
    create's critical path in most runs (strace: init reported ready, create
    was still in that write). Without it: init is cloned into its cgroup2
    directory (clone3 CLONE_INTO_CGROUP, as exec's intermediate is), and moves
    its single thread into each v1 cgroup by writing "0" to `tasks`
    (cgroups.common.join_thread), first thing, before it forks or execs
    anything. Where clone3 into the directory is refused, the former way."""
    flags = launch.ns.unshare_flags
    v1, v2 = _cgroup_dirs(launch.cgroup)
    pid = _fork_into(v2, flags) if v2 else -1
    if pid >= 0:
        return pid, v1
    try:
        pid = s.clone_fork(flags)
    except OSError as err:
        raise KernelError("clone", err.errno or 1, None, _flag_names(flags)) from None
    return pid, (v1 if v1 and not v2 else None)


def _placed(launch: Launch, pid: int) -> None:
    if launch.cgroup is not None:
        # The first cgroup.procs write of a v1 hierarchy waits for an RCU grace
        # period (10-20 ms here); done now, it overlaps init's rootfs work.
        launch.cgroup.add(pid)


def _serve(launch: Launch, sock: _socket.socket, mid: int, on_hooks,
           init_pid: int = 0, on_pid=None) -> tuple[int, int | None]:
    notify_fd = None
    try:
        while True:
            msg, fds = sync.recv(sock)
            kind = msg["t"]
            if kind == "idmap":
                linux = launch.spec.linux
                if os.geteuid() != 0:
                    from pyrunc import rootless  # direct for the caller's own id, else newuidmap/newgidmap

                    rootless.write_id_maps(mid, rootless.plan_maps(linux.uid_mappings, linux.gid_mappings))
                else:
                    namespaces.write_id_maps(mid, linux.uid_mappings, linux.gid_mappings, False)
                sync.send(sock, "idmap-done")
            elif kind == "pid":
                init_pid = msg["pid"]
                launch.extra["init_pid"] = init_pid
                if not _joins_cgroup_early(launch):
                    _placed(launch, init_pid)
                if on_pid is not None:
                    on_pid(init_pid)
                monitor.reap(mid)
                mid = 0
            elif kind == "hooks":
                doc = on_hooks(init_pid)
                sync.send(sock, "hooks-done", state=doc.decode())
            elif kind == "seccomp":
                notify_fd = fds[0]
            elif kind == "ready":
                return init_pid, notify_fd
    except BaseException:
        if init_pid:
            monitor.kill(init_pid, reap=False)
        if notify_fd is not None:
            os.close(notify_fd)
        raise
    finally:
        if mid:
            monitor.kill(mid)


def _intermediate(launch: Launch, sock: _socket.socket, entry, entering: bool = False, root_of: int = 0) -> None:
    """Join (and for create make) the namespaces, fork the process that runs
    `entry`: init.run, or, `entering` a running container, enter.run_exec
    (in its mount namespace, or in the root of its init `root_of`). Never returns."""
    code = 1
    try:
        s.prctl(s.PR_SET_DUMPABLE, 0)
        if entering and launch.cgroup is not None:
            _join_cgroups(launch, bool(getattr(launch.cgroup, "rootless", False)))
        elif "cgroup_join" in launch.extra:  # create's, before a cgroup or user namespace
            _join_cgroups(launch, bool(getattr(launch.cgroup, "optional", False)))  # as the manager's add()
        root = None
        if entering:
            exeguard.seal_imports()  # the mount namespace joined next is the image's
            if root_of:
                root = os.open(f"/proc/{root_of}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        namespaces.join_all(launch.ns)
        if root is not None:
            os.fchdir(root)
            os.chroot(".")
            os.close(root)
        if launch.ns.new_user:
            s.unshare(s.CLONE_NEWUSER)
            rootless = os.geteuid() != 0
            if rootless:
                # /proc/PID of a non-dumpable process is root's: an unprivileged parent (and the
                # setuid newuidmap, which checks the owner) could not write the maps (runc does the same).
                s.prctl(s.PR_SET_DUMPABLE, 1)
            sync.send(sock, "idmap")
            sync.expect(sock, "idmap-done")
            if rootless:
                s.prctl(s.PR_SET_DUMPABLE, 0)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            lifeline.arm()  # a new euid cleared it
            lifeline.check(sock)
        if launch.ns.unshare_flags:
            try:
                s.unshare(launch.ns.unshare_flags)
            except OSError as err:
                raise KernelError("unshare", err.errno or 1, None, _flag_names(launch.ns.unshare_flags)) from None
        if launch.ns.unshare_flags & s.CLONE_NEWTIME and launch.spec.linux.time_offsets:
            namespaces.write_time_offsets(launch.spec.linux.time_offsets)
        if entering:
            pid = os.fork()
            if pid == 0:
                entry(launch, sock)
        else:
            # CLONE_PARENT: init's parent is create, not this short-lived process, so
            # init's parent-death signal follows create (lifeline.py).
            pid = s.clone_fork(s.CLONE_PARENT)
            if pid == 0:
                lifeline.arm()
                lifeline.check(sock)
                entry(launch, sock)
        sync.send(sock, "pid", pid=pid)
        code = 0
    except BaseException as err:  # report anything, then exit: never return into the CLI
        sync.send_error(sock, err)
    os._exit(code)


def _cgroup_dirs(manager) -> tuple[tuple[str, ...], str]:
    """(v1 directories, the cgroup2 directory or "") of a container's cgroups."""
    if manager is None:
        return (), ""
    doc = manager.to_state()
    if doc["version"] == "v2":
        return (), os.path.join(doc["mount"], doc["path"].lstrip("/"))
    paths = doc["paths"]
    return tuple(dict.fromkeys(d for k, d in paths.items() if k)), paths.get("", "")


def _fork_into(v2_dir: str, flags: int = 0) -> int:
    """Fork (with `flags`' CLONE_NEW* namespaces) straight into the container's
    cgroup2 directory: an intermediate, or create's init; -1 when the kernel or
    the directory will not have it (the caller then joins with a cgroup.procs
    write, as before)."""
    try:
        fd = os.open(v2_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return -1
    try:
        return s.clone_into_cgroup(fd, flags)
    except OSError:
        return -1
    finally:
        os.close(fd)


def _join_cgroups(launch: Launch, tolerant: bool) -> None:
    """An intermediate (exec's, or create's that joins before it unshares) joins
    the container's cgroups as init does (cgroups.common.join_self)."""
    from pyrunc.cgroups.common import join_self

    join_self(*launch.extra["cgroup_join"], tolerant)


def _joins_cgroup_early(launch: Launch) -> bool:
    """A new cgroup namespace is rooted where its creator is, so the
    intermediate must be in the container's cgroup before it unshares; and a
    joined user namespace may not write to host cgroup files later. Otherwise
    the parent places init while init builds its rootfs."""
    return bool(launch.ns.unshare_flags & s.CLONE_NEWCGROUP) or launch.ns.new_user or bool(launch.ns.join)


def _flag_names(flags: int) -> str:
    names = [n for n, f in namespaces.FLAGS.items() if flags & f]
    return "namespaces " + ",".join(names)

