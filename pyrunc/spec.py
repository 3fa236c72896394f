"""The OCI runtime-spec config.json (v1.2, Linux) as frozen typed objects.

`load(bundle)` / `parse(obj)` turn config.json into a `Spec`. The loader is on
the hot path of every `pyrunc run`, so it checks every field with plain code
(no jsonschema, no re) and raises `ConfigError` naming the JSON path of the
first bad field: `config.json: .process.args: must be a non-empty array of
strings`. `schemas/config.schema.json` states the same rules as a JSON
Schema; tests/unit/pyrunc/test_spec.py holds the two in agreement.

Rules beyond plain JSON types, all from the spec text (config.md,
config-linux.md), stated once here:
- `ociVersion` is SemVer 2 (MAJOR.MINOR.PATCH[-pre][+build]); `root` is
  REQUIRED on Linux; `process` is optional (the caller requires it for start).
- `process.cwd` is REQUIRED and absolute; `process.args` is REQUIRED and
  non-empty (non-Windows); hook paths, namespace paths and device paths are
  absolute; mount destinations may be relative (meaning relative to "/").
- namespace types and rlimit types are unique; enums (namespace types,
  rlimits, rootfsPropagation, seccomp actions/arches/flags/operators,
  scheduler, ioPriority, memoryPolicy, personality domain) are closed.
- map keys (annotations, sysctl, netDevices, rdma, unified) are non-empty;
  timeOffsets keys are `boottime` / `monotonic` only.
- unknown properties are ignored (config.md "Extensibility"); JSON null is
  never a valid value; integral floats (1.0) count as integers, as in JSON
  Schema.

Absent optional scalars and objects become None; absent arrays and maps
become () and {} where the spec gives absence and emptiness the same meaning
(mounts, hooks, env, rlimits, additionalGids, namespaces, id mappings,
devices, masked/readonly paths, annotations, sysctl, timeOffsets,
netDevices). Capability sets stay None when absent: "no set given" and "an
empty set" differ for capabilities.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pyrunc.errors import ConfigError

OCI_VERSION = "1.0.2-dev"  # what runc 1.1 writes and reports; `pyrunc spec` matches it

U16 = (0, 0xFFFF)
U32 = (0, 0xFFFFFFFF)
U64 = (0, 0xFFFFFFFFFFFFFFFF)
I32 = (-(2**31), 2**31 - 1)
I64 = (-(2**63), 2**63 - 1)

NAMESPACE_TYPES = ("mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time")
RLIMIT_TYPES = (
    "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
    "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
)
ROOTFS_PROPAGATIONS = ("private", "shared", "slave", "unbindable")
DEVICE_TYPES = ("c", "b", "u", "p")
CGROUP_DEVICE_TYPES = ("a", "c", "b")
# every ordering of a subset of "rwm": JSON Schema states this as an enum too
CGROUP_DEVICE_ACCESS = (
    "", "r", "w", "m", "rw", "wr", "rm", "mr", "wm", "mw",
    "rwm", "rmw", "wrm", "wmr", "mrw", "mwr",
)
SCHEDULER_POLICIES = (
    "SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE",
    "SCHED_DEADLINE",
)
SCHEDULER_FLAGS = (
    "SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN",
    "SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_UTIL_CLAMP_MIN",
    "SCHED_FLAG_UTIL_CLAMP_MAX",
)
IOPRIO_CLASSES = ("IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE")
PERSONALITY_DOMAINS = ("LINUX", "LINUX32")
MEMORY_POLICY_MODES = (
    "MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
    "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL",
)
MEMORY_POLICY_FLAGS = ("MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES")
TIME_CLOCKS = ("boottime", "monotonic")
SECCOMP_ACTIONS = (
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
)
SECCOMP_FLAGS = (
    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
)
SECCOMP_OPERATORS = (
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)
SECCOMP_ARCHES = (
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH", "SCMP_ARCH_SHEB", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
)

_frozen = dataclass(frozen=True, slots=True)


# ---------------------------------------------------------------- process
@_frozen
class User:
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: tuple[int, ...] = ()
    username: str | None = None


@_frozen
class ConsoleSize:
    height: int
    width: int


@_frozen
class Capabilities:
    bounding: tuple[str, ...] | None = None
    effective: tuple[str, ...] | None = None
    inheritable: tuple[str, ...] | None = None
    permitted: tuple[str, ...] | None = None
    ambient: tuple[str, ...] | None = None


@_frozen
class Rlimit:
    type: str
    hard: int
    soft: int


@_frozen
class Scheduler:
    policy: str
    nice: int | None = None
    priority: int | None = None
    flags: tuple[str, ...] = ()
    runtime: int | None = None
    deadline: int | None = None
    period: int | None = None


@_frozen
class IOPriority:
    class_: str  # JSON "class"
    priority: int


@_frozen
class ExecCPUAffinity:
    initial: str | None = None
    final: str | None = None


@_frozen
class Process:
    args: tuple[str, ...]
    cwd: str
    env: tuple[str, ...] = ()
    terminal: bool = False
    console_size: ConsoleSize | None = None
    user: User = User()
    rlimits: tuple[Rlimit, ...] = ()
    apparmor_profile: str | None = None
    selinux_label: str | None = None
    capabilities: Capabilities | None = None
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    io_priority: IOPriority | None = None
    scheduler: Scheduler | None = None
    exec_cpu_affinity: ExecCPUAffinity | None = None
    command_line: str | None = None


# ---------------------------------------------------------------- root, mounts, hooks
@_frozen
class Root:
    path: str
    readonly: bool = False


@_frozen
class IDMapping:
    container_id: int
    host_id: int
    size: int


@_frozen
class Mount:
    destination: str
    type: str | None = None
    source: str | None = None
    options: tuple[str, ...] = ()
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()


@_frozen
class Hook:
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


@_frozen
class Hooks:
    prestart: tuple[Hook, ...] = ()
    create_runtime: tuple[Hook, ...] = ()
    create_container: tuple[Hook, ...] = ()
    start_container: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()


# ---------------------------------------------------------------- linux
@_frozen
class Namespace:
    type: str
    path: str | None = None


@_frozen
class Device:
    type: str
    path: str
    major: int | None = None
    minor: int | None = None
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@_frozen
class TimeOffset:
    secs: int | None = None
    nanosecs: int | None = None


@_frozen
class NetDevice:
    name: str | None = None


@_frozen
class Personality:
    domain: str
    flags: tuple[str, ...] = ()


@_frozen
class MemoryPolicy:
    mode: str
    nodes: str | None = None
    flags: tuple[str, ...] = ()


@_frozen
class IntelRdt:
    clos_id: str | None = None
    l3_cache_schema: str | None = None
    mem_bw_schema: str | None = None
    schemata: tuple[str, ...] | None = None
    enable_monitoring: bool | None = None
    enable_cmt: bool | None = None
    enable_mbm: bool | None = None


@_frozen
class DeviceRule:
    """One entry of linux.resources.devices (the device cgroup)."""

    allow: bool
    type: str | None = None
    major: int | None = None
    minor: int | None = None
    access: str | None = None


@_frozen
class Memory:
    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None
    kernel: int | None = None
    kernel_tcp: int | None = None
    swappiness: int | None = None
    disable_oom_killer: bool | None = None
    use_hierarchy: bool | None = None
    check_before_update: bool | None = None


@_frozen
class CPU:
    shares: int | None = None
    quota: int | None = None
    burst: int | None = None
    period: int | None = None
    realtime_runtime: int | None = None
    realtime_period: int | None = None
    cpus: str | None = None
    mems: str | None = None
    idle: int | None = None


@_frozen
class Pids:
    limit: int | None = None


@_frozen
class WeightDevice:
    major: int
    minor: int
    weight: int | None = None
    leaf_weight: int | None = None


@_frozen
class ThrottleDevice:
    major: int
    minor: int
    rate: int


@_frozen
class BlockIO:
    weight: int | None = None
    leaf_weight: int | None = None
    weight_device: tuple[WeightDevice, ...] = ()
    throttle_read_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_read_iops_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_iops_device: tuple[ThrottleDevice, ...] = ()


@_frozen
class HugepageLimit:
    page_size: str
    limit: int


@_frozen
class InterfacePriority:
    name: str
    priority: int


@_frozen
class Network:
    class_id: int | None = None
    priorities: tuple[InterfacePriority, ...] = ()


@_frozen
class Rdma:
    hca_handles: int | None = None
    hca_objects: int | None = None


@_frozen
class Resources:
    devices: tuple[DeviceRule, ...] = ()
    memory: Memory | None = None
    cpu: CPU | None = None
    pids: Pids | None = None
    block_io: BlockIO | None = None
    hugepage_limits: tuple[HugepageLimit, ...] = ()
    network: Network | None = None
    rdma: dict[str, Rdma] = field(default_factory=dict)
    unified: dict[str, str] = field(default_factory=dict)


@_frozen
class SyscallArg:
    index: int
    value: int
    op: str
    value_two: int | None = None


@_frozen
class Syscall:
    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[SyscallArg, ...] = ()


@_frozen
class Seccomp:
    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    listener_path: str | None = None
    listener_metadata: str | None = None
    syscalls: tuple[Syscall, ...] = ()


@_frozen
class Linux:
    namespaces: tuple[Namespace, ...] = ()
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()
    time_offsets: dict[str, TimeOffset] = field(default_factory=dict)
    devices: tuple[Device, ...] = ()
    net_devices: dict[str, NetDevice] = field(default_factory=dict)
    cgroups_path: str | None = None
    resources: Resources | None = None
    resources_raw: dict | None = None  # the JSON object as given: the cgroups code works on it
    rootfs_propagation: str | None = None
    seccomp: Seccomp | None = None
    seccomp_raw: dict | None = None  # the JSON object as given: the seccomp compiler works on it
    sysctl: dict[str, str] = field(default_factory=dict)
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    mount_label: str | None = None
    intel_rdt: IntelRdt | None = None
    memory_policy: MemoryPolicy | None = None
    personality: Personality | None = None

    def namespace(self, ns_type: str) -> Namespace | None:
        """The entry for `ns_type` ("pid", "user", ...), or None if the container shares the host's."""
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None


