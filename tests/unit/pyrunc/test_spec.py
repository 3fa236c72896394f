"""pyrunc.spec: typed loading of config.json, the exact error paths, and agreement with the schema."""

from __future__ import annotations

import copy
import json

import pytest

from pyrunc import spec
from pyrunc.errors import ConfigError

try:
    from spec_cases import DELETE, FULL_CONFIG, MINIMAL_CONFIG, schema_validator, with_change
except ImportError:  # tests/ laid out as packages
    from .spec_cases import DELETE, FULL_CONFIG, MINIMAL_CONFIG, schema_validator, with_change

VALIDATOR = schema_validator()


def reject(config: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        spec.parse(config)
    return info.value


# ---------------------------------------------------------------- valid configs
def test_default_config_parses_to_the_expected_records():
    s = spec.parse(spec.default_config())
    assert s.oci_version == spec.OCI_VERSION
    assert s.root == spec.Root("rootfs", True)
    p = s.process
    assert p.args == ("sh",) and p.cwd == "/" and p.terminal is True
    assert p.user == spec.User(0, 0, None, (), None)
    assert p.rlimits == (spec.Rlimit("RLIMIT_NOFILE", 1024, 1024),)
    assert p.capabilities.bounding == ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
    assert p.capabilities.inheritable is None  # absent set stays None, unlike an empty one
    assert p.no_new_privileges is True and p.oom_score_adj is None
    assert [m.destination for m in s.mounts] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
    assert s.mounts[1].options == ("nosuid", "strictatime", "mode=755", "size=65536k")
    assert s.hooks == spec.Hooks()
    assert s.annotations == {}
    lx = s.linux
    assert [n.type for n in lx.namespaces] == ["pid", "network", "ipc", "uts", "mount"]
    assert lx.namespace("pid") == spec.Namespace("pid", None) and lx.namespace("user") is None
    assert lx.resources.devices == (spec.DeviceRule(False, None, None, None, "rwm"),)
    assert lx.seccomp is None
    assert "/proc/kcore" in lx.masked_paths and "/proc/sys" in lx.readonly_paths
    assert s.raw == spec.default_config()


def test_minimal_config_gives_empty_defaults():
    s = spec.parse(MINIMAL_CONFIG)
    assert s.process is None and s.linux is None and s.hostname is None
    assert s.mounts == () and s.hooks == spec.Hooks() and s.annotations == {}
    assert s.root.readonly is False


def test_full_config_maps_every_field():
    s = spec.parse(FULL_CONFIG)
    p = s.process
    assert p.console_size == spec.ConsoleSize(25, 80)
    assert p.user == spec.User(1000, 1000, 18, (5, 6), "u")
    assert p.capabilities.inheritable == () and p.capabilities.ambient == ()
    assert p.rlimits[1] == spec.Rlimit("RLIMIT_CORE", 2**64 - 1, 0)
    assert p.oom_score_adj == -500 and p.apparmor_profile == "acme"
    assert p.io_priority == spec.IOPriority("IOPRIO_CLASS_BE", 4)
    assert p.scheduler == spec.Scheduler("SCHED_FIFO", -5, 10, ("SCHED_FLAG_RESET_ON_FORK",), 1, 2, 3)
    assert p.exec_cpu_affinity == spec.ExecCPUAffinity("0-3,7", "0")
    assert s.mounts[1] == spec.Mount("/data", "bind", "/srv/data", ("rbind", "ro"),
                                     (spec.IDMapping(0, 100000, 65536),),
                                     (spec.IDMapping(0, 100000, 65536),))
    assert s.mounts[2].destination == "relative/dest"  # allowed: relative to "/" (config.md)
    assert s.hooks.prestart == (spec.Hook("/usr/bin/fix-mounts", ("fix-mounts", "a"), ("K=v",), None),)
    assert s.hooks.create_runtime[0].timeout == 5
    assert len(s.hooks.poststop) == 1
    lx = s.linux
    assert lx.namespace("network").path == "/var/run/netns/x"
    assert lx.uid_mappings == (spec.IDMapping(0, 1000, 32000),)
    assert lx.time_offsets == {"monotonic": spec.TimeOffset(86400, 0), "boottime": spec.TimeOffset(-1, None)}
    assert lx.devices[0] == spec.Device("c", "/dev/fuse", 10, 229, 438, 0, 0)
    assert lx.devices[1] == spec.Device("p", "/dev/fifo")
    assert lx.net_devices == {"eth1": spec.NetDevice("net0"), "eth2": spec.NetDevice(None)}
    assert lx.cgroups_path == "/myRuntime/myContainer"
    r = lx.resources
    assert r.memory.swap == -1 and r.memory.kernel_tcp == -1 and r.memory.check_before_update is True
    assert r.cpu.cpus == "2-3" and r.cpu.realtime_runtime == 950000
    assert r.pids == spec.Pids(32771)
    assert r.block_io.weight_device[1] == spec.WeightDevice(8, 16, 500, None)
    assert r.block_io.throttle_write_iops_device == (spec.ThrottleDevice(8, 16, 300),)
    assert r.hugepage_limits[0] == spec.HugepageLimit("2MB", 209715200)
    assert r.network.priorities == (spec.InterfacePriority("eth0", 500),)
    assert r.rdma["mlx4_0"] == spec.Rdma(None, 1000)
    assert r.unified["memory.high"] == "1073741824"
    sc = lx.seccomp
    assert sc.default_action == "SCMP_ACT_ERRNO" and sc.default_errno_ret == 1
    assert sc.syscalls[1].args[1] == spec.SyscallArg(1, 255, "SCMP_CMP_MASKED_EQ", 8)
    assert lx.sysctl == {"net.ipv4.ip_forward": "1", "net.core.somaxconn": "256"}
    assert lx.rootfs_propagation == "slave" and lx.mount_label.startswith("system_u")
    assert lx.intel_rdt.clos_id == "guaranteed_group" and lx.intel_rdt.schemata == ("L2:0=f",)
    assert lx.memory_policy == spec.MemoryPolicy("MPOL_INTERLEAVE", "2-3", ("MPOL_F_STATIC_NODES",))
    assert lx.personality == spec.Personality("LINUX32", ())


@pytest.mark.parametrize("config", [MINIMAL_CONFIG, FULL_CONFIG, spec.default_config(),
                                    spec.default_config(rootless=True)])
def test_valid_configs_are_valid_for_the_schema_too(config):
    assert VALIDATOR.is_valid(config), [e.message for e in VALIDATOR.iter_errors(config)]


@pytest.mark.parametrize("config", [MINIMAL_CONFIG, FULL_CONFIG, spec.default_config()])
def test_to_json_round_trips(config):
    s = spec.parse(config)
    again = spec.parse(spec.to_json(s))
    assert spec.to_json(again) == spec.to_json(s)
    assert again.process == s.process and again.mounts == s.mounts and again.hooks == s.hooks
    if s.linux:
        assert again.linux.resources == s.linux.resources and again.linux.seccomp == s.linux.seccomp


def test_to_json_of_runc_default_is_the_input():
    assert spec.to_json(spec.parse(spec.default_config())) == spec.default_config()


def test_integral_floats_count_as_integers_like_json_schema():
    s = spec.parse(with_change(FULL_CONFIG, ("process", "user", "uid"), 7.0))
    assert s.process.user.uid == 7 and type(s.process.user.uid) is int


def test_unknown_properties_are_ignored():
    s = spec.parse(with_change(MINIMAL_CONFIG, ("linux",), {"futureField": [1, 2]}))
    assert s.linux == spec.Linux()


def test_schema_is_a_valid_2020_12_schema_with_the_loaders_enums():
    import jsonschema

    from pyrunc.config import checks as C

    schema = VALIDATOR.schema
    jsonschema.Draft202012Validator.check_schema(schema)
    defs = schema["$defs"]
    assert defs["Namespace"]["properties"]["type"]["enum"] == list(C.NAMESPACE_TYPES)
    assert defs["Rlimit"]["properties"]["type"]["enum"] == list(C.RLIMIT_TYPES)
    assert defs["Linux"]["properties"]["rootfsPropagation"]["enum"] == list(C.ROOTFS_PROPAGATIONS)
    assert defs["Seccomp"]["properties"]["defaultAction"]["enum"] == list(C.SECCOMP_ACTIONS)
    assert defs["Seccomp"]["properties"]["architectures"]["items"]["enum"] == list(C.SECCOMP_ARCHES)
    assert defs["Seccomp"]["properties"]["flags"]["items"]["enum"] == list(C.SECCOMP_FLAGS)
    assert defs["DeviceRule"]["properties"]["access"]["enum"] == list(C.CGROUP_DEVICE_ACCESS)
    assert defs["Scheduler"]["properties"]["policy"]["enum"] == list(C.SCHEDULER_POLICIES)
    assert defs["MemoryPolicy"]["properties"]["mode"]["enum"] == list(C.MEMORY_POLICY_MODES)
    assert defs["Personality"]["properties"]["domain"]["enum"] == list(C.PERSONALITY_DOMAINS)


def test_absent_user_is_root():
    config = with_change(BASE, ("process", "user"), DELETE)
    assert spec.parse(config).process.user == spec.User(0, 0)
    assert VALIDATOR.is_valid(config)


# ---------------------------------------------------------------- records
def test_records_are_frozen_hashable_and_replaceable():
    root = spec.Root("rootfs")
    with pytest.raises(AttributeError):
        root.path = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        root.other = 1  # type: ignore[attr-defined]
    assert hash(root) == hash(spec.Root("rootfs", False)) and root == spec.Root(path="rootfs")
    assert spec.replace(root, readonly=True) == spec.Root("rootfs", True)
    assert spec.fields(spec.Rlimit) == ("type", "hard", "soft")
    assert repr(spec.Namespace("pid")) == "Namespace(type='pid', path=None)"
    with pytest.raises(TypeError):
        spec.Root()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        spec.Root("a", bogus=1)  # type: ignore[call-arg]
    assert spec.Linux().sysctl is not spec.Linux().sysctl  # fresh dict per instance


# ---------------------------------------------------------------- invalid configs
BASE = spec.default_config()

INVALID = [
    # (path to change, new value or DELETE, expected field path in the message, message part)
    (("ociVersion",), DELETE, ".ociVersion", "is required"),
    (("ociVersion",), 1, ".ociVersion", "must be a string"),
    (("ociVersion",), "1.0", ".ociVersion", "SemVer"),
    (("ociVersion",), "1.0.0\n", ".ociVersion", "SemVer"),
    (("root",), DELETE, ".root", "is required"),
    (("root",), "rootfs", ".root", "must be an object"),
    (("root", "path"), DELETE, ".root.path", "is required"),
    (("root", "path"), "", ".root.path", "non-empty"),
    (("root", "readonly"), "yes", ".root.readonly", "must be a boolean"),
    (("process",), [], ".process", "must be an object"),
    (("process", "args"), [], ".process.args", "must be a non-empty array of strings"),
    (("process", "args"), DELETE, ".process.args", "must be a non-empty array of strings"),
    (("process", "args"), "sh", ".process.args", "must be a non-empty array of strings"),
    (("process", "args"), ["sh", 1], ".process.args[1]", "must be a string"),
    (("process", "cwd"), DELETE, ".process.cwd", "is required"),
    (("process", "cwd"), "home", ".process.cwd", "must be an absolute path"),
    (("process", "env"), ["A=1", None], ".process.env[1]", "must be a string"),
    (("process", "terminal"), 1, ".process.terminal", "must be a boolean"),
    (("process", "terminal"), None, ".process.terminal", "must be a boolean"),
    (("process", "consoleSize"), {"height": 1}, ".process.consoleSize.width", "is required"),
    (("process", "user", "uid"), -1, ".process.user.uid", "uint32"),
    (("process", "user", "uid"), 2**32, ".process.user.uid", "uint32"),
    (("process", "user", "uid"), True, ".process.user.uid", "must be an integer"),
    (("process", "user", "uid"), 1.5, ".process.user.uid", "must be an integer"),
    (("process", "user", "gid"), DELETE, ".process.user.gid", "is required"),
    (("process", "user", "umask"), "022", ".process.user.umask", "must be an integer"),
    (("process", "user", "additionalGids"), [1, "2"], ".process.user.additionalGids[1]", "uint32"),
    (("process", "capabilities", "bounding"), "CAP_KILL", ".process.capabilities.bounding",
     "must be an array of strings"),
    (("process", "capabilities", "ambient", 1), 7, ".process.capabilities.ambient[1]", "must be a string"),
    (("process", "rlimits", 0, "type"), "RLIMIT_FOO", ".process.rlimits[0].type", "is not one of"),
    (("process", "rlimits", 0, "soft"), -1, ".process.rlimits[0].soft", "uint64"),
    (("process", "rlimits", 0, "hard"), 2**64, ".process.rlimits[0].hard", "uint64"),
    (("process", "rlimits", 1), {"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1},
     ".process.rlimits[1].type", "duplicate rlimit type RLIMIT_NOFILE"),
    (("process", "noNewPrivileges"), "true", ".process.noNewPrivileges", "must be a boolean"),
    (("process", "oomScoreAdj"), 1001, ".process.oomScoreAdj", "from -1000 to 1000"),
    (("process", "ioPriority"), {"class": "IOPRIO_CLASS_XX", "priority": 1},
     ".process.ioPriority.class", "is not one of"),
    (("process", "ioPriority"), {"class": "IOPRIO_CLASS_RT", "priority": 8},
     ".process.ioPriority.priority", "from 0 to 7"),
    (("process", "scheduler"), {"nice": 1}, ".process.scheduler.policy", "is required"),
    (("process", "scheduler"), {"policy": "SCHED_RR", "flags": ["NOPE"]},
     ".process.scheduler.flags[0]", "is not one of"),
    (("process", "execCPUAffinity"), {"initial": "0-3;7"}, ".process.execCPUAffinity.initial",
     "CPU list"),
    (("process", "selinuxLabel"), 5, ".process.selinuxLabel", "must be a string"),
    (("hostname",), 5, ".hostname", "must be a string"),
    (("domainname",), [], ".domainname", "must be a string"),
    (("mounts",), {}, ".mounts", "must be an array"),
    (("mounts", 2, "destination"), DELETE, ".mounts[2].destination", "is required"),
    (("mounts", 2, "destination"), "", ".mounts[2].destination", "non-empty"),
    (("mounts", 3, "options"), ["ro", 1], ".mounts[3].options[1]", "must be a string"),
    (("mounts", 0, "type"), None, ".mounts[0].type", "must be a string"),
    (("mounts", 0, "uidMappings"), [{"containerID": 0, "hostID": 1, "size": 1}],
     ".mounts[0].gidMappings", "is required together with uidMappings"),
    (("mounts", 0, "uidMappings"), [{"containerID": 0, "hostID": 1}],
     ".mounts[0].uidMappings[0].size", "is required"),
    (("hooks",), [], ".hooks", "must be an object"),
    (("hooks", "prestart"), [{"path": "hook"}], ".hooks.prestart[0].path", "must be an absolute path"),
    (("hooks", "poststop"), [{"args": []}], ".hooks.poststop[0].path", "is required"),
    (("hooks", "createRuntime"), [{"path": "/h", "timeout": 0}], ".hooks.createRuntime[0].timeout",
     "must be an integer >= 1"),
    (("hooks", "startContainer"), [{"path": "/h", "env": "A=1"}], ".hooks.startContainer[0].env",
     "must be an array of strings"),
    (("annotations",), {"": "x"}, ".annotations", "non-empty"),
    (("annotations",), {"k": 1}, '.annotations["k"]', "must be a string"),
    (("linux",), "linux", ".linux", "must be an object"),
    (("linux", "namespaces", 2, "type"), "foo", ".linux.namespaces[2].type", '"foo" is not one of'),
    (("linux", "namespaces", 5), {"type": "pid"}, ".linux.namespaces[5].type",
     "duplicate namespace type pid"),
    (("linux", "namespaces", 5), {"type": "user", "path": "proc/1/ns/user"},
     ".linux.namespaces[5].path", "must be an absolute path"),
    (("linux", "namespaces", 0), {"path": "/proc/1/ns/pid"}, ".linux.namespaces[0].type", "is required"),
    (("linux", "uidMappings"), [{"containerID": 0, "hostID": -1, "size": 1}],
     ".linux.uidMappings[0].hostID", "uint32"),
    (("linux", "gidMappings"), [{"containerID": 0, "hostID": 0}], ".linux.gidMappings[0].size",
     "is required"),
    (("linux", "timeOffsets"), {"realtime": {"secs": 1}}, '.linux.timeOffsets["realtime"]', "unknown clock"),
    (("linux", "timeOffsets"), {"boottime": {"nanosecs": -1}}, '.linux.timeOffsets["boottime"].nanosecs',
     "uint32"),
    (("linux", "devices"), [{"type": "x", "path": "/dev/x"}], ".linux.devices[0].type", "is not one of"),
    (("linux", "devices"), [{"type": "c", "path": "/dev/x", "major": 1}], ".linux.devices[0].minor",
     "is required"),
    (("linux", "devices"), [{"type": "b", "path": "dev/x", "major": 1, "minor": 1}],
     ".linux.devices[0].path", "must be an absolute path"),
    (("linux", "devices"), [{"type": "c", "path": "/dev/x", "major": 1, "minor": 2, "fileMode": -1}],
     ".linux.devices[0].fileMode", "uint32"),
    (("linux", "netDevices"), {"eth0": {"name": 1}}, '.linux.netDevices["eth0"].name', "must be a string"),
    (("linux", "netDevices"), {"eth0": "net0"}, '.linux.netDevices["eth0"]', "must be an object"),
    (("linux", "cgroupsPath"), 1, ".linux.cgroupsPath", "must be a string"),
    (("linux", "resources"), [], ".linux.resources", "must be an object"),
    (("linux", "resources", "devices", 0, "allow"), DELETE, ".linux.resources.devices[0].allow",
     "is required"),
    (("linux", "resources", "devices", 0, "access"), "rwx", ".linux.resources.devices[0].access",
     "is not one of"),
    (("linux", "resources", "devices", 0, "type"), "p", ".linux.resources.devices[0].type",
     "is not one of"),
    (("linux", "resources", "memory"), {"limit": "1G"}, ".linux.resources.memory.limit", "int64"),
    (("linux", "resources", "memory"), {"swappiness": -1}, ".linux.resources.memory.swappiness", "uint64"),
    (("linux", "resources", "memory"), {"disableOOMKiller": 0}, ".linux.resources.memory.disableOOMKiller",
     "must be a boolean"),
    (("linux", "resources", "cpu"), {"shares": -2}, ".linux.resources.cpu.shares", "uint64"),
    (("linux", "resources", "cpu"), {"cpus": 3}, ".linux.resources.cpu.cpus", "must be a string"),
    (("linux", "resources", "pids"), {"limit": 2**63}, ".linux.resources.pids.limit", "int64"),
    (("linux", "resources", "blockIO"), {"weight": 65536}, ".linux.resources.blockIO.weight", "uint16"),
    (("linux", "resources", "blockIO"), {"weightDevice": [{"major": 8, "minor": 0}]},
     ".linux.resources.blockIO.weightDevice[0]", "needs weight or leafWeight"),
    (("linux", "resources", "blockIO"), {"throttleReadBpsDevice": [{"major": 8, "minor": 0}]},
     ".linux.resources.blockIO.throttleReadBpsDevice[0].rate", "is required"),
    (("linux", "resources", "hugepageLimits"), [{"pageSize": "2mb", "limit": 1}],
     ".linux.resources.hugepageLimits[0].pageSize", "2MB"),
    (("linux", "resources", "hugepageLimits"), [{"pageSize": "02MB", "limit": 1}],
     ".linux.resources.hugepageLimits[0].pageSize", "2MB"),
    (("linux", "resources", "network"), {"priorities": [{"name": "eth0"}]},
     ".linux.resources.network.priorities[0].priority", "is required"),
    (("linux", "resources", "rdma"), {"mlx": {}}, '.linux.resources.rdma["mlx"]', "hcaHandles or hcaObjects"),
    (("linux", "resources", "unified"), {"memory.max": 5}, '.linux.resources.unified["memory.max"]',
     "must be a string"),
    (("linux", "rootfsPropagation"), "rsharedx", ".linux.rootfsPropagation", "is not one of"),
    (("linux", "seccomp"), {}, ".linux.seccomp.defaultAction", "is required"),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_DENY"}, ".linux.seccomp.defaultAction",
     "is not one of"),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]},
     ".linux.seccomp.architectures[0]", "is not one of"),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]},
     ".linux.seccomp.flags[0]", "is not one of"),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"},
     ".linux.seccomp.listenerMetadata", "without listenerPath"),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action":
                                                                             "SCMP_ACT_LOG"}]},
     ".linux.seccomp.syscalls[0].names", "must be a non-empty array of strings"),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"]}]},
     ".linux.seccomp.syscalls[0].action", "is required"),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1}]}]},
     ".linux.seccomp.syscalls[0].args[0].op", "is required"),
    (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": -1, "op":
                                                                  "SCMP_CMP_EQ"}]}]},
     ".linux.seccomp.syscalls[0].args[0].value", "uint64"),
    (("linux", "sysctl"), {"net.ipv4.ip_forward": 1}, '.linux.sysctl["net.ipv4.ip_forward"]',
     "must be a string"),
    (("linux", "maskedPaths", 0), "proc/kcore", ".linux.maskedPaths[0]", "must be an absolute path"),
    (("linux", "readonlyPaths"), "/proc/sys", ".linux.readonlyPaths", "must be an array"),
    (("linux", "mountLabel"), False, ".linux.mountLabel", "must be a string"),
    (("linux", "intelRdt"), {"memBwSchema": "L3:0=1"}, ".linux.intelRdt.memBwSchema", "MB:"),
    (("linux", "intelRdt"), {"schemata": ["L3:0=1\nMB:0=2"]}, ".linux.intelRdt.schemata[0]", "newline"),
    (("linux", "intelRdt"), {"enableMonitoring": "yes"}, ".linux.intelRdt.enableMonitoring",
     "must be a boolean"),
    (("linux", "memoryPolicy"), {"nodes": "0"}, ".linux.memoryPolicy.mode", "is required"),
    (("linux", "memoryPolicy"), {"mode": "MPOL_BIND", "flags": ["MPOL_F_X"]}, ".linux.memoryPolicy.flags[0]",
     "is not one of"),
    (("linux", "personality"), {"domain": "LINUX64"}, ".linux.personality.domain", "is not one of"),
    (("linux", "personality"), {"flags": []}, ".linux.personality.domain", "is required"),
    (("windows",), [], ".windows", "must be an object"),
]


