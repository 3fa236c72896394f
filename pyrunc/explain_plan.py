"""`pyrunc explain`: what create would do on this host, as one JSON-able value.

Nothing here interprets config.json a second time: every section is the
output of the plan function create itself runs (namespaces.plan,
create.rootfs_plan, the cgroup manager's plan, create.sysctl_scope +
sysctl.validate_sysctl, capabilities.prepare_caps, seccomp.compile_profile
run through `seccomp check`'s interpreter, hooks as create/start/delete run
them), turned into plain values. What only the kernel decides (the
capability sets after execve) comes from capabilities.after_execve.
Nothing is created: the rootfs is only opened (O_PATH) to resolve mount
targets inside it, as init will.

The format (docs/EXPLAIN.md) is `FORMAT`; every entry has a `field`, the
config field it comes from. Sections are in the order create carries them out.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from pyrunc import capabilities, namespaces, rootfs as rootfsmod, spec as specmod
from pyrunc.errors import ConfigError, MissingFeature, PyruncError

FORMAT = "pyrunc-explain/1"

# When each kind of hook runs, and where (runtime-spec config.md "POSIX-platform Hooks").
HOOK_TIMING = {
    "prestart": "create, in the runtime's namespaces, after the container's namespaces exist (deprecated)",
    "createRuntime": "create, in the runtime's namespaces, after the container's namespaces exist",
    "createContainer": "create, in the container's namespaces, after its mounts, before pivot_root",
    "startContainer": "start, in the container, right before the program's execve",
    "poststart": "start, in the runtime's namespaces, after the program started",
    "poststop": "delete, in the runtime's namespaces, after the container stopped",
}
_HOOK_ATTR = {"prestart": "prestart", "createRuntime": "create_runtime", "createContainer": "create_container",
              "startContainer": "start_container", "poststart": "poststart", "poststop": "poststop"}
_PHASES = ("build", "after-hooks", "last")


def load_target(target: str) -> tuple[specmod.Spec, str, str]:
    """(spec, bundle dir, name) of a bundle directory or a config file; the
    bundle of a file is its directory (relative root.path and bind sources)."""
    if os.path.isdir(target):
        bundle = os.path.abspath(target)
        return specmod.load(bundle), bundle, os.path.join(bundle, "config.json")
    if not os.path.exists(target):
        raise ConfigError("", f"{target}: no such bundle directory or config file")
    path = os.path.abspath(target)
    return specmod.parse(specmod.read_json(path), os.path.basename(path)), os.path.dirname(path), path


def build(spec: specmod.Spec, bundle: str, *, container_id: str = "ID", systemd: bool = False,
          rootless: bool = False, cgroup_state: dict | None = None) -> dict[str, Any]:
    """The whole plan. `cgroup_state`: a running container's state.cgroup (its
    real paths) instead of the paths a new container `container_id` would get."""
    from pyrunc.create import rootfs_plan
    from pyrunc.launch import rootfs_path
    from pyrunc.rootless import in_user_namespace

    if spec.process is None:
        spec = specmod.replace(spec, process=specmod.Process(args=(), cwd="/"))
    linux = spec.linux
    unsupported: list[dict] = []
    out: dict[str, Any] = {"format": FORMAT, "host": _host()}
    ns = namespaces.plan(linux.namespaces if linux else ())  # namespace paths checked, as create
    if os.geteuid() != 0:  # create's checks for an ordinary caller, in create's order
        from pyrunc.launch import keeps_caller_groups
        from pyrunc.rootless import check_config

        check_config(ns, linux.uid_mappings if linux else (), linux.gid_mappings if linux else ())
        keeps_caller_groups(spec.process)
    out["cgroup"] = _cgroup(linux, container_id, systemd, rootless, cgroup_state, unsupported)  # made before fork
    out["namespaces"] = _namespaces(linux, ns, unsupported)
    out["idMappings"] = _id_maps(linux, ns)
    out["hostname"] = {"field": ".hostname", "value": spec.hostname, "domainname": spec.domainname}
    root = rootfs_path(spec, bundle)
    ops = rootfs_plan(spec, bundle, ns, in_user_namespace())
    out["rootfs"] = {"field": ".root.path", "path": root, "readonly": bool(spec.root and spec.root.readonly),
                     "propagation": (linux.rootfs_propagation if linux else None) or "rprivate (default)",
                     "ops": _rootfs_ops(ops, root)}
    out["sysctl"] = _sysctls(linux, ns, unsupported)
    out["rlimits"] = _rlimits(spec.process)
    out["capabilities"] = _capabilities(spec.process, unsupported)
    out["noNewPrivileges"] = {"field": ".process.noNewPrivileges", "value": spec.process.no_new_privileges}
    out["seccomp"] = _seccomp(spec.process, linux, unsupported)
    out["hooks"] = _hooks(spec.hooks)
    out["process"] = _process(spec, root)
    _unsupported(spec, unsupported)
    out["unsupported"] = unsupported
    return out


def _host() -> dict[str, Any]:
    from pyrunc.cgroups import hierarchy

    return {"kernel": os.uname().release, "machine": os.uname().machine, "cgroup": hierarchy.detect().mode,
            "euid": os.geteuid()}


def _namespaces(linux, ns, unsupported: list[dict]) -> list[dict]:
    """In create's order: the ones joined by path (JOIN_ORDER), then user, then the new ones.
    A path is checked to be a namespace of its type (setns would refuse another)."""
    index = {n.type: i for i, n in enumerate(linux.namespaces)} if linux else {}
    out = []
    for t, p in ns.join:
        field = f".linux.namespaces[{index[t]}]"
        found = namespaces.path_type(p)
        out.append({"field": field, "type": t, "action": "join", "path": p, "pathType": found})
        if found != t:
            unsupported.append({"field": f"{field}.path", "reason": f"{p} is {'a ' + found if found else 'not a'} "
                                f"namespace, not {t} (create fails: setns refuses it)"})
    if ns.new_user:
        out.append({"field": f".linux.namespaces[{index['user']}]", "type": "user", "action": "new"})
    for t, flag in namespaces.FLAGS.items():
        if ns.unshare_flags & flag:
            out.append({"field": f".linux.namespaces[{index[t]}]", "type": t, "action": "new"})
    shared = [t for t in namespaces.FLAGS if t not in ns.types]
    if shared:
        out.append({"field": ".linux.namespaces", "type": ",".join(shared), "action": "host"})
    return out


def _id_maps(linux, ns) -> list[dict]:
    if linux is None or not ns.new_user:
        return []
    return [{"field": f".linux.{key}[{i}]", "kind": kind, "containerID": m.container_id, "hostID": m.host_id,
             "size": m.size} for kind, key, maps in (("uid", "uidMappings", linux.uid_mappings),
                                                     ("gid", "gidMappings", linux.gid_mappings))
            for i, m in enumerate(maps)]


def _cgroup(linux, container_id: str, systemd: bool, rootless: bool, state: dict | None,
            unsupported: list[dict]) -> dict[str, Any]:
    from pyrunc import cgroups
    from pyrunc.cgroups import resources

    if state is not None:
        manager = cgroups.load_manager(state)
    else:
        manager = cgroups.new_manager(linux.cgroups_path if linux else None, container_id,
                                      systemd=systemd, rootless=rootless)
    res = linux.resources if linux else None
    out: dict[str, Any] = {"field": ".linux.cgroupsPath", "path": (linux.cgroups_path if linux else None)
                           or f"/pyrunc/{container_id}"}
    writes: list[dict] = []
    if hasattr(manager, "paths"):  # v1 (or hybrid): one directory per controller
        out["version"] = "v1"
        if manager.optional:  # rootless without cgroupsPath: create goes without what it may not make
            manager.paths = {c: p for c, p in manager.paths.items() if _may_make(p)}
        out["paths"] = dict(manager.paths)
        plan = manager.plan(res, ".linux.resources", "config.json", not rootless)
        dirs = manager.paths
        plan, writes = _v1_host(manager.paths, plan, res, unsupported)
    else:
        out["version"] = "v2"
        out["paths"] = {"": manager.dir}
        plan = manager.plan(res)
        dirs = {c: manager.dir for c in plan}
        if not rootless:
            out["devices"] = _v2_devices(res)
    for controller, files in plan.items():
        if controller not in dirs:
            why = (f"rootless: {controller} is not delegated (create fails)" if getattr(manager, "optional", False)
                   and files else f"cgroup controller {controller} is not mounted on this host")
            unsupported.append({"field": resources.field_of(next(iter(files)), res), "reason": why})
            continue
        for name, value in files.items():
            writes.append({"field": resources.field_of(name, res), "controller": controller, "file": name,
                           "path": os.path.join(dirs[controller], name), "value": value})
    if res is not None and res.memory is not None and res.memory.kernel:
        unsupported.append({"field": ".linux.resources.memory.kernel",
                            "reason": "ignored: kernel memory settings are ignored (runc)"})
    if rootless and res is not None and res.devices:
        unsupported.append({"field": ".linux.resources.devices", "reason": "not applied in a rootless container (runc)"})
    out["writes"] = writes
    return out


def _may_make(path: str) -> bool:
    """Whether create's mkdir -p of `path` would not be refused (EACCES, EPERM, EROFS)."""
    d = path
    while not os.path.isdir(d):
        d = os.path.dirname(d)
    return d == path or os.access(d, os.W_OK | os.X_OK)


