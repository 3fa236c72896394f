"""`pyrunc create`: set a container up and leave init blocked on exec.fifo.

The parent owns the undo stack: any failure before the state is saved kills
init, destroys the cgroup and removes the state dir, so a failed create leaves
nothing behind (DESIGN §2). All parsing, compiling and importing happens here,
before fork (see launch.py).

A create can also be SIGKILLed, which no undo stack survives. So the state
dir appears already holding a pre-state (status "creating", this process's
pid and start time, the cgroups it is about to make), init's pid is added
the moment it is known, and init and the intermediate die with this process
(lifeline.py) until the final state is saved and init is told "created".
Whatever point the kill hits, `delete` finds everything there is to remove.
"""

from __future__ import annotations

import os
import time

from pyrunc import fault_point, monitor, namespaces, process, rootfs, spec as specmod, syscalls as s
from pyrunc.errors import ConfigError, MissingFeature
from pyrunc.fsutil import atomic_write
from pyrunc.launch import Launch, env_dict, needs_mount_sources, personality_value, plan_console, prepare_process, rootfs_path
from pyrunc.record import MutableRecord
from pyrunc.state import FIFO_NAME, State, StateStore, Status, proc_start_time
from pyrunc.undo import Undo
from pyrunc.verbs import GlobalOptions


class CreateOptions(MutableRecord):
    bundle: str
    pid_file: str | None = None
    console_socket: str | None = None
    no_pivot: bool = False
    no_new_keyring: bool = False
    preserve_fds: int = 0
    detach: bool = True  # run in the foreground sets False: a terminal is then pyrunc's own (ttyproxy)


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def create(store: StateStore, container_id: str, opts: CreateOptions, *, systemd_cgroup: bool = False,
           rootless: bool = False) -> State:
    """Create the container; init waits on exec.fifo when this returns."""
    bundle = os.path.abspath(opts.bundle)
    spec = specmod.load(bundle)
    if spec.process is None:
        # runtime-spec: `start` "MUST generate an error if process was not
        # set"; create makes the container, init reports at start (init.py).
        spec = specmod.replace(spec, process=specmod.Process(args=(), cwd="/"))
    proc = spec.process
    linux = spec.linux
    ns = namespaces.plan(linux.namespaces if linux else ())
    if os.geteuid() != 0:
        from pyrunc.rootless import check_config

        check_config(ns, linux.uid_mappings if linux else (), linux.gid_mappings if linux else ())
    rootfs = rootfs_path(spec, bundle)
    launch = _prepare(spec, bundle, rootfs, ns, opts, store.root)
    plan_console(launch, opts.console_socket, opts.detach)  # runc: after the config, before making anything
    from pyrunc.rootless import in_user_namespace

    # runc: inside a user namespace (podman rootless runs the runtime there) device nodes are
    # bind mounts of the host's: mknod is refused.
    launch.rootfs_ops = rootfs_plan(spec, bundle, ns, in_user_namespace())

    manager = _cgroup_manager(linux, container_id, systemd_cgroup, rootless)
    me = os.getpid()
    state = State(id=container_id, bundle=bundle, rootfs=rootfs, created=_rfc3339(time.time()),
                  owner="", annotations=dict(spec.annotations),
                  hooks=specmod.Hooks(poststart=spec.hooks.poststart, poststop=spec.hooks.poststop),
                  spec_version=spec.oci_version, status=Status.CREATING, creator_pid=me,
                  creator_start=proc_start_time(me) or 0,
                  shares_pidns=not ns.has("pid") or any(t == "pid" for t, _ in ns.join))
    if manager is not None:  # the cgroups it may make, before it makes any (DirMaker re-checks)
        state.cgroup = dict(manager.to_state(), created=manager.missing_dirs())

    with Undo() as undo:
        if launch.console is not None:
            undo.callback(launch.console.close)  # a master already sent to the pair goes with it
        # From here a SIGKILL leaves only what the pre-state names: `delete` removes it.
        state_dir = store.claim(state)
        undo.callback(store.remove, container_id)
        fault_point("create.claimed")
        if not ns.has("mount"):
            from pyrunc.rootfs import release_host_mounts

            undo.callback(release_host_mounts, state_dir)  # what init mounted on the host, if anything
        if manager is not None:
            undo.callback(manager.destroy)
            manager.create()
            manager.apply(linux.resources if linux else None)
            launch.cgroup = manager
            state.cgroup = cg = manager.to_state()
            launch.cgroup_dirs = (tuple(cg["paths"].values()) if cg.get("version") == "v1" else
                                  (os.path.join(cg["mount"], cg["path"].lstrip("/")),))
            fault_point("create.cgroups")
        fifo = os.path.join(state_dir, FIFO_NAME)
        os.mkfifo(fifo, 0o622)
        os.chmod(fifo, 0o622)  # mkfifo obeys the umask; init may run as any uid
        fault_point("create.fifo")
        launch.fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        undo.callback(os.close, launch.fifo_fd)
        if not opts.no_new_keyring:
            _new_keyring(container_id)
        s.prctl(s.PR_SET_CHILD_SUBREAPER, 1)
        undo.callback(_kill_init, launch)
        if needs_mount_sources(spec, ns.new_user) and not _rootless_binds(spec):
            from pyrunc import mountsrc

            launch.mount_fds = mountsrc.open_sources(spec, bundle, ns.new_user)
        try:
            pid, notify_fd, sock = _spawn(launch, state, spec, store)
        finally:
            for fd in launch.mount_fds.values():
                os.close(fd)  # init has attached them by now (or is gone)
            if launch.console is not None:
                launch.console.sent()  # init sent the master (or is gone)
        undo.callback(sock.close)
        fault_point("create.ready")
        state.pid = pid
        state.pid_start = _start_time(pid)
        state.status = Status.CREATED
        state.namespaces = {t: f"/proc/{pid}/ns/{namespaces.PROC_NAME[t]}" for t in ns.types}
        if notify_fd is not None:
            from pyrunc import seccomp

            try:
                seccomp.send_to_listener(launch.seccomp, notify_fd, state.hook_state())
            finally:
                os.close(notify_fd)
        store.save(state)
        fault_point("create.saved")
        if opts.pid_file:
            atomic_write(os.path.abspath(opts.pid_file), str(pid).encode(), 0o644, durable=False)
        process.detach(sock)  # the state is final: init may outlive us now
        undo.pop_all()
        fault_point("create.detached")
    os.close(launch.fifo_fd)
    sock.close()
    if launch.console is not None:
        if launch.console.parent is not None:
            state.console = launch.console  # run relays it (foreground terminal)
        else:
            launch.console.close()
    return state