@pytest.mark.parametrize("path,value,field,message", INVALID,
                         ids=[f"{'.'.join(map(str, c[0]))}={c[1]!r:.20}" for c in INVALID])
def test_invalid_config_names_the_field(path, value, field, message):
    config = with_change(BASE, path, value)
    err = reject(config)
    assert err.field == field
    assert message in str(err)
    assert str(err).startswith(f"config.json: {field}: ")
    assert "\n" not in str(err)
    assert not VALIDATOR.is_valid(config), "the schema must reject what the loader rejects"


@pytest.mark.parametrize("top", [[], "x", 1, None])
def test_top_level_must_be_an_object(top):
    err = reject(top)
    assert str(err) == "config.json: .: must be a JSON object"
    assert not VALIDATOR.is_valid(top)


def test_source_name_is_used_in_messages():
    with pytest.raises(ConfigError) as info:
        spec.parse({"ociVersion": "1.0.0"}, source="/b/config.json")
    assert str(info.value) == "/b/config.json: .root: is required"


# ---------------------------------------------------------------- load()
def test_load_reads_bundle_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(spec.default_config()))
    assert spec.load(str(tmp_path)).hostname == "runc"


def test_load_missing_bundle(tmp_path):
    with pytest.raises(ConfigError) as info:
        spec.load(str(tmp_path / "nope"))
    assert str(info.value) == f"config.json: bundle directory {tmp_path / 'nope'} does not exist"


