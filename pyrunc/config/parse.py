"""Field-by-field checks of config.json sections, building the spec records.

spec.parse() calls parse_spec(); `linux.resources` and `linux.seccomp` are in
config.resources and config.seccomp. Every rule here has its twin in schemas/config.schema.json.
"""

from __future__ import annotations

from pyrunc import jsonfast as json  # json without its re import (hot path)

from pyrunc.spec import (
    Capabilities, ConsoleSize, Device, ExecCPUAffinity, Hook, Hooks, IDMapping, IntelRdt,
    IOPriority, Linux, MemoryPolicy, Mount, Namespace, NetDevice, Personality, Process, Rlimit,
    Root, Scheduler, Spec, TimeOffset, User,
)
from pyrunc.config.checks import (
    _ABSENT, I32, I64, IOPRIO_CLASSES, MEMORY_POLICY_FLAGS, MEMORY_POLICY_MODES, NAMESPACE_TYPES,
    PERSONALITY_DOMAINS, RLIMIT_TYPES, ROOTFS_PROPAGATIONS, SCHEDULER_FLAGS, SCHEDULER_POLICIES,
    TIME_CLOCKS, DEVICE_TYPES, U32, U64, Invalid, _abs, _enum, _enums, _int, _key, _list,
    _no_newline, _o_bool, _o_int, _o_items, _o_str, _o_strs, _obj, _required, _str, _str_map,
    _strs, _CPU_LIST, _is_semver,
)
from pyrunc.config.resources import parse_resources
from pyrunc.config.seccomp import parse_seccomp

def parse_spec(obj: object) -> Spec:
    """Check the decoded config.json field by field; the first bad field raises Invalid."""
    if type(obj) is not dict:
        raise Invalid(".", "must be a JSON object")
    version = _str(_required(obj, "ociVersion", ""), ".ociVersion")
    if not _is_semver(version):
        raise Invalid(".ociVersion", f"{json.dumps(version)} is not a SemVer 2.0.0 version")
    r = _obj(_required(obj, "root", ""), ".root")
    root = Root(_root_path(_required(r, "path", ".root")), _o_bool(r, "readonly", ".root", False))
    v = obj.get("process", _ABSENT)
    process = None if v is _ABSENT else _process(v, ".process")
    v = obj.get("hooks", _ABSENT)
    hooks = Hooks() if v is _ABSENT else _hooks(v, ".hooks")
    v = obj.get("annotations", _ABSENT)
    annotations = {} if v is _ABSENT else _str_map(v, ".annotations", c_strings=False)
    v = obj.get("linux", _ABSENT)
    linux = None if v is _ABSENT else _linux(v, ".linux")
    for other in ("solaris", "windows", "vm", "zos", "freebsd"):
        if other in obj:
            _obj(obj[other], f".{other}")
    return Spec(
        oci_version=version,
        root=root,
        process=process,
        hostname=_o_str(obj, "hostname", ""),
        domainname=_o_str(obj, "domainname", ""),
        mounts=_o_items(obj, "mounts", "", _mount),
        hooks=hooks,
        annotations=annotations,
        linux=linux,
        raw=obj,
    )


def _root_path(v: object) -> str:
    if type(v) is not str or not v:
        raise Invalid(".root.path", "must be a non-empty string")
    return _str(v, ".root.path")