@_frozen
class Spec:
    oci_version: str
    root: Root | None  # REQUIRED on Linux: parse() never leaves it None
    process: Process | None = None
    hostname: str | None = None
    domainname: str | None = None
    mounts: tuple[Mount, ...] = ()
    hooks: Hooks = Hooks()
    annotations: dict[str, str] = field(default_factory=dict)
    linux: Linux | None = None
    raw: dict = field(default_factory=dict)  # the whole config.json object


# ---------------------------------------------------------------- loading
def load(bundle_dir: str) -> Spec:
    """Read and check `<bundle_dir>/config.json`; every problem is one ConfigError line."""
    path = bundle_dir.rstrip("/") + "/config.json" if bundle_dir else "config.json"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        import os

        if not os.path.isdir(bundle_dir or "."):
            raise ConfigError("", f"bundle directory {bundle_dir} does not exist") from None
        raise ConfigError("", f"{path} does not exist") from None
    except OSError as err:
        raise ConfigError("", f"cannot read {path}: {err.strerror}") from None
    try:
        obj = json.loads(data)
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise ConfigError("", f"invalid JSON: {err}") from None
    return parse(obj)


def parse(obj: object, source: str = "config.json") -> Spec:
    """Check `obj` (the decoded config.json) field by field and build the Spec."""
    try:
        return _spec(obj)
    except _Invalid as bad:
        raise ConfigError(bad.path or ".", bad.message, source) from None


