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
netDevices). Capability sets, `intelRdt.schemata` and a mount's own
uid/gid mappings stay None when absent: for them "not given" and "empty"
mean different things.

The record classes are frozen and slotted like `@dataclass(frozen=True,
slots=True)` ones (keyword or positional construction, ==, hash, repr,
`replace()`), but built by a tiny metaclass: `dataclasses` costs ≈ 7 ms to
import and ≈ 0.6 ms per frozen slotted class, ≈ 35 ms for these 45 classes,
more than the whole budget of a container run.
"""

from __future__ import annotations

import json

from pyrunc.errors import ConfigError

OCI_VERSION = "1.0.2-dev"  # what runc 1.1 writes and reports; `pyrunc spec` matches it


class FrozenInstanceError(AttributeError):
    """Raised on assignment to a field of a spec record (they are immutable)."""


class _Factory:
    """A default that is built anew for every instance (like dataclasses' default_factory)."""

    __slots__ = ("make",)

    def __init__(self, make: type) -> None:
        self.make = make


_NEW_DICT = _Factory(dict)


class _RecordMeta(type):
    """Turns the annotated fields of a class body into __slots__ plus a defaults table."""

    def __new__(mcls, name: str, bases: tuple, ns: dict):  # type: ignore[no-untyped-def]
        names = tuple(ns.get("__annotations__", ()))  # in class-body order
        defaults = {f: ns.pop(f) for f in names if f in ns}
        ns["__slots__"] = names
        ns["_fields"] = names
        ns["_defaults"] = defaults
        ns["__match_args__"] = names
        return super().__new__(mcls, name, bases, ns)


class _Record(metaclass=_RecordMeta):
    """Base of every spec record: immutable, slotted, compared and hashed by value."""

    __slots__ = ()

    def __init__(self, *args: object, **kwargs: object) -> None:
        names = self._fields
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes {len(names)} arguments, got {len(args)}")
        put = object.__setattr__
        for name, value in zip(names, args):
            put(self, name, value)
        defaults = self._defaults
        for name in names[len(args):]:
            if name in kwargs:
                value = kwargs.pop(name)
            elif name in defaults:
                value = defaults[name]
                if type(value) is _Factory:
                    value = value.make()
            else:
                raise TypeError(f"{type(self).__name__}() missing argument {name!r}")
            put(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got unexpected arguments {sorted(kwargs)}")

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, f) for f in self._fields))


def fields(record: _Record | type) -> tuple[str, ...]:
    """The field names of a spec record or record class, in declaration order."""
    return record._fields  # type: ignore[union-attr]


def replace(record: _Record, **changes: object) -> _Record:
    """A copy of `record` with some fields changed (dataclasses.replace for spec records)."""
    values = {f: getattr(record, f) for f in record._fields}
    values.update(changes)
    return type(record)(**values)



# ---------------------------------------------------------------- process
class User(_Record):
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: tuple[int, ...] = ()
    username: str | None = None


class ConsoleSize(_Record):
    height: int
    width: int


class Capabilities(_Record):
    bounding: tuple[str, ...] | None = None
    effective: tuple[str, ...] | None = None
    inheritable: tuple[str, ...] | None = None
    permitted: tuple[str, ...] | None = None
    ambient: tuple[str, ...] | None = None


class Rlimit(_Record):
    type: str
    hard: int
    soft: int


class Scheduler(_Record):
    policy: str
    nice: int | None = None
    priority: int | None = None
    flags: tuple[str, ...] = ()
    runtime: int | None = None
    deadline: int | None = None
    period: int | None = None


class IOPriority(_Record):
    class_: str  # JSON "class"
    priority: int


class ExecCPUAffinity(_Record):
    initial: str | None = None
    final: str | None = None


class Process(_Record):
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
class Root(_Record):
    path: str
    readonly: bool = False


class IDMapping(_Record):
    container_id: int
    host_id: int
    size: int


class Mount(_Record):
    destination: str
    type: str | None = None
    source: str | None = None
    options: tuple[str, ...] = ()
    # None when absent: an idmapped mount ("idmap" option) without its own mappings uses the
    # container's, while present-but-empty mappings are the config's own choice
    uid_mappings: tuple[IDMapping, ...] | None = None
    gid_mappings: tuple[IDMapping, ...] | None = None


class Hook(_Record):
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


class Hooks(_Record):
    prestart: tuple[Hook, ...] = ()
    create_runtime: tuple[Hook, ...] = ()
    create_container: tuple[Hook, ...] = ()
    start_container: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()


# ---------------------------------------------------------------- linux
class Namespace(_Record):
    type: str
    path: str | None = None


class Device(_Record):
    type: str
    path: str
    major: int | None = None
    minor: int | None = None
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


class TimeOffset(_Record):
    secs: int | None = None
    nanosecs: int | None = None


class NetDevice(_Record):
    name: str | None = None


class Personality(_Record):
    domain: str
    flags: tuple[str, ...] = ()


class MemoryPolicy(_Record):
    mode: str
    nodes: str | None = None
    flags: tuple[str, ...] = ()


class IntelRdt(_Record):
    clos_id: str | None = None
    l3_cache_schema: str | None = None
    mem_bw_schema: str | None = None
    schemata: tuple[str, ...] | None = None
    enable_monitoring: bool | None = None
    enable_cmt: bool | None = None
    enable_mbm: bool | None = None


class DeviceRule(_Record):
    """One entry of linux.resources.devices (the device cgroup)."""

    allow: bool
    type: str | None = None
    major: int | None = None
    minor: int | None = None
    access: str | None = None