def _process(v: object, p: str) -> Process:
    d = _obj(v, p)
    args = d.get("args", _ABSENT)
    if type(args) is not list or not args:
        raise Invalid(f"{p}.args", "must be a non-empty array of strings")
    args = _strs(args, f"{p}.args")
    cwd = _abs(_required(d, "cwd", p), f"{p}.cwd")
    v = d.get("consoleSize", _ABSENT)
    console = None
    if v is not _ABSENT:
        c = _obj(v, f"{p}.consoleSize")
        cp = f"{p}.consoleSize"
        console = ConsoleSize(_int(_required(c, "height", cp), f"{cp}.height", U64),
                              _int(_required(c, "width", cp), f"{cp}.width", U64))
    v = d.get("user", _ABSENT)
    user = User() if v is _ABSENT else _user(v, f"{p}.user")
    v = d.get("capabilities", _ABSENT)
    caps = None
    if v is not _ABSENT:
        c = _obj(v, f"{p}.capabilities")
        cp = f"{p}.capabilities"
        caps = Capabilities(_o_strs(c, "bounding", cp), _o_strs(c, "effective", cp),
                            _o_strs(c, "inheritable", cp), _o_strs(c, "permitted", cp),
                            _o_strs(c, "ambient", cp))
    rlimits = _o_items(d, "rlimits", p, _rlimit)
    seen: set[str] = set()
    for i, rl in enumerate(rlimits):
        if rl.type in seen:
            raise Invalid(f"{p}.rlimits[{i}].type", f"duplicate rlimit type {rl.type}")
        seen.add(rl.type)
    v = d.get("ioPriority", _ABSENT)
    io = None
    if v is not _ABSENT:
        c = _obj(v, f"{p}.ioPriority")
        cp = f"{p}.ioPriority"
        io = IOPriority(_enum(_required(c, "class", cp), f"{cp}.class", IOPRIO_CLASSES),
                        _o_int(c, "priority", cp, (0, 7, "")) or 0)  # only class is required (schema; runc: 0)
    v = d.get("scheduler", _ABSENT)
    sched = None if v is _ABSENT else _scheduler(v, f"{p}.scheduler")
    v = d.get("execCPUAffinity", _ABSENT)
    affinity = None
    if v is not _ABSENT:
        c = _obj(v, f"{p}.execCPUAffinity")
        cp = f"{p}.execCPUAffinity"
        affinity = ExecCPUAffinity(_cpu_list(c, "initial", cp), _cpu_list(c, "final", cp))
    return Process(
        args=args,
        cwd=cwd,
        env=_o_strs(d, "env", p) or (),
        terminal=_o_bool(d, "terminal", p, False),  # type: ignore[arg-type]
        console_size=console,
        user=user,
        rlimits=rlimits,
        apparmor_profile=_o_str(d, "apparmorProfile", p),
        selinux_label=_o_str(d, "selinuxLabel", p),
        capabilities=caps,
        no_new_privileges=_o_bool(d, "noNewPrivileges", p, False),  # type: ignore[arg-type]
        oom_score_adj=_o_int(d, "oomScoreAdj", p, (-1000, 1000, "")),
        io_priority=io,
        scheduler=sched,
        exec_cpu_affinity=affinity,
        command_line=_o_str(d, "commandLine", p),
    )


def _user(v: object, p: str) -> User:
    d = _obj(v, p)
    gids = d.get("additionalGids", _ABSENT)
    if gids is _ABSENT:
        gids = ()
    else:
        gp = f"{p}.additionalGids"
        gids = tuple(_int(g, f"{gp}[{i}]", U32) for i, g in enumerate(_list(gids, gp)))
    return User(_int(_required(d, "uid", p), f"{p}.uid", U32),
                _int(_required(d, "gid", p), f"{p}.gid", U32),
                _o_int(d, "umask", p, U32), gids, _o_str(d, "username", p))


def _rlimit(v: object, p: str) -> Rlimit:
    d = _obj(v, p)
    return Rlimit(_enum(_required(d, "type", p), f"{p}.type", RLIMIT_TYPES),
                  _int(_required(d, "hard", p), f"{p}.hard", U64),
                  _int(_required(d, "soft", p), f"{p}.soft", U64))


def _scheduler(v: object, p: str) -> Scheduler:
    d = _obj(v, p)
    flags = d.get("flags", _ABSENT)
    return Scheduler(
        policy=_enum(_required(d, "policy", p), f"{p}.policy", SCHEDULER_POLICIES),
        nice=_o_int(d, "nice", p, I32),
        priority=_o_int(d, "priority", p, I32),
        flags=() if flags is _ABSENT else _enums(flags, f"{p}.flags", SCHEDULER_FLAGS),
        runtime=_o_int(d, "runtime", p, U64),
        deadline=_o_int(d, "deadline", p, U64),
        period=_o_int(d, "period", p, U64),
    )