def _v1_host(paths: dict[str, str], plan: dict, res, unsupported: list[dict]) -> tuple[dict, list[dict]]:
    """What create decides against the hierarchy (cgroups/v1host, as the
    manager): the plan with the host's names and order, and the writes that
    come before it (new cpuset directories seeded, ancestors' rt runtime raised)."""
    from pyrunc.cgroups import resources, v1host
    from pyrunc.cgroups.common import DirMaker

    writes = []
    if "cpuset" in paths:
        for seed in v1host.cpuset_seeds(DirMaker.missing([paths["cpuset"]])):
            writes.append({"field": ".linux.cgroupsPath", "controller": "cpuset", "file": seed.file,
                           "path": seed.path, "value": seed.value})
    found = v1host.probe(paths, plan)
    try:
        plan, raises = v1host.settle(plan, found, res)
    except MissingFeature as err:  # only a memsw limit the host cannot take
        unsupported.append({"field": ".linux.resources.memory.swap", "reason": f"{err} (create fails)"})
        plan = {c: {k: v for k, v in files.items() if k != "memory.memsw.limit_in_bytes"} for c, files in plan.items()}
        plan, raises = v1host.settle(plan, found, res)
    for path, value in raises:
        writes.append({"field": resources.field_of("cpu.rt_runtime_us", res), "controller": "cpu",
                       "file": "cpu.rt_runtime_us", "path": path, "value": value})
    for controller, files in plan.items():  # a file the hierarchy lacks: create's write of it fails
        if controller in paths and files:
            have = v1host.offered(paths[controller], list(files))
            for name in files:
                if name not in have:
                    unsupported.append({"field": resources.field_of(name, res), "reason": f"the kernel has no "
                                        f"{name} in the {controller} hierarchy (create fails)"})
    return plan, writes


