"""`pyrunc exec`: run a new process inside a created or running container.

The process is built as runc builds it: `--process process.json`, or the
container's own `process` with args, env, cwd, user, caps and flags from the
command line. A forked intermediate (non-dumpable from its first instruction)
joins the container's cgroup and every namespace of its init (user first,
mount last), then forks the process so that it lands in the pid namespace;
that child sets user, caps, no_new_privs and seccomp exactly as init does and
execs. pyrunc is the child subreaper, so it waits for the process and exits
with its status (128+N for a signal), forwarding signals, unless `--detach`.
"""

from __future__ import annotations

import os
import _signal as signal  # not `signal`: its enum conversions cost ms per run

from pyrunc import exeguard, namespaces, spec as specmod, sync, syscalls as s
from pyrunc.errors import InvalidState, MissingFeature, PyruncError
from pyrunc.fsutil import atomic_write
from pyrunc.launch import Launch, env_dict
from pyrunc.spec_record import MutableRecord
from pyrunc.state import StateStore, Status


class ExecOptions(MutableRecord):
    args: tuple = ()
    process_json: str | None = None
    env: tuple = ()
    cwd: str | None = None
    user: str | None = None
    additional_gids: tuple = ()
    caps: tuple = ()
    no_new_privs: bool = False
    tty: bool = False
    detach: bool = False
    pid_file: str | None = None
    preserve_fds: int = 0
    console_socket: str | None = None
    apparmor: str | None = None
    process_label: str | None = None


def build_process(base, opts: ExecOptions):
    """The Process to run: from process.json, or the container's process with overrides."""
    replace = specmod.replace
    if opts.process_json:
        raw = specmod.read_json(opts.process_json)
        return specmod.parse({"ociVersion": "1.0.2", "root": {"path": "/"}, "process": raw},
                             source=opts.process_json).process
    if not opts.args:
        raise PyruncError("exec: no command given (args or --process)")
    proc = base or specmod.Process(args=("sh",), cwd="/")
    changes: dict = {"args": tuple(opts.args), "terminal": opts.tty}
    if opts.env:
        changes["env"] = tuple(proc.env) + tuple(opts.env)
    if opts.cwd:
        changes["cwd"] = opts.cwd
    if opts.user or opts.additional_gids:
        uid, gid = proc.user.uid, proc.user.gid
        if opts.user:
            u, _, g = opts.user.partition(":")
            if not u.isdigit() or (g and not g.isdigit()):
                raise PyruncError(f"exec: --user {opts.user!r}: must be UID[:GID] (numbers)")
            uid, gid = int(u), int(g) if g else gid
        gids = tuple(int(x) for x in opts.additional_gids) or proc.user.additional_gids
        changes["user"] = replace(proc.user, uid=uid, gid=gid, additional_gids=gids)
    if opts.caps:
        caps = proc.capabilities or specmod.Capabilities()
        extra = tuple(opts.caps)
        changes["capabilities"] = replace(caps, **{k: tuple(getattr(caps, k) or ()) + extra for k in (
            "bounding", "effective", "permitted", "ambient")})
    if opts.no_new_privs:
        changes["no_new_privileges"] = True
    if opts.apparmor:
        changes["apparmor_profile"] = opts.apparmor
    if opts.process_label:
        changes["selinux_label"] = opts.process_label
    return replace(proc, **changes)