def _prepare(spec, bundle: str, rootfs: str, ns, opts: CreateOptions, state_root: str) -> Launch:
    proc, linux = spec.process, spec.linux
    env = env_dict(proc.env)
    listen = _listen_fds()
    if listen:  # systemd socket activation passes through, as runc does
        env["LISTEN_FDS"], env["LISTEN_PID"] = str(listen), "1"
    launch = prepare_process(spec, bundle, rootfs, ns, env=env, state_root=state_root,
                             preserve_fds=opts.preserve_fds + listen)
    launch.new_netns = ns.has("network") and not any(t == "network" for t, _ in ns.join)
    launch.no_pivot = opts.no_pivot
    launch.oom_score_adj = proc.oom_score_adj
    if linux is not None:
        launch.personality = personality_value(linux.personality)
        if linux.sysctl:
            launch.sysctl_writer = _sysctl_writer(linux, ns)
        if linux.net_devices:
            raise MissingFeature("linux.netDevices", "moving network devices is not implemented yet")
        if linux.intel_rdt is not None:
            raise MissingFeature("linux.intelRdt", "resctrl is not mounted on this host")
    hk = spec.hooks
    launch.has_runtime_hooks = bool(hk.prestart or hk.create_runtime or hk.create_container
                                    or hk.start_container)
    return launch


def rootfs_plan(spec, bundle: str, ns, in_userns: bool) -> tuple:
    """rootfs.plan with this host's facts: device nodes are binds of the host's
    in a new or joined user namespace, or when pyrunc itself runs in one."""
    return rootfs.plan(spec, bundle, mount_ns=ns.has("mount"), cgroup_ns=ns.has("cgroup"),
                       bind_devices=ns.new_user or bool(ns.join and ns.join[0][0] == "user") or in_userns,
                       kcore=os.path.exists("/proc/kcore"))


def _listen_fds() -> int:
    value = os.environ.get("LISTEN_FDS", "")
    return int(value) if value.isdigit() else 0


