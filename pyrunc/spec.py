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
  non-empty (non-Windows); hook, namespace, device, masked and read-only
  paths are absolute; mount destinations may be relative (to "/").
- namespace types and rlimit types are unique; enums (namespace types,
  rlimits, rootfsPropagation, seccomp actions/arches/flags/operators,
  scheduler, ioPriority, memoryPolicy, personality domain) are closed.
- map keys (annotations, sysctl, netDevices, rdma, unified) are non-empty;
  timeOffsets keys are `boottime` / `monotonic` only.
- unknown properties are ignored (config.md "Extensibility"); JSON null is
  never a valid value (but for `subArchitectures` of a Docker profile's
  `archMap`, null in Docker's own); integral floats (1.0) count as integers,
  as in JSON Schema.
- `linux.seccomp` may carry the fields of a Docker/containers-common profile
  (`Seccomp`): their shape is checked here, their meaning for the host is
  seccomp.profiles.resolve's.

An absent `process.user` is User(uid=0, gid=0), as in runc. Absent optional
scalars and objects become None; absent arrays and maps
become () and {} where the spec gives absence and emptiness the same meaning
(mounts, hooks, env, rlimits, additionalGids, namespaces, id mappings,
devices, masked/readonly paths, annotations, sysctl, timeOffsets,
netDevices). Capability sets, `intelRdt.schemata` and a mount's own
uid/gid mappings stay None when absent: for them "not given" and "empty"
mean different things.

The record classes are frozen and slotted like `@dataclass(frozen=True,
slots=True)` ones but built by the small metaclass in record (see why
there); `fields()`, `replace()` and `to_json()` come from there too.
"""

from __future__ import annotations

from pyrunc import OCI_VERSION  # noqa: F401  (runc 1.1's; `pyrunc spec` writes it)
from pyrunc import jsonfast as json  # json without its re import (hot path)

from pyrunc.errors import ConfigError
from pyrunc.record import (  # noqa: F401  (fields, replace, to_json are part of this API)
    NEW_DICT, FrozenInstanceError, Record, fields, replace, to_json,
)
from pyrunc.spec_hooks import Hook, Hooks  # noqa: F401  (part of this model; apart for state.py)


# ---------------------------------------------------------------- process
class User(Record):
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: tuple[int, ...] = ()
    username: str | None = None


class ConsoleSize(Record):
    height: int
    width: int


class Capabilities(Record):
    bounding: tuple[str, ...] | None = None
    effective: tuple[str, ...] | None = None
    inheritable: tuple[str, ...] | None = None
    permitted: tuple[str, ...] | None = None
    ambient: tuple[str, ...] | None = None


class Rlimit(Record):
    type: str
    hard: int
    soft: int


class Scheduler(Record):
    policy: str
    nice: int | None = None
    priority: int | None = None
    flags: tuple[str, ...] = ()
    runtime: int | None = None
    deadline: int | None = None
    period: int | None = None


class IOPriority(Record):
    class_: str  # JSON "class"
    priority: int


class ExecCPUAffinity(Record):
    initial: str | None = None
    final: str | None = None


class Process(Record):
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


# ---------------------------------------------------------------- root, mounts (hooks: spec_hooks.py)
class Root(Record):
    path: str
    readonly: bool = False


class IDMapping(Record):
    container_id: int
    host_id: int
    size: int


class Mount(Record):
    destination: str
    type: str | None = None
    source: str | None = None
    options: tuple[str, ...] = ()
    # None when absent: an idmapped mount ("idmap" option) without its own mappings uses the
    # container's, while present-but-empty mappings are the config's own choice
    uid_mappings: tuple[IDMapping, ...] | None = None
    gid_mappings: tuple[IDMapping, ...] | None = None


# ---------------------------------------------------------------- linux
class Namespace(Record):
    type: str
    path: str | None = None


class Device(Record):
    type: str
    path: str
    major: int | None = None
    minor: int | None = None
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


class TimeOffset(Record):
    secs: int | None = None
    nanosecs: int | None = None


class NetDevice(Record):
    name: str | None = None


class Personality(Record):
    domain: str
    flags: tuple[str, ...] = ()


class MemoryPolicy(Record):
    mode: str
    nodes: str | None = None
    flags: tuple[str, ...] = ()


class IntelRdt(Record):
    clos_id: str | None = None
    l3_cache_schema: str | None = None
    mem_bw_schema: str | None = None
    schemata: tuple[str, ...] | None = None
    enable_monitoring: bool | None = None
    enable_cmt: bool | None = None
    enable_mbm: bool | None = None


class DeviceRule(Record):
    """One entry of linux.resources.devices (the device cgroup)."""

    allow: bool
    type: str | None = None
    major: int | None = None
    minor: int | None = None
    access: str | None = None


class Memory(Record):
    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None
    kernel: int | None = None
    kernel_tcp: int | None = None
    swappiness: int | None = None
    disable_oom_killer: bool | None = None
    use_hierarchy: bool | None = None
    check_before_update: bool | None = None


class CPU(Record):
    shares: int | None = None
    quota: int | None = None
    burst: int | None = None
    period: int | None = None
    realtime_runtime: int | None = None
    realtime_period: int | None = None
    cpus: str | None = None
    mems: str | None = None
    idle: int | None = None


class Pids(Record):
    limit: int | None = None


class WeightDevice(Record):
    major: int
    minor: int
    weight: int | None = None
    leaf_weight: int | None = None


class ThrottleDevice(Record):
    major: int
    minor: int
    rate: int


class BlockIO(Record):
    weight: int | None = None
    leaf_weight: int | None = None
    weight_device: tuple[WeightDevice, ...] = ()
    throttle_read_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_read_iops_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_iops_device: tuple[ThrottleDevice, ...] = ()


class HugepageLimit(Record):
    page_size: str
    limit: int


class InterfacePriority(Record):
    name: str
    priority: int


class Network(Record):
    class_id: int | None = None
    priorities: tuple[InterfacePriority, ...] = ()


class Rdma(Record):
    hca_handles: int | None = None
    hca_objects: int | None = None


class Resources(Record):
    devices: tuple[DeviceRule, ...] = ()
    memory: Memory | None = None
    cpu: CPU | None = None
    pids: Pids | None = None
    block_io: BlockIO | None = None
    hugepage_limits: tuple[HugepageLimit, ...] = ()
    network: Network | None = None
    rdma: dict[str, Rdma] = NEW_DICT
    unified: dict[str, str] = NEW_DICT


class SyscallArg(Record):
    index: int
    value: int
    op: str
    value_two: int | None = None


class SyscallFilter(Record):
    """`includes`/`excludes` of a Docker or containers-common rule: resolved for the host
    (arch, bounding set, kernel) by seccomp.profiles.resolve, not by the config checks."""

    arches: tuple[str, ...] = ()
    caps: tuple[str, ...] = ()
    min_kernel: str | None = None


class Syscall(Record):
    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[SyscallArg, ...] = ()
    errno: str | None = None  # containers-common's errno name ("EPERM")
    includes: SyscallFilter | None = None
    excludes: SyscallFilter | None = None


class ArchMap(Record):
    """One `archMap` entry of a Docker profile: the arches a host of `architecture` filters."""

    architecture: str
    sub_architectures: tuple[str, ...] = ()


class Seccomp(Record):
    """`linux.seccomp`, plus the fields of a Docker/containers-common profile (archMap,
    defaultErrno, a rule's errno/includes/excludes) that clients send as they are:
    seccomp.profiles.resolve turns those into a plain OCI profile for this host."""

    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] | None = None  # None: absent (runc then sets SPEC_ALLOW), () is no flag
    listener_path: str | None = None
    listener_metadata: str | None = None
    syscalls: tuple[Syscall, ...] = ()
    default_errno: str | None = None
    arch_map: tuple[ArchMap, ...] = ()


class Linux(Record):
    namespaces: tuple[Namespace, ...] = ()
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()
    time_offsets: dict[str, TimeOffset] = NEW_DICT
    devices: tuple[Device, ...] = ()
    net_devices: dict[str, NetDevice] = NEW_DICT
    cgroups_path: str | None = None
    resources: Resources | None = None
    rootfs_propagation: str | None = None
    seccomp: Seccomp | None = None
    sysctl: dict[str, str] = NEW_DICT
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


class Spec(Record):
    oci_version: str
    root: Root | None  # REQUIRED on Linux: parse() never leaves it None
    process: Process | None = None
    hostname: str | None = None
    domainname: str | None = None
    mounts: tuple[Mount, ...] = ()
    hooks: Hooks = Hooks()
    annotations: dict[str, str] = NEW_DICT
    linux: Linux | None = None
    raw: dict = NEW_DICT  # the whole config.json object


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
    return parse(decode_json(data))


def decode_json(data: bytes | str, source: str = "config.json") -> object:
    """Every JSON document pyrunc reads from a caller goes through here:
    malformed text, invalid UTF-8 and nesting beyond runc's limit (10000, as
    Go's encoding/json) are one ConfigError line, never a traceback."""
    try:
        return json.loads(data)
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, too deep
        raise ConfigError("", f"invalid JSON: {err}", source) from None


def read_json(path: str, source: str | None = None) -> object:
    """decode_json of a file; a file that cannot be read is a ConfigError too."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ConfigError("", f"cannot read: {err.strerror}", source or path) from None
    return decode_json(data, source or path)


def parse(obj: object, source: str = "config.json") -> Spec:
    """Check `obj` (the decoded config.json) field by field and build the Spec."""
    from pyrunc.config.parse import Invalid, parse_spec

    try:
        return parse_spec(obj)
    except Invalid as bad:
        raise ConfigError(bad.path or ".", bad.message, source) from None


def parse_seccomp(obj: object, field: str = ".linux.seccomp", source: str = "config.json") -> Seccomp:
    """Check a `linux.seccomp` object alone (`pyrunc seccomp` profiles, tests): the same
    checks as parse() runs on it inside config.json."""
    from pyrunc.config.checks import Invalid
    from pyrunc.config.seccomp import parse_seccomp as check

    try:
        return check(obj, field)
    except Invalid as bad:
        raise ConfigError(bad.path or ".", bad.message, source) from None


def default_config(rootless: bool = False) -> dict:
    """The config.json that `runc spec` (or `runc spec --rootless`) writes, key order included."""
    from pyrunc.config.default import default_config as make

    return make(rootless)