def exec_process(store: StateStore, container_id: str, opts: ExecOptions) -> int:
    state = store.load(container_id)
    if state.status is Status.STOPPED:
        raise InvalidState("cannot exec in a stopped container")
    if state.status is Status.PAUSED:
        raise InvalidState("cannot exec in a paused container")
    spec = specmod.load(state.bundle)
    process = build_process(spec.process, opts)
    if process.terminal:
        raise MissingFeature("terminal", "exec -t (console sockets) is not implemented yet")
    spec = specmod.replace(spec, process=process)
    launch = _prepare(spec, state, opts)
    s.prctl(s.PR_SET_CHILD_SUBREAPER, 1)
    pid, sock = _spawn(launch, state)
    try:
        sync.wait_exec(sock)
    except BaseException:
        _kill(pid)
        raise
    if opts.pid_file:
        atomic_write(os.path.abspath(opts.pid_file), str(pid).encode(), 0o644, durable=False)
    if opts.detach:
        return 0
    for sig in _forwarded():
        signal.signal(sig, lambda n, _f: _forward(pid, n))
    from pyrunc.run import _wait

    return _wait(pid)


def _prepare(spec, state, opts: ExecOptions) -> Launch:
    from pyrunc import capabilities

    joins = tuple(specmod.Namespace(type=t, path=p) for t, p in state.namespaces.items()
                  if not _same_ns(t, p))
    ns = namespaces.plan(joins)
    proc = spec.process
    launch = Launch(spec=spec, bundle=state.bundle, rootfs=state.rootfs, ns=ns,
                    caps=capabilities.prepare_caps(proc.capabilities), env=env_dict(proc.env),
                    preserve_fds=opts.preserve_fds)
    linux = spec.linux
    from pyrunc import procattrs

    launch.proc_attrs = procattrs.plan(proc, None)
    if proc.apparmor_profile or proc.selinux_label:
        from pyrunc import lsm, sysctl  # noqa: F401  (the exec process applies the labels)

        lsm.check_lsm(proc.apparmor_profile, proc.selinux_label)
    if linux is not None and linux.seccomp_raw is not None:
        from pyrunc import seccomp

        launch.seccomp = seccomp.prepare(linux.seccomp_raw, bounding_caps=list(
            proc.capabilities.bounding or ()) if proc.capabilities else [],
            cache_dir=seccomp.cache_dir(os.path.dirname(state.state_dir)))
        launch.seccomp_load = seccomp.load
    if state.cgroup:
        from pyrunc.cgroups import load_manager

        launch.cgroup = load_manager(state.cgroup)
    return launch


def _same_ns(ns_type: str, path: str) -> bool:
    """setns into our own user namespace fails (EINVAL): skip namespaces we share."""
    name = namespaces.PROC_NAME[ns_type]
    try:
        return os.stat(path).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino
    except FileNotFoundError:
        raise InvalidState(f"container init is gone ({path} missing)") from None


def _spawn(launch: Launch, state) -> tuple[int, object]:
    from pyrunc import init

    parent_sock, child_sock = sync.pair()
    try:
        mid = os.fork()
        if mid == 0:
            parent_sock.close()
            code = 1
            try:
                s.prctl(s.PR_SET_DUMPABLE, 0)
                if launch.cgroup is not None:
                    launch.cgroup.add(os.getpid())
                exeguard.seal_imports()  # the mount namespace joined next is the image's
                # No mount namespace to join: take init's root (its chroot into
                # the rootfs), or the process would run on the host's.
                root = None if "mount" in state.namespaces else os.open(
                    f"/proc/{state.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                namespaces.join_all(launch.ns)
                if root is not None:
                    os.fchdir(root)
                    os.chroot(".")
                    os.close(root)
                pid = os.fork()
                if pid == 0:
                    init.run_exec(launch, child_sock)
                sync.send(child_sock, "pid", pid=pid)
                code = 0
            except BaseException as err:  # report, then exit: never return into the CLI
                sync.send_error(child_sock, err)
            os._exit(code)
        child_sock.close()
        msg, _ = sync.expect(parent_sock, "pid")
        os.waitpid(mid, 0)
        return msg["pid"], parent_sock
    except BaseException:
        parent_sock.close()
        raise


def _kill(pid: int) -> None:
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass  # already gone


def _forwarded():
    from pyrunc.run import FORWARDED

    return FORWARDED


def _forward(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass  # it exited; the wait collects the status