def sysctl_scope(ns) -> tuple[set[str], bool]:
    """The namespaces sysctls may be set in: (types the container has of its own,
    whether its network namespace, given by path, is the host's). A namespace
    joined by path is the container's own unless it is the host's (runc
    compares it with /proc/self/ns/<type>). Shared with `pyrunc explain`."""
    own = {t for t in ns.types if not any(j == t and _is_host_ns(t, p) for j, p in ns.join)}
    net_path = dict(ns.join).get("network")
    return own, bool(net_path and _is_host_ns("network", net_path))


def _sysctl_writer(linux, ns):
    from pyrunc import sysctl

    own, host_netns = sysctl_scope(ns)
    plan = sysctl.validate_sysctl(linux.sysctl, own, host_netns=host_netns)

    def write(_root_fd: int) -> None:
        proc_fd = sysctl.trusted_proc()
        try:
            sysctl.write_sysctls(proc_fd, plan)
        finally:
            os.close(proc_fd)

    return write


def _is_host_ns(ns_type: str, path: str) -> bool:
    own = f"/proc/self/ns/{namespaces.PROC_NAME[ns_type]}"
    a, b = os.stat(path), os.stat(own)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _cgroup_manager(linux, container_id: str, systemd: bool, rootless: bool):
    """The container's cgroups, resolved and checked (no directory made yet)."""
    from pyrunc import cgroups

    return cgroups.new_manager(linux.cgroups_path if linux else None, container_id,
                               systemd=systemd, rootless=rootless)


def _rootless_binds(spec) -> bool:
    """A non-root caller cannot clone host mounts (open_tree needs CAP_SYS_ADMIN):
    init binds its sources by path, as the caller could. Idmapped mounts need it."""
    if os.geteuid() == 0:
        return False
    for i, m in enumerate(spec.mounts):
        if "idmap" in m.options or "ridmap" in m.options:
            raise MissingFeature(f"mounts[{i}] idmap", "an idmapped mount needs root "
                                 "(mount_setattr(MOUNT_ATTR_IDMAP) on a host mount needs CAP_SYS_ADMIN)")
    return True


def _new_keyring(container_id: str) -> None:
    """A fresh session keyring, so the container cannot read the host's keys (runc)."""
    try:
        s.keyctl_join_session_keyring(container_id)
    except OSError:
        pass  # keyrings are optional in the kernel (and refused in some sandboxes), as for runc


def _spawn(launch: Launch, state: State, spec, store: StateStore):
    state.status = Status.CREATING
    launch.hook_state = state.hook_state(Status.CREATING)

    def on_hooks(pid: int) -> None:
        from pyrunc import hooks

        state.pid = pid
        # The environment is made (lifecycle step 2) when these hooks run:
        # they see "created", as crun's and runtime-tools' reading (runc: creating).
        doc = state.hook_state(Status.CREATED)
        hooks.run_all("prestart", spec.hooks.prestart, doc)
        hooks.run_all("createRuntime", spec.hooks.create_runtime, doc)
        return doc

    def on_pid(pid: int) -> None:
        """init exists: the pre-state names it (delete -f kills it if create dies)."""
        state.pid = pid
        state.pid_start = proc_start_time(pid) or 0
        store.save(state)
        fault_point("create.init-pid")

    return process.spawn(launch, on_hooks, on_pid)


def _start_time(pid: int) -> int:
    from pyrunc.state import proc_start_time

    t = proc_start_time(pid)
    if t is None:
        raise ConfigError("", "container init exited during create")
    return t


def _kill_init(launch: Launch) -> None:
    pid = launch.extra.get("init_pid")
    if pid:
        monitor.kill(pid)


def create_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc create [--bundle B] ID`."""
    from pyrunc.verbs import bundle_and_id, rootless_cgroups, store

    bundle, cid = bundle_and_id(v)
    create(store(g), cid, create_options(v, bundle), systemd_cgroup=g.systemd_cgroup, rootless=rootless_cgroups(g))
    return 0


def create_options(v: dict, bundle: str) -> CreateOptions:
    """The CreateOptions of create's and run's parsed flags."""
    return CreateOptions(bundle=bundle, pid_file=v.get("pid_file"), console_socket=v.get("console_socket"),
                         no_pivot=bool(v.get("no_pivot")), no_new_keyring=bool(v.get("no_new_keyring")),
                         preserve_fds=int(v.get("preserve_fds") or 0))
