"""`pyrunc exec`: run a new process inside a created or running container.

The process is built as runc builds it (exec.go getProcess): `--process
process.json`, or the container's own `process` with args, env, cwd, user,
gids, caps and flags from the command line. A forked intermediate
(non-dumpable from its first instruction) joins the container's cgroup (or a
sub-cgroup, `--cgroup`) and every namespace of its init (user first, mount
last), then forks the process so that it lands in the pid namespace; that
child sets the terminal, rlimits, user, caps, no_new_privs, labels and the
container's seccomp filter exactly as init does and execs. pyrunc is the
child subreaper, so it waits for the process and exits with its status
(128+N for a signal), forwarding signals (monitor.py), unless `--detach`.

Exit codes as runc's: the process's status, or 255 when exec itself fails.
"""

from __future__ import annotations

import os

from pyrunc import fault_point, monitor, namespaces, process, spec as specmod, sync, syscalls as s
from pyrunc.errors import InvalidState, PyruncError
from pyrunc.fsutil import atomic_write
from pyrunc.launch import Launch, env_dict, plan_console, prepare_process
from pyrunc.record import MutableRecord
from pyrunc.state import StateStore, Status
from pyrunc.verbs import GlobalOptions

EXIT_FAILED = 255  # runc: fatalWithCode(fmt.Errorf("exec failed: %w", err), 255)
_MAX_ID = 0xFFFFFFFE  # (uid_t)-1 means "unchanged" to the kernel


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
    ignore_paused: bool = False
    cgroup: tuple = ()


def _id(text: str, flag: str) -> int:
    if not text.isdigit() or int(text) > _MAX_ID:
        raise PyruncError(f"exec: {flag}: {text!r} is not a number from 0 to {_MAX_ID}")
    return int(text)


def build_process(base, opts: ExecOptions):
    """The Process to run: from process.json, or the container's process with overrides."""
    replace = specmod.replace
    if opts.process_json:
        raw = specmod.read_json(opts.process_json)
        return specmod.parse({"ociVersion": "1.0.2", "root": {"path": "/"}, "process": raw},
                             source=opts.process_json).process
    if not opts.args:
        raise PyruncError("process args cannot be empty")
    proc = base or specmod.Process(args=("sh",), cwd="/")
    changes: dict = {"args": tuple(opts.args), "terminal": opts.tty}
    if opts.env:
        changes["env"] = tuple(proc.env) + tuple(opts.env)
    if opts.cwd:
        changes["cwd"] = opts.cwd
    if opts.user or opts.additional_gids:
        uid, gid = proc.user.uid, proc.user.gid
        if opts.user:
            u, sep, g = opts.user.partition(":")
            if not u.isdigit() or (sep and not g.isdigit()):
                raise PyruncError(f"exec: --user {opts.user!r}: must be UID[:GID] (numbers)")
            uid, gid = _id(u, "--user"), _id(g, "--user") if g else gid
        # runc appends the flags' gids to the config's
        gids = tuple(proc.user.additional_gids) + tuple(_id(x, "--additional-gids") for x in opts.additional_gids)
        changes["user"] = replace(proc.user, uid=uid, gid=gid, additional_gids=gids)
    if opts.caps:
        from pyrunc.capabilities import CAP_NUMBERS

        unknown = [c for c in opts.caps if c not in CAP_NUMBERS]
        if unknown:  # runc warns and runs without them; a typed flag that does nothing is refused
            raise PyruncError(f"exec: --cap {', '.join(unknown)}: unknown capability (names as CAP_SYS_ADMIN)")
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
    new = replace(proc, **changes)
    _check_process(new)
    return new


def _check_process(proc) -> None:
    """runc's validateProcessSpec for a process made from flags."""
    if not proc.cwd:
        raise PyruncError("Cwd property must not be empty")
    if not proc.cwd.startswith("/"):
        raise PyruncError("Cwd must be an absolute path")


def exec_process(store: StateStore, container_id: str, opts: ExecOptions) -> int:
    try:
        return _exec(store, container_id, opts)
    except PyruncError as err:
        err.exit_code = EXIT_FAILED
        raise


def _exec(store: StateStore, container_id: str, opts: ExecOptions) -> int:
    state = store.load(container_id)
    if state.status is Status.STOPPED:
        raise InvalidState("cannot exec in a stopped container")
    if state.status is Status.PAUSED and not opts.ignore_paused:
        raise InvalidState("cannot exec in a paused container (use --ignore-paused to override)")
    if not opts.process_json and not opts.args:
        raise PyruncError("process args cannot be empty")
    spec = specmod.load(state.bundle)
    spec = specmod.replace(spec, process=build_process(spec.process, opts))
    launch = _prepare(spec, state, opts)
    plan_console(launch, opts.console_socket, opts.detach)
    relay = None
    try:
        s.prctl(s.PR_SET_CHILD_SUBREAPER, 1)
        pid, sock = process.spawn_into(launch, state.pid, "mount" in state.namespaces)
        fault_point("exec.spawned")
        if launch.console is not None:
            launch.console.sent()
        try:
            sync.wait_exec(sock)
            fault_point("exec.running")
            if launch.console is not None and launch.console.parent is not None:
                relay, launch.console = launch.console.relay(), None
                relay.start()
        except BaseException:
            monitor.kill(pid)
            raise
        if opts.pid_file:
            atomic_write(os.path.abspath(opts.pid_file), str(pid).encode(), 0o644, durable=False)
    except BaseException:
        if relay is not None:
            relay.close()
        if launch.console is not None:
            launch.console.close()
        raise
    if launch.console is not None:
        launch.console.close()  # detached: the master went to --console-socket
    if opts.detach:
        return 0
    monitor.forward_signals(pid, relay)
    return monitor.wait(pid, relay)


