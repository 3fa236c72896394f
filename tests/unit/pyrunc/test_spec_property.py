"""Property: the hand-written loader (pyrunc.spec.parse) and schemas/config.schema.json agree.

Hypothesis generates configs that use every part of the spec, checks both
accept them, then mutates them (replace any node with a random or near-miss
value, drop a key, add a known key, duplicate an array element) and checks
that both accept or both reject the result.
"""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc import spec
from pyrunc.config import checks as C
from pyrunc.errors import ConfigError

try:
    from spec_cases import FULL_CONFIG, SCHEMA_PATH, schema_validator
except ImportError:  # tests/ laid out as packages
    from .spec_cases import FULL_CONFIG, SCHEMA_PATH, schema_validator

VALIDATOR = schema_validator()
SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------- valid configs
# The loader is stricter than the schema on one rule only: strings that reach the kernel
# must be C strings (no NUL, no lone surrogate; issue 11, test_json_limits.py covers it).
c_char = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
txt = st.text(c_char, max_size=5)
name = st.text(c_char, min_size=1, max_size=5)
line_char = st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\x00")
abspath = txt.map(lambda s: "/" + s)
strs = st.lists(txt, max_size=3)
u16 = st.integers(0, 2**16 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
i32 = st.integers(-(2**31), 2**31 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
boolean = st.booleans()


def obj(required: dict, optional: dict | None = None) -> st.SearchStrategy:
    return st.fixed_dictionaries(required, optional=optional or {})


def enum_list(values: tuple[str, ...]) -> st.SearchStrategy:
    return st.lists(st.sampled_from(values), max_size=3)


def unique_typed(types: tuple[str, ...], make) -> st.SearchStrategy:  # type: ignore[no-untyped-def]
    """A list of objects with distinct "type" values, each built by make(type)."""
    return st.lists(st.sampled_from(types), unique=True, max_size=4).flatmap(
        lambda ts: st.tuples(*[make(t) for t in ts]).map(list))


semver = st.builds(lambda a, b, c, pre, build: f"{a}.{b}.{c}" + pre + build,
                   st.integers(0, 20), st.integers(0, 20), st.integers(0, 20),
                   st.sampled_from(["", "-dev", "-rc.1"]), st.sampled_from(["", "+b1", "+x.y-z"]))
cpu_list = st.sampled_from(["", "0", "0-3,7", "1, 2"])
idmap = obj({"containerID": u32, "hostID": u32, "size": u32})
hook = obj({"path": abspath}, {"args": strs, "env": strs, "timeout": st.integers(1, 10**9)})
mount_plain = obj({"destination": name}, {"source": txt, "type": txt, "options": strs})
mount = st.one_of(mount_plain, st.builds(lambda m, u, g: {**m, "uidMappings": u, "gidMappings": g},
                                         mount_plain, st.lists(idmap, max_size=2),
                                         st.lists(idmap, max_size=2)))
process = obj(
    {"args": st.lists(txt, min_size=1, max_size=3), "cwd": abspath},
    {
        "env": strs,
        "terminal": boolean,
        "consoleSize": obj({"height": u64, "width": u64}),
        "user": obj({"uid": u32, "gid": u32},
                    {"umask": u32, "additionalGids": st.lists(u32, max_size=3), "username": txt}),
        "capabilities": obj({}, {k: st.lists(st.sampled_from(["CAP_KILL", "CAP_CHOWN", "CAP_X"]),
                                             max_size=3)
                                 for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}),
        "rlimits": unique_typed(C.RLIMIT_TYPES, lambda t: obj({"type": st.just(t), "soft": u64, "hard": u64})),
        "apparmorProfile": txt,
        "selinuxLabel": txt,
        "noNewPrivileges": boolean,
        "oomScoreAdj": st.integers(-1000, 1000),
        "ioPriority": obj({"class": st.sampled_from(C.IOPRIO_CLASSES), "priority": st.integers(0, 7)}),
        "scheduler": obj({"policy": st.sampled_from(C.SCHEDULER_POLICIES)},
                         {"nice": i32, "priority": i32, "flags": enum_list(C.SCHEDULER_FLAGS),
                          "runtime": u64, "deadline": u64, "period": u64}),
        "execCPUAffinity": obj({}, {"initial": cpu_list, "final": cpu_list}),
        "commandLine": txt,
    },
)
device = st.one_of(
    obj({"type": st.sampled_from("cbu"), "path": abspath, "major": i64, "minor": i64},
        {"fileMode": u32, "uid": u32, "gid": u32}),
    obj({"type": st.just("p"), "path": abspath}, {"major": i64, "minor": i64}),
)
resources = obj({}, {
    "devices": st.lists(obj({"allow": boolean}, {
        "type": st.sampled_from(C.CGROUP_DEVICE_TYPES), "major": i64, "minor": i64,
        "access": st.sampled_from(C.CGROUP_DEVICE_ACCESS)}), max_size=3),
    "memory": obj({}, {**{k: i64 for k in ("limit", "reservation", "swap", "kernel", "kernelTCP")},
                       "swappiness": u64, "disableOOMKiller": boolean, "useHierarchy": boolean,
                       "checkBeforeUpdate": boolean}),
    "cpu": obj({}, {"shares": u64, "quota": i64, "burst": u64, "period": u64, "realtimeRuntime": i64,
                    "realtimePeriod": u64, "cpus": txt, "mems": txt, "idle": i64}),
    "pids": obj({}, {"limit": i64}),
    "blockIO": obj({}, {
        "weight": u16, "leafWeight": u16,
        "weightDevice": st.lists(st.one_of(
            obj({"major": i64, "minor": i64, "weight": u16}, {"leafWeight": u16}),
            obj({"major": i64, "minor": i64, "leafWeight": u16})), max_size=2),
        **{k: st.lists(obj({"major": i64, "minor": i64, "rate": u64}), max_size=2) for k in (
            "throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
            "throttleWriteIOPSDevice")},
    }),
    "hugepageLimits": st.lists(obj({
        "pageSize": st.builds(lambda n, u: f"{n}{u}", st.integers(1, 4096), st.sampled_from(["KB", "MB", "GB"])),
        "limit": u64}), max_size=2),
    "network": obj({}, {"classID": u32, "priorities": st.lists(obj({"name": txt, "priority": u32}), max_size=2)}),
    "rdma": st.dictionaries(name, st.one_of(obj({"hcaHandles": u32}, {"hcaObjects": u32}),
                                            obj({"hcaObjects": u32})), max_size=2),
    "unified": st.dictionaries(name, txt, max_size=2),
})
seccomp = obj({"defaultAction": st.sampled_from(C.SECCOMP_ACTIONS)}, {
    "defaultErrnoRet": u32,
    "architectures": enum_list(C.SECCOMP_ARCHES),
    "flags": enum_list(C.SECCOMP_FLAGS),
    "listenerPath": txt,
    "listenerMetadata": txt,
    "syscalls": st.lists(obj({"names": st.lists(txt, min_size=1, max_size=3),
                              "action": st.sampled_from(C.SECCOMP_ACTIONS)},
                             {"errnoRet": u32, "args": st.lists(obj(
                                 {"index": u32, "value": u64, "op": st.sampled_from(C.SECCOMP_OPERATORS)},
                                 {"valueTwo": u64}), max_size=2)}), max_size=3),
}).map(lambda s: s if "listenerPath" in s else {k: v for k, v in s.items() if k != "listenerMetadata"})
linux = obj({}, {
    "namespaces": unique_typed(C.NAMESPACE_TYPES, lambda t: obj({"type": st.just(t)}, {"path": abspath})),
    "uidMappings": st.lists(idmap, max_size=2),
    "gidMappings": st.lists(idmap, max_size=2),
    "timeOffsets": st.dictionaries(st.sampled_from(C.TIME_CLOCKS), obj({}, {"secs": i64, "nanosecs": u32})),
    "devices": st.lists(device, max_size=3),
    "netDevices": st.dictionaries(name, obj({}, {"name": txt}), max_size=2),
    "cgroupsPath": txt,
    "resources": resources,
    "rootfsPropagation": st.sampled_from(C.ROOTFS_PROPAGATIONS),
    "seccomp": seccomp,
    "sysctl": st.dictionaries(name, txt, max_size=2),
    "maskedPaths": st.lists(abspath, max_size=2),
    "readonlyPaths": st.lists(abspath, max_size=2),
    "mountLabel": txt,
    "intelRdt": obj({}, {"closID": txt, "l3CacheSchema": txt,
                         "memBwSchema": st.text(line_char, max_size=4).map(
                             lambda s: "MB:" + s),
                         "schemata": st.lists(st.text(line_char, max_size=4),
                                              max_size=2),
                         "enableMonitoring": boolean, "enableCMT": boolean, "enableMBM": boolean}),
    "memoryPolicy": obj({"mode": st.sampled_from(C.MEMORY_POLICY_MODES)},
                        {"nodes": txt, "flags": enum_list(C.MEMORY_POLICY_FLAGS)}),
    "personality": obj({"domain": st.sampled_from(C.PERSONALITY_DOMAINS)}, {"flags": strs}),
})
configs = obj(
    {"ociVersion": semver, "root": obj({"path": name}, {"readonly": boolean})},
    {
        "process": process,
        "hostname": txt,
        "domainname": txt,
        "mounts": st.lists(mount, max_size=3),
        "hooks": obj({}, {k: st.lists(hook, max_size=2) for k in (
            "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")}),
        "annotations": st.dictionaries(name, txt, max_size=2),
        "linux": linux,
        "vm": st.just({}),
    },
)

# ---------------------------------------------------------------- mutations
def _schema_keys() -> list[str]:
    import json

    keys: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ("properties", "dependentRequired"):
                    keys.update(v)
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(SCHEMA_PATH.read_text()))
    return sorted(keys)


KNOWN_KEYS = _schema_keys()
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**65), 2**65),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(c_char, max_size=5))
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(c_char, max_size=4), inner, max_size=3)), max_leaves=6)
near_miss = st.sampled_from([
    None, True, False, 0, -1, 1, 1.0, 1.5, 7, 8, -1000, -1001, 1001,
    2**16, 2**31, -(2**31) - 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64,
    "", "\n", "x", "/", "/x", "x/y", "/x\n", "1.0.0", "1.0.0\n", "1.0", "1.0.0-", "01.2.3+b",
    "0-3,7", "0-3;7", "2MB", "2MB\n", "0MB", "2mb", "MB:0=1", "MB:0=1\n", "rwm", "rwx", "a", "p",
    "pid", "user", "time", "foo", "boottime", "realtime", "RLIMIT_NOFILE", "RLIMIT_FOO", "SCHED_RR",
    "IOPRIO_CLASS_RT", "SCMP_ACT_ALLOW", "SCMP_ARCH_X86_64", "SCMP_CMP_EQ", "MPOL_BIND", "LINUX",
    [], {}, [""], ["x"], [1], {"": ""}, {"k": "v"}, {"type": "pid"}, {"path": "/x"},
])


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