class Memory(_Record):
    limit: int | None = None
    reservation: int | None = None
    swap: int | None = None
    kernel: int | None = None
    kernel_tcp: int | None = None
    swappiness: int | None = None
    disable_oom_killer: bool | None = None
    use_hierarchy: bool | None = None
    check_before_update: bool | None = None


class CPU(_Record):
    shares: int | None = None
    quota: int | None = None
    burst: int | None = None
    period: int | None = None
    realtime_runtime: int | None = None
    realtime_period: int | None = None
    cpus: str | None = None
    mems: str | None = None
    idle: int | None = None


class Pids(_Record):
    limit: int | None = None


class WeightDevice(_Record):
    major: int
    minor: int
    weight: int | None = None
    leaf_weight: int | None = None


class ThrottleDevice(_Record):
    major: int
    minor: int
    rate: int


class BlockIO(_Record):
    weight: int | None = None
    leaf_weight: int | None = None
    weight_device: tuple[WeightDevice, ...] = ()
    throttle_read_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_bps_device: tuple[ThrottleDevice, ...] = ()
    throttle_read_iops_device: tuple[ThrottleDevice, ...] = ()
    throttle_write_iops_device: tuple[ThrottleDevice, ...] = ()


class HugepageLimit(_Record):
    page_size: str
    limit: int


class InterfacePriority(_Record):
    name: str
    priority: int


class Network(_Record):
    class_id: int | None = None
    priorities: tuple[InterfacePriority, ...] = ()


class Rdma(_Record):
    hca_handles: int | None = None
    hca_objects: int | None = None


class Resources(_Record):
    devices: tuple[DeviceRule, ...] = ()
    memory: Memory | None = None
    cpu: CPU | None = None
    pids: Pids | None = None
    block_io: BlockIO | None = None
    hugepage_limits: tuple[HugepageLimit, ...] = ()
    network: Network | None = None
    rdma: dict[str, Rdma] = _NEW_DICT
    unified: dict[str, str] = _NEW_DICT


class SyscallArg(_Record):
    index: int
    value: int
    op: str
    value_two: int | None = None


class Syscall(_Record):
    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[SyscallArg, ...] = ()


class Seccomp(_Record):
    default_action: str
    default_errno_ret: int | None = None
    architectures: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    listener_path: str | None = None
    listener_metadata: str | None = None
    syscalls: tuple[Syscall, ...] = ()


class Linux(_Record):
    namespaces: tuple[Namespace, ...] = ()
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()
    time_offsets: dict[str, TimeOffset] = _NEW_DICT
    devices: tuple[Device, ...] = ()
    net_devices: dict[str, NetDevice] = _NEW_DICT
    cgroups_path: str | None = None
    resources: Resources | None = None
    resources_raw: dict | None = None  # the JSON object as given: the cgroups code works on it
    rootfs_propagation: str | None = None
    seccomp: Seccomp | None = None
    seccomp_raw: dict | None = None  # the JSON object as given: the seccomp compiler works on it
    sysctl: dict[str, str] = _NEW_DICT
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


class Spec(_Record):
    oci_version: str
    root: Root | None  # REQUIRED on Linux: parse() never leaves it None
    process: Process | None = None
    hostname: str | None = None
    domainname: str | None = None
    mounts: tuple[Mount, ...] = ()
    hooks: Hooks = Hooks()
    annotations: dict[str, str] = _NEW_DICT
    linux: Linux | None = None
    raw: dict = _NEW_DICT  # the whole config.json object


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
    from pyrunc.spec_parse import Invalid, parse_spec

    try:
        return parse_spec(obj)
    except Invalid as bad:
        raise ConfigError(bad.path or ".", bad.message, source) from None


def default_config(rootless: bool = False) -> dict:
    """The config.json that `runc spec` (or `runc spec --rootless`) writes, key order included."""
    from pyrunc.spec_default import default_config as make

    return make(rootless)


# JSON keys that are not the plain camelCase of the field name
_JSON_KEYS = {
    "container_id": "containerID", "host_id": "hostID", "class_": "class", "clos_id": "closID",
    "kernel_tcp": "kernelTCP", "class_id": "classID", "exec_cpu_affinity": "execCPUAffinity",
    "block_io": "blockIO", "throttle_read_iops_device": "throttleReadIOPSDevice",
    "throttle_write_iops_device": "throttleWriteIOPSDevice", "enable_cmt": "enableCMT",
    "enable_mbm": "enableMBM", "disable_oom_killer": "disableOOMKiller",
}
_NOT_JSON = ("raw", "resources_raw", "seccomp_raw")


def to_json(record: object) -> object:
    """The JSON value of a spec record (config.json for a Spec).

    None fields are left out, and so are empty arrays and maps whose absence
    means the same (see the module docstring); parse(to_json(spec)) gives
    back an equal spec apart from the `raw` copies.
    """
    if isinstance(record, _Record):
        out = {}
        defaults = record._defaults
        for name in record._fields:
            value = getattr(record, name)
            if value is None or name in _NOT_JSON:
                continue
            if name in defaults and defaults[name] is not None and not value \
                    and type(value) in (tuple, dict):
                continue
            key = _JSON_KEYS.get(name)
            if key is None:
                head, *rest = name.split("_")
                key = head + "".join(w.title() for w in rest)
            value = to_json(value)
            if value == {} and isinstance(defaults.get(name), _Record):
                continue  # e.g. hooks: Hooks() means "no hooks" just as absence does
            out[key] = value
        return out
    if isinstance(record, tuple):
        return [to_json(v) for v in record]
    if isinstance(record, dict):
        return {k: to_json(v) for k, v in record.items()}
    return record