class _Invalid(Exception):
    """Internal: the first bad field; parse() turns it into a ConfigError with the source name."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message


_ABSENT = object()
_DIGITS = frozenset("0123456789")
_SEMVER_IDENT = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-")
_CPU_LIST = frozenset("0123456789, -")


def _obj(v: object, p: str) -> dict:
    if type(v) is not dict:
        raise _Invalid(p, "must be an object")
    return v


def _str(v: object, p: str) -> str:
    if type(v) is not str:
        raise _Invalid(p, "must be a string")
    return v


def _bool(v: object, p: str) -> bool:
    if type(v) is not bool:
        raise _Invalid(p, "must be a boolean")
    return v


def _int(v: object, p: str, bounds: tuple[int, int | None]) -> int:
    if type(v) is not int:
        if type(v) is float and v.is_integer():
            v = int(v)
        else:
            raise _Invalid(p, _int_msg(bounds))
    lo, hi = bounds
    if v < lo or (hi is not None and v > hi):
        raise _Invalid(p, _int_msg(bounds))
    return v


def _int_msg(bounds: tuple[int, int | None]) -> str:
    lo, hi = bounds
    return f"must be an integer >= {lo}" if hi is None else f"must be an integer in [{lo}, {hi}]"


def _abs(v: object, p: str) -> str:
    if type(v) is not str or not v.startswith("/"):
        raise _Invalid(p, "must be an absolute path")
    return v


def _enum(v: object, p: str, allowed: tuple[str, ...]) -> str:
    if type(v) is not str or v not in allowed:
        raise _Invalid(p, f"{json.dumps(v)} is not one of: {', '.join(allowed)}")
    return v


def _list(v: object, p: str) -> list:
    if type(v) is not list:
        raise _Invalid(p, "must be an array")
    return v


def _strs(v: object, p: str) -> tuple[str, ...]:
    if type(v) is not list:
        raise _Invalid(p, "must be an array of strings")
    for i, s in enumerate(v):
        if type(s) is not str:
            raise _Invalid(f"{p}[{i}]", "must be a string")
    return tuple(v)


def _enums(v: object, p: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(_enum(s, f"{p}[{i}]", allowed) for i, s in enumerate(_list(v, p)))


def _key(k: str, p: str) -> str:
    if not k:
        raise _Invalid(p, "keys must be non-empty strings")
    return f"{p}[{json.dumps(k)}]"


def _str_map(v: object, p: str) -> dict[str, str]:
    for k, s in _obj(v, p).items():
        kp = _key(k, p)
        if type(s) is not str:
            raise _Invalid(kp, "must be a string")
    return dict(v)  # type: ignore[call-overload]


def _no_newline(v: str, p: str) -> str:
    if "\n" in v:
        raise _Invalid(p, "must not contain a newline")
    return v


def _required(d: dict, key: str, p: str) -> object:
    v = d.get(key, _ABSENT)
    if v is _ABSENT:
        raise _Invalid(f"{p}.{key}", "is required")
    return v


# Small readers for "optional key of this kind": absent -> default, present -> checked.
def _o_str(d: dict, key: str, p: str) -> str | None:
    v = d.get(key, _ABSENT)
    return None if v is _ABSENT else _str(v, f"{p}.{key}")


def _o_bool(d: dict, key: str, p: str, default: bool | None = None) -> bool | None:
    v = d.get(key, _ABSENT)
    return default if v is _ABSENT else _bool(v, f"{p}.{key}")


def _o_int(d: dict, key: str, p: str, bounds: tuple[int, int | None]) -> int | None:
    v = d.get(key, _ABSENT)
    return None if v is _ABSENT else _int(v, f"{p}.{key}", bounds)


def _o_strs(d: dict, key: str, p: str) -> tuple[str, ...] | None:
    v = d.get(key, _ABSENT)
    return None if v is _ABSENT else _strs(v, f"{p}.{key}")


def _o_items(d: dict, key: str, p: str, item) -> tuple:  # type: ignore[no-untyped-def]
    v = d.get(key, _ABSENT)
    if v is _ABSENT:
        return ()
    kp = f"{p}.{key}"
    return tuple(item(x, f"{kp}[{i}]") for i, x in enumerate(_list(v, kp)))


def _is_semver(s: str) -> bool:
    core, plus, build = s.partition("+")
    if plus and not (build and _SEMVER_IDENT.issuperset(build)):
        return False
    core, dash, pre = core.partition("-")
    if dash and not (pre and _SEMVER_IDENT.issuperset(pre)):
        return False
    parts = core.split(".")
    return len(parts) == 3 and all(x and _DIGITS.issuperset(x) for x in parts)


def _spec(obj: object) -> Spec:
    if type(obj) is not dict:
        raise _Invalid(".", "must be a JSON object")
    version = _str(_required(obj, "ociVersion", ""), ".ociVersion")
    if not _is_semver(version):
        raise _Invalid(".ociVersion", f"{json.dumps(version)} is not a SemVer 2.0.0 version")
    r = _obj(_required(obj, "root", ""), ".root")
    root = Root(_root_path(_required(r, "path", ".root")), _o_bool(r, "readonly", ".root", False))
    v = obj.get("process", _ABSENT)
    process = None if v is _ABSENT else _process(v, ".process")
    v = obj.get("hooks", _ABSENT)
    hooks = Hooks() if v is _ABSENT else _hooks(v, ".hooks")
    v = obj.get("annotations", _ABSENT)
    annotations = {} if v is _ABSENT else _str_map(v, ".annotations")
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
        raise _Invalid(".root.path", "must be a non-empty string")
    return v


def _process(v: object, p: str) -> Process:
    d = _obj(v, p)
    args = d.get("args", _ABSENT)
    if type(args) is not list or not args:
        raise _Invalid(f"{p}.args", "must be a non-empty array of strings")
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
            raise _Invalid(f"{p}.rlimits[{i}].type", f"duplicate rlimit type {rl.type}")
        seen.add(rl.type)
    v = d.get("ioPriority", _ABSENT)
    io = None
    if v is not _ABSENT:
        c = _obj(v, f"{p}.ioPriority")
        cp = f"{p}.ioPriority"
        io = IOPriority(_enum(_required(c, "class", cp), f"{cp}.class", IOPRIO_CLASSES),
                        _int(_required(c, "priority", cp), f"{cp}.priority", (0, 7)))
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
        oom_score_adj=_o_int(d, "oomScoreAdj", p, (-1000, 1000)),
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
        raise _Invalid(f"{p}.{key}", "must be a CPU list such as 0-3,7")
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
        raise _Invalid(f"{p}.destination", "must be a non-empty path")
    uid_maps = _o_items(d, "uidMappings", p, _id_mapping)
    gid_maps = _o_items(d, "gidMappings", p, _id_mapping)
    if ("uidMappings" in d) != ("gidMappings" in d):
        missing = "gidMappings" if "uidMappings" in d else "uidMappings"
        raise _Invalid(f"{p}.{missing}", "is required together with "
                       + ("uidMappings" if missing == "gidMappings" else "gidMappings"))
    return Mount(dest, _o_str(d, "type", p), _o_str(d, "source", p),
                 _o_strs(d, "options", p) or (), uid_maps, gid_maps)


def _hook(v: object, p: str) -> Hook:
    d = _obj(v, p)
    return Hook(_abs(_required(d, "path", p), f"{p}.path"), _o_strs(d, "args", p) or (),
                _o_strs(d, "env", p) or (), _o_int(d, "timeout", p, (1, None)))


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
            raise _Invalid(f"{p}.namespaces[{i}].type", f"duplicate namespace type {ns.type}")
        seen.add(ns.type)
    time_offsets: dict[str, TimeOffset] = {}
    v = d.get("timeOffsets", _ABSENT)
    if v is not _ABSENT:
        tp = f"{p}.timeOffsets"
        for k, t in _obj(v, tp).items():
            kp = _key(k, tp)
            if k not in TIME_CLOCKS:
                raise _Invalid(kp, f"unknown clock; must be one of: {', '.join(TIME_CLOCKS)}")
            t = _obj(t, kp)
            time_offsets[k] = TimeOffset(_o_int(t, "secs", kp, I64), _o_int(t, "nanosecs", kp, U32))
    net_devices: dict[str, NetDevice] = {}
    v = d.get("netDevices", _ABSENT)
    if v is not _ABSENT:
        np_ = f"{p}.netDevices"
        for k, n in _obj(v, np_).items():
            kp = _key(k, np_)
            net_devices[k] = NetDevice(_o_str(_obj(n, kp), "name", kp))
    resources_raw = d.get("resources", _ABSENT)
    resources = None
    if resources_raw is _ABSENT:
        resources_raw = None
    else:
        from pyrunc.spec_resources import parse_resources

        resources = parse_resources(resources_raw, f"{p}.resources")
    seccomp_raw = d.get("seccomp", _ABSENT)
    seccomp = None
    if seccomp_raw is _ABSENT:
        seccomp_raw = None
    else:
        from pyrunc.spec_resources import parse_seccomp

        seccomp = parse_seccomp(seccomp_raw, f"{p}.seccomp")
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
        resources_raw=resources_raw,  # type: ignore[arg-type]
        rootfs_propagation=propagation,
        seccomp=seccomp,
        seccomp_raw=seccomp_raw,  # type: ignore[arg-type]
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
        raise _Invalid(f"{p}.memBwSchema", "must start with MB: and contain no newline")
    schemata = _o_strs(d, "schemata", p)
    for i, s in enumerate(schemata or ()):
        _no_newline(s, f"{p}.schemata[{i}]")
    return IntelRdt(_o_str(d, "closID", p), _o_str(d, "l3CacheSchema", p), mem_bw, schemata,
                    _o_bool(d, "enableMonitoring", p), _o_bool(d, "enableCMT", p),
                    _o_bool(d, "enableMBM", p))


# ---------------------------------------------------------------- runc's template
_DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def default_config(rootless: bool = False) -> dict:
    """The config.json that `runc spec` (or `runc spec --rootless`) writes, key order included."""
    import os

    devpts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]
    if not rootless:
        devpts.append("gid=5")  # a rootless container has no host gid 5 to map
    sysfs = ({"destination": "/sys", "type": "none", "source": "/sys",
              "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]} if rootless else
             {"destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"]})
    linux: dict = {}
    if rootless:
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
        namespaces = ["pid", "ipc", "uts", "mount", "user"]
    else:
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
        namespaces = ["pid", "network", "ipc", "uts", "mount"]
    linux["namespaces"] = [{"type": t} for t in namespaces]
    linux["maskedPaths"] = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
    ]
    linux["readonlyPaths"] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(_DEFAULT_CAPS) for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": devpts},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            sysfs,
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": linux,
    }