def _v2_devices(res) -> dict[str, Any]:
    from pyrunc.cgroups import devices

    rules = devices.parse_rules(res.devices if res else (), ".linux.resources", "config.json")
    state = devices.compute(rules)
    return {"field": ".linux.resources.devices", "program": "BPF_CGROUP_DEVICE",
            "instructions": len(devices.bpf_program(state)) // 8,
            "rules": [("allow " if state.default_allow else "deny ") + "a"] + [r.line() for r in state.exceptions]}


def _rootfs_ops(ops: tuple, root: str) -> list[dict]:
    from pyrunc import mountopts

    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        out = []
        for op in ops:
            entry: dict[str, Any] = {"field": op.field, "kind": op.kind, "destination": op.dest}
            if op.kind not in ("root-readonly",):
                entry["target"] = _resolve(root_fd, op.dest)
            for name in op._fields[3:]:
                value = getattr(op, name)
                if value == op._defaults[name] or name in ("index",):
                    continue
                if name in ("flags", "remount", "clear"):
                    value = mountopts.flag_names(value)
                elif name in ("attr_set", "attr_clr"):
                    value = mountopts.attr_names(value)
                elif name == "propagation":
                    value = [mountopts.flag_names(p) for p in value]
                elif name == "mode":
                    value = f"{value:o}"
                elif name == "rdev":
                    value = f"{os.major(value)}:{os.minor(value)}"
                elif name == "phase":
                    value = _PHASES[value]
                entry[name] = value
            entry["text"] = rootfsmod.describe(op)
            out.append(entry)
        return out
    finally:
        os.close(root_fd)