def _cpu_list(d: dict, key: str, p: str) -> str | None:
    s = _o_str(d, key, p)
    if s is not None and not _CPU_LIST.issuperset(s):
        raise Invalid(f"{p}.{key}", "must be a CPU list such as 0-3,7")
    return s


def _id_mapping(v: object, p: str) -> IDMapping:
    d = _obj(v, p)
    return IDMapping(_int(_required(d, "containerID", p), f"{p}.containerID", U32),
                     _int(_required(d, "hostID", p), f"{p}.hostID", U32),
                     _int(_required(d, "size", p), f"{p}.size", U32))


def _mount(v: object, p: str) -> Mount:
    d = _obj(v, p)
    dest = _str(_required(d, "destination", p), f"{p}.destination")
    if not dest:
        raise Invalid(f"{p}.destination", "must be a non-empty path")
    uid_maps = _o_items(d, "uidMappings", p, _id_mapping) if "uidMappings" in d else None
    gid_maps = _o_items(d, "gidMappings", p, _id_mapping) if "gidMappings" in d else None
    if (uid_maps is None) != (gid_maps is None):
        missing = "gidMappings" if "uidMappings" in d else "uidMappings"
        raise Invalid(f"{p}.{missing}", "is required together with "
                       + ("uidMappings" if missing == "gidMappings" else "gidMappings"))
    return Mount(dest, _o_str(d, "type", p), _o_str(d, "source", p),
                 _o_strs(d, "options", p) or (), uid_maps, gid_maps)


def _hook(v: object, p: str) -> Hook:
    d = _obj(v, p)
    return Hook(_abs(_required(d, "path", p), f"{p}.path"), _o_strs(d, "args", p) or (),
                _o_strs(d, "env", p), _o_int(d, "timeout", p, (1, None, "")))


def parse_hooks(v: object, p: str) -> Hooks:
    """The `hooks` object of config.json, or of a state.json (`delete` runs poststop later)."""
    return _hooks(v, p)


def _hooks(v: object, p: str) -> Hooks:
    d = _obj(v, p)
    return Hooks(*(_o_items(d, k, p, _hook) for k in (
        "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")))