def _prepare(spec, state, opts: ExecOptions) -> Launch:
    joins = tuple(specmod.Namespace(type=t, path=p) for t, p in state.namespaces.items()
                  if not _same_ns(t, p))
    launch = prepare_process(spec, state.bundle, state.rootfs, namespaces.plan(joins),
                             env=env_dict(spec.process.env), state_root=os.path.dirname(state.state_dir),
                             preserve_fds=opts.preserve_fds, container_attrs=False)
    if state.cgroup:
        from pyrunc.cgroups import load_manager

        launch.cgroup = load_manager(state.cgroup)
        if opts.cgroup:
            launch.cgroup = _sub_cgroup(launch.cgroup, opts.cgroup)
    elif opts.cgroup:
        raise PyruncError("--cgroup: the container has no cgroup")
    return launch


def sub_cgroup_paths(args: tuple[str, ...]) -> dict[str, str]:
    """runc's getSubCgroupPaths: `--cgroup [CONTROLLER[,CONTROLLER]:]PATH`
    -> {controller or "": path}."""
    paths: dict[str, str] = {}
    for arg in args:
        parts = arg.split(":")
        if len(parts) > 2:
            raise PyruncError(f"invalid --cgroup argument: {arg}")
        if len(parts) == 1:
            if len(args) != 1:
                raise PyruncError(f"invalid --cgroup argument: {arg} (missing <controller>: prefix)")
            paths[""] = arg
            continue
        for ctrl in parts[0].split(","):
            if not ctrl:
                raise PyruncError(f"invalid --cgroup argument: {arg} (empty <controller> prefix)")
            if ctrl in paths:
                raise PyruncError(f"invalid --cgroup argument(s): controller {ctrl} specified multiple times")
            paths[ctrl] = parts[1]
    return paths


def sub_dirs(dirs: dict[str, str], subs: dict[str, str]) -> dict[str, str]:
    """The container's cgroup dirs with the sub-cgroups applied (runc
    newSetnsProcess), each kept inside the container's own cgroup: `..` that
    climbs out is refused (runc 1.1 would join a foreign cgroup)."""
    out = dict(dirs)
    if set(subs) == {""}:  # no controller: the same sub-path in every hierarchy
        chosen = {k: subs[""] for k in dirs}
    else:
        chosen = {}
        for ctrl, sub in subs.items():
            key = ctrl if ctrl in dirs else ("name=" + ctrl if "name=" + ctrl in dirs else None)
            if key is None:
                raise PyruncError(f"--cgroup: unknown controller {ctrl} (the container's are: "
                                  f"{', '.join(sorted(k or 'unified' for k in dirs))})")
            chosen[key] = sub
    for key, sub in chosen.items():
        base = dirs[key]
        full = os.path.normpath(os.path.join(base, sub.lstrip("/")))
        if full != base and not full.startswith(base.rstrip("/") + "/"):
            raise PyruncError(f"--cgroup {sub}: leaves the container's cgroup {base}")
        if not os.path.isdir(full):
            raise PyruncError(f"--cgroup {sub}: {full} does not exist (exec joins existing sub-cgroups only)")
        out[key] = full
    return out


def _sub_cgroup(manager, args: tuple[str, ...]):
    from pyrunc.cgroups import load_manager

    subs = sub_cgroup_paths(args)
    doc = manager.to_state()
    if doc["version"] == "v1":
        return load_manager(dict(doc, paths=sub_dirs(doc["paths"], subs), created=[]))
    base = os.path.join(doc["mount"], doc["path"].lstrip("/"))
    full = sub_dirs({"": base}, subs)[""]
    return load_manager(dict(doc, path="/" + os.path.relpath(full, doc["mount"]), created=[]))


def _same_ns(ns_type: str, path: str) -> bool:
    """setns into our own user namespace fails (EINVAL): skip namespaces we share."""
    name = namespaces.PROC_NAME[ns_type]
    try:
        return os.stat(path).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino
    except FileNotFoundError:
        raise InvalidState(f"container init is gone ({path} missing)") from None


def exec_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc exec [options] ID COMMAND...` (or -p process.json): the process's exit code."""
    from pyrunc.verbs import store

    opts = ExecOptions(args=tuple(v.get("command") or ()), process_json=v.get("process"),
                       env=tuple(v.get("env") or ()), cwd=v.get("cwd"), user=v.get("user"),
                       additional_gids=tuple(v.get("additional_gids") or ()), caps=tuple(v.get("cap") or ()),
                       no_new_privs=bool(v.get("no_new_privs")), tty=bool(v.get("tty")),
                       detach=bool(v.get("detach")), pid_file=v.get("pid_file"),
                       preserve_fds=int(v.get("preserve_fds") or 0), console_socket=v.get("console_socket"),
                       apparmor=v.get("apparmor"), process_label=v.get("process_label"),
                       ignore_paused=bool(v.get("ignore_paused")), cgroup=tuple(v.get("cgroup") or ()))
    return exec_process(store(g), v["container_id"], opts)