def _resolve(root_fd: int, dest: str) -> str:
    """Where `dest` lands inside the rootfs: the deepest existing part resolved
    with openat2(RESOLVE_IN_ROOT) as init resolves it, the rest as written."""
    from pyrunc import safepath

    head, rest = os.path.normpath("/" + dest.lstrip("/")), ""
    while True:
        try:
            inside = safepath.resolve_in_root(root_fd, head)
            break
        except OSError:
            if head == "/":
                return dest
            head, tail = os.path.split(head)
            rest = tail + ("/" + rest if rest else "")
    return os.path.join(inside, rest) if rest else inside


def _sysctls(linux, ns, unsupported: list[dict]) -> list[dict]:
    from pyrunc import sysctl
    from pyrunc.create import sysctl_scope

    if linux is None or not linux.sysctl:
        return []
    own, host_netns = sysctl_scope(ns)
    out = []
    for key, value in linux.sysctl.items():
        field = f".linux.sysctl[{key!r}]"
        try:
            (path,) = sysctl.validate_sysctl({key: value}, own, host_netns=host_netns)
            out.append({"field": field, "key": key, "path": f"/proc/sys/{path}", "value": value, "applied": True})
        except ConfigError as err:
            reason = str(err).split(f"{err.field}: ", 1)[-1]
            out.append({"field": field, "key": key, "value": value, "applied": False, "reason": reason})
            unsupported.append({"field": field, "reason": f"refused: {reason} (create fails)"})
    return out


def _rlimits(proc) -> list[dict]:
    from pyrunc.enter import RLIMITS

    out = []
    for i, rl in enumerate(proc.rlimits):
        if rl.type not in RLIMITS:
            raise ConfigError(f".process.rlimits[{i}].type", f"unknown rlimit {rl.type!r}")
        out.append({"field": f".process.rlimits[{i}]", "type": rl.type, "soft": rl.soft, "hard": rl.hard})
    return out


def _capabilities(proc, unsupported: list[dict]) -> dict[str, Any]:
    """The five sets as configured, and as the program has them after execve;
    the bounding set cannot hold what the runtime itself lacks."""
    names = capabilities.CAP_NAMES
    plan = capabilities.prepare_caps(proc.capabilities)
    held = capabilities.status_masks("self")
    runtime_bnd = frozenset(c for c in range(plan.last_cap + 1) if held.get("CapBnd", 0) >> c & 1)
    lacking = sorted((plan.bounding | plan.permitted | plan.inheritable) - runtime_bnd)
    if lacking:
        unsupported.append({"field": ".process.capabilities", "reason": "not held by the runtime itself: "
                            + ", ".join(names[c] for c in lacking)
                            + (" (create fails)" if set(lacking) & (plan.permitted | plan.inheritable) else
                               " (left out of the bounding set)")})
        plan = capabilities.CapPlan(plan.bounding & runtime_bnd, plan.effective, plan.permitted,
                                    plan.inheritable, plan.ambient, plan.last_cap, plan.warnings)
    outside = sorted(plan.inheritable - plan.bounding)
    if outside:  # capset(2): the new inheritable set must stay within the bounding set
        unsupported.append({"field": ".process.capabilities.inheritable", "reason": "not in the bounding set, "
                            "which capset refuses (create fails): " + ", ".join(names[c] for c in outside)})
    for text in plan.warnings:
        unsupported.append({"field": ".process.capabilities", "reason": text})
    after = capabilities.after_execve(plan, proc.user.uid, proc.no_new_privileges)
    status = {"bounding": "CapBnd", "effective": "CapEff", "permitted": "CapPrm", "inheritable": "CapInh",
              "ambient": "CapAmb"}
    return {"field": ".process.capabilities",
            "configured": {k: [names[c] for c in sorted(getattr(plan, k))] for k in capabilities.SETS},
            "afterExec": {k: [names[c] for c in sorted(v)] for k, v in after.items()},
            "status": {status[k]: f"{sum(1 << c for c in v):016x}" for k, v in after.items()}}