def _get(node: object, path: tuple) -> object:
    for step in path:
        node = node[step]  # type: ignore[index]
    return node


@st.composite
def mutated(draw, base=configs):  # type: ignore[no-untyped-def]
    config = copy.deepcopy(draw(base))
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["replace", "near", "near", "delete", "add", "dup"]))
        paths = _paths(config)
        if op in ("replace", "near", "delete"):
            paths = paths[1:]  # the top level itself: see test_top_level_must_be_an_object
            if not paths:  # everything deleted already
                continue
        path = draw(st.sampled_from(paths))
        target = _get(config, path)
        if op in ("replace", "near"):
            value = copy.deepcopy(draw(json_value if op == "replace" else near_miss))
            _get(config, path[:-1])[path[-1]] = value  # type: ignore[index]
        elif op == "delete":
            parent = _get(config, path[:-1])
            del parent[path[-1]]  # type: ignore[attr-defined]
        elif op == "add" and isinstance(target, dict):
            target[draw(st.sampled_from(KNOWN_KEYS))] = copy.deepcopy(draw(st.one_of(near_miss, json_value)))
        elif op == "dup" and isinstance(target, list) and target:
            target.append(copy.deepcopy(draw(st.sampled_from(target))))
    return config


def loader_accepts(config: object) -> tuple[bool, str]:
    try:
        spec.parse(config)
    except ConfigError as err:
        return False, str(err)
    return True, ""


def schema_accepts(config: object) -> tuple[bool, list[str]]:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(config)]
    return not errors, errors


# ---------------------------------------------------------------- properties
@SETTINGS
@given(configs)
def test_generated_valid_configs_are_accepted_by_both(config):
    ok, message = loader_accepts(config)
    assert ok, message
    valid, errors = schema_accepts(config)
    assert valid, errors


@SETTINGS
@given(mutated())
def test_loader_and_schema_agree_on_mutated_configs(config):
    ok, message = loader_accepts(config)
    valid, errors = schema_accepts(config)
    assert ok == valid, f"loader: {message or 'accepts'}; schema: {errors or 'accepts'}"


@SETTINGS
@given(mutated(st.just(FULL_CONFIG)))
def test_loader_and_schema_agree_on_mutations_of_the_full_config(config):
    ok, message = loader_accepts(config)
    valid, errors = schema_accepts(config)
    assert ok == valid, f"loader: {message or 'accepts'}; schema: {errors or 'accepts'}"


@SETTINGS
@given(configs)
def test_to_json_round_trip_of_generated_configs(config):
    once = spec.to_json(spec.parse(config))
    assert spec.to_json(spec.parse(once)) == once
    assert VALIDATOR.is_valid(once)