def test_load_missing_config(tmp_path):
    with pytest.raises(ConfigError) as info:
        spec.load(str(tmp_path))
    assert str(info.value) == f"config.json: {tmp_path}/config.json does not exist"


@pytest.mark.parametrize("text", ["{", "", "not json", '{"a": 1} x', "\xff"])
def test_load_invalid_json(tmp_path, text):
    (tmp_path / "config.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        spec.load(str(tmp_path))
    assert str(info.value).startswith("config.json: invalid JSON: ")
    assert "\n" not in str(info.value)


def test_load_config_that_is_a_directory(tmp_path):
    (tmp_path / "config.json").mkdir()
    with pytest.raises(ConfigError) as info:
        spec.load(str(tmp_path))
    assert "cannot read" in str(info.value)


def test_loader_does_not_import_jsonschema():
    import subprocess
    import sys

    code = ("import sys, pyrunc.spec as s; s.parse(s.default_config()); "
            "s.parse(s.default_config(True)); "
            "bad = [m for m in ('jsonschema', 're', 'dataclasses', 'typing') if m in sys.modules "
            "and m not in BEFORE]; print(bad)")
    out = subprocess.run([sys.executable, "-c", "import sys; BEFORE = set(sys.modules); " + code],
                         capture_output=True, text=True, check=True).stdout
    assert "jsonschema" not in out and "dataclasses" not in out


def test_inputs_are_not_modified():
    config = copy.deepcopy(FULL_CONFIG)
    spec.parse(config)
    assert config == FULL_CONFIG