def _seccomp(proc, linux, unsupported: list[dict]) -> dict[str, Any]:
    """The filter create would load, summarised by running it (`seccomp check`)."""
    typed = linux.seccomp if linux else None
    out: dict[str, Any] = {"field": ".linux.seccomp"}
    if typed is None or (not typed.default_action and not typed.syscalls):
        out.update(mode=0, filter=False)
        return out
    from pyrunc import seccomp
    from pyrunc.seccomp import bpf
    from pyrunc.seccomp.arches import SYSCALLS, native
    from pyrunc.seccomp.tool import check

    bounding = list(proc.capabilities.bounding or ()) if proc.capabilities else []
    try:
        flags = seccomp.prepare(typed, bounding_caps=bounding).flags  # the kernel's flags probe, as create
    except MissingFeature as err:
        unsupported.append({"field": ".linux.seccomp.flags", "reason": f"{err} (create fails)"})
        flags = None
    profile, program, notify = seccomp.compile_profile(typed, bounding_caps=bounding)
    target = native()
    insns = bpf.decode(program)
    counts: dict[str, int] = {}
    for name in SYSCALLS:
        nr = target.number(name)
        if nr is None or nr < 0:
            continue
        action = bpf.action_name(check(target, insns, nr)[0])
        counts[action] = counts.get(action, 0) + 1
    rules, seen = [], set()
    for rule in profile.rules:
        for name in rule.names:
            nr = target.number(name)
            if nr is None or nr < 0:  # a rule for the profile's other architectures, or for none
                if not any((a.number(name) or -1) >= 0 for a in profile.arches):
                    unsupported.append({"field": rule.field, "reason": f"ignored: {name} is not a syscall on "
                                        + ", ".join(a.name for a in profile.arches)})
                continue
            if (name, rule.field) in seen:
                continue
            seen.add((name, rule.field))
            rules.append({"field": rule.field, "syscall": name,
                          "action": bpf.action_name(check(target, insns, nr)[0]),
                          "conditional": bool(rule.args)})
    out.update(mode=2, filter=True, arch=target.name, defaultAction=bpf.action_name(profile.default_action),
               architectures=[a.scmp for a in profile.arches], flags=flags, notify=notify,
               instructions=len(insns), actions=dict(sorted(counts.items())), syscalls=rules,
               loaded=("last, right before execve" if not notify else "before the user switch (notify listener)"))
    return out


def _hooks(hooks) -> list[dict]:
    out = []
    for kind, attr in _HOOK_ATTR.items():
        for i, h in enumerate(getattr(hooks, attr)):
            out.append({"field": f".hooks.{kind}[{i}]", "kind": kind, "when": HOOK_TIMING[kind], "path": h.path,
                        "args": list(h.args), "timeout": h.timeout})
    return out


def _process(spec, root: str) -> dict[str, Any]:
    from pyrunc.enter import home_from_passwd
    from pyrunc.launch import env_dict

    proc = spec.process
    env = env_dict(proc.env)
    if "HOME" not in env:
        env["HOME"] = home_from_passwd(_read_in_root(root, "/etc/passwd"), proc.user.uid)
    user = proc.user
    return {"field": ".process", "args": list(proc.args), "env": [f"{k}={v}" for k, v in env.items()],
            "cwd": proc.cwd or "/", "terminal": proc.terminal,
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.additional_gids),
                     "umask": f"{user.umask if user.umask is not None else 0o022:04o}"},
            "oomScoreAdj": proc.oom_score_adj, "apparmorProfile": proc.apparmor_profile,
            "selinuxLabel": proc.selinux_label}