def _linux(v: object, p: str) -> Linux:
    d = _obj(v, p)
    namespaces = _o_items(d, "namespaces", p, _namespace)
    seen: set[str] = set()
    for i, ns in enumerate(namespaces):
        if ns.type in seen:
            raise Invalid(f"{p}.namespaces[{i}].type", f"duplicate namespace type {ns.type}")
        seen.add(ns.type)
    time_offsets: dict[str, TimeOffset] = {}
    v = d.get("timeOffsets", _ABSENT)
    if v is not _ABSENT:
        tp = f"{p}.timeOffsets"
        for k, t in _obj(v, tp).items():
            kp = _key(k, tp)
            if k not in TIME_CLOCKS:
                raise Invalid(kp, f"unknown clock; must be one of: {', '.join(TIME_CLOCKS)}")
            t = _obj(t, kp)
            time_offsets[k] = TimeOffset(_o_int(t, "secs", kp, I64), _o_int(t, "nanosecs", kp, U32))
    net_devices: dict[str, NetDevice] = {}
    v = d.get("netDevices", _ABSENT)
    if v is not _ABSENT:
        np_ = f"{p}.netDevices"
        for k, n in _obj(v, np_).items():
            kp = _key(k, np_)
            net_devices[k] = NetDevice(_o_str(_obj(n, kp), "name", kp))
    v = d.get("resources", _ABSENT)
    resources = None if v is _ABSENT else parse_resources(v, f"{p}.resources")
    v = d.get("seccomp", _ABSENT)
    seccomp = None if v is _ABSENT else parse_seccomp(v, f"{p}.seccomp")
    v = d.get("rootfsPropagation", _ABSENT)
    propagation = None if v is _ABSENT else _enum(v, f"{p}.rootfsPropagation", ROOTFS_PROPAGATIONS)
    v = d.get("sysctl", _ABSENT)
    sysctl = {} if v is _ABSENT else _str_map(v, f"{p}.sysctl")
    v = d.get("intelRdt", _ABSENT)
    rdt = None if v is _ABSENT else _intel_rdt(v, f"{p}.intelRdt")
    v = d.get("memoryPolicy", _ABSENT)
    mempol = None
    if v is not _ABSENT:
        mp = f"{p}.memoryPolicy"
        m = _obj(v, mp)
        flags = m.get("flags", _ABSENT)
        mempol = MemoryPolicy(_enum(_required(m, "mode", mp), f"{mp}.mode", MEMORY_POLICY_MODES),
                              _o_str(m, "nodes", mp),
                              () if flags is _ABSENT else _enums(flags, f"{mp}.flags", MEMORY_POLICY_FLAGS))
    v = d.get("personality", _ABSENT)
    personality = None
    if v is not _ABSENT:
        pp = f"{p}.personality"
        m = _obj(v, pp)
        personality = Personality(_enum(_required(m, "domain", pp), f"{pp}.domain", PERSONALITY_DOMAINS),
                                  _o_strs(m, "flags", pp) or ())
    return Linux(
        namespaces=namespaces,
        uid_mappings=_o_items(d, "uidMappings", p, _id_mapping),
        gid_mappings=_o_items(d, "gidMappings", p, _id_mapping),
        time_offsets=time_offsets,
        devices=_o_items(d, "devices", p, _device),
        net_devices=net_devices,
        cgroups_path=_o_str(d, "cgroupsPath", p),
        resources=resources,
        rootfs_propagation=propagation,
        seccomp=seccomp,
        sysctl=sysctl,
        masked_paths=_paths(d, "maskedPaths", p),
        readonly_paths=_paths(d, "readonlyPaths", p),
        mount_label=_o_str(d, "mountLabel", p),
        intel_rdt=rdt,
        memory_policy=mempol,
        personality=personality,
    )


def _namespace(v: object, p: str) -> Namespace:
    d = _obj(v, p)
    path = d.get("path", _ABSENT)
    return Namespace(_enum(_required(d, "type", p), f"{p}.type", NAMESPACE_TYPES),
                     None if path is _ABSENT else _abs(path, f"{p}.path"))


def _device(v: object, p: str) -> Device:
    d = _obj(v, p)
    dtype = _enum(_required(d, "type", p), f"{p}.type", DEVICE_TYPES)
    path = _abs(_required(d, "path", p), f"{p}.path")
    if dtype == "p":
        major, minor = _o_int(d, "major", p, I64), _o_int(d, "minor", p, I64)
    else:  # REQUIRED unless type is p
        major = _int(_required(d, "major", p), f"{p}.major", I64)
        minor = _int(_required(d, "minor", p), f"{p}.minor", I64)
    return Device(dtype, path, major, minor, _o_int(d, "fileMode", p, U32),
                  _o_int(d, "uid", p, U32), _o_int(d, "gid", p, U32))


def _paths(d: dict, key: str, p: str) -> tuple[str, ...]:
    v = d.get(key, _ABSENT)
    if v is _ABSENT:
        return ()
    kp = f"{p}.{key}"
    return tuple(_abs(s, f"{kp}[{i}]") for i, s in enumerate(_list(v, kp)))


def _intel_rdt(v: object, p: str) -> IntelRdt:
    d = _obj(v, p)
    mem_bw = _o_str(d, "memBwSchema", p)
    if mem_bw is not None and (not mem_bw.startswith("MB:") or "\n" in mem_bw):
        raise Invalid(f"{p}.memBwSchema", "must start with MB: and contain no newline")
    schemata = _o_strs(d, "schemata", p)
    for i, s in enumerate(schemata or ()):
        _no_newline(s, f"{p}.schemata[{i}]")
    return IntelRdt(_o_str(d, "closID", p), _o_str(d, "l3CacheSchema", p), mem_bw, schemata,
                    _o_bool(d, "enableMonitoring", p), _o_bool(d, "enableCMT", p),
                    _o_bool(d, "enableMBM", p))