def _read_in_root(root: str, path: str) -> bytes:
    """A file of the rootfs, resolved inside it as init sees it after pivot_root
    (symlinks followed, clamped to the rootfs: never a host path); b"" if absent."""
    from pyrunc import safepath

    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = safepath.open_in_root(root_fd, path, os.O_RDONLY | os.O_NONBLOCK)  # a fifo must not block us
    except OSError:
        return b""
    finally:
        os.close(root_fd)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""  # a device or fifo planted as /etc/passwd: nothing to read
        return f.read(1 << 20)


def _unsupported(spec, unsupported: list[dict]) -> None:
    """What create refuses on this host (MissingFeature) or leaves alone."""
    linux, proc = spec.linux, spec.process
    if linux is not None and linux.net_devices:
        unsupported.append({"field": ".linux.netDevices", "reason": "moving network devices is not implemented (create fails)"})
    if linux is not None and linux.intel_rdt is not None:
        unsupported.append({"field": ".linux.intelRdt", "reason": "resctrl is not mounted on this host (create fails)"})
    if proc.apparmor_profile or proc.selinux_label:
        from pyrunc import lsm

        try:
            lsm.check_lsm(proc.apparmor_profile, proc.selinux_label)
        except PyruncError as err:
            field = ".process.apparmorProfile" if proc.apparmor_profile else ".process.selinuxLabel"
            unsupported.append({"field": field, "reason": f"{err} (create fails)"})
    for other in ("solaris", "windows", "vm", "zos", "freebsd"):
        if other in spec.raw:
            unsupported.append({"field": f".{other}", "reason": "ignored: not for Linux"})
    for field in unread_fields(spec.raw):
        unsupported.append({"field": field, "reason": "ignored: not a field pyrunc reads (config.md: unknown "
                            "properties are ignored)"})
    if proc.user.username is not None:
        unsupported.append({"field": ".process.user.username", "reason": "ignored: Windows only (uid and gid apply)"})
    if proc.command_line is not None:
        unsupported.append({"field": ".process.commandLine", "reason": "ignored: Windows only (args apply)"})
    if proc.console_size is not None and not proc.terminal:
        unsupported.append({"field": ".process.consoleSize", "reason": "ignored: process.terminal is false"})
    if linux is not None and linux.mount_label:
        unsupported.append({"field": ".linux.mountLabel", "reason": "ignored: SELinux mount labels are not applied"})
    if linux is not None and linux.personality is not None:
        from pyrunc.launch import personality_value

        personality_value(linux.personality)  # a bad domain is a ConfigError, as in create


# A JSON value every field refuses or keeps: a string where most fields want another type, and
# with a NUL, which every C-string check refuses; a field that keeps it changes the typed spec.
_NOT_A_VALUE = "\0pyrunc explain"


def unread_fields(raw: object) -> list[str]:
    """The config.json keys pyrunc never reads, found by asking the one validator
    rather than by a second list of field names: a key whose value, replaced by
    one the checks refuse (or keep), neither fails spec.parse nor changes the typed spec
    is not read (runtime-spec config.md: unknown properties are ignored)."""
    import json

    if not isinstance(raw, dict):
        return []
    text = json.dumps(raw)
    base = specmod.replace(specmod.parse(raw), raw={})
    out: list[str] = []

    def read(path: tuple) -> bool:
        probe = json.loads(text)
        node = probe
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = _NOT_A_VALUE
        try:
            return specmod.replace(specmod.parse(probe), raw={}) != base
        except ConfigError:
            return True

    def walk(value: object, path: tuple, field: str) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                if key in ("solaris", "windows", "vm", "zos", "freebsd") and not path:
                    continue  # listed as not for Linux
                if read(path + (key,)):
                    walk(child, path + (key,), f"{field}.{key}")
                else:
                    out.append(f"{field}.{key}")
        elif isinstance(value, list):
            for i, child in enumerate(value):
                if isinstance(child, (dict, list)):
                    walk(child, path + (i,), f"{field}[{i}]")

    walk(raw, (), "")
    return out
