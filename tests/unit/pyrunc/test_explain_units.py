"""`pyrunc explain`'s pure parts: the capability sets after execve, field names of cgroup files,
the kernel's way of storing cgroup values, and the plan/diff of a config (nothing is created)."""

from __future__ import annotations

import os

import pytest

from pyrunc import capabilities as caps
from pyrunc import explain, explain_drift, explain_plan, spec as specmod
from pyrunc.cgroups import resources
from pyrunc.errors import ConfigError


def _plan(**sets) -> caps.CapPlan:
    n = caps.CAP_NUMBERS
    f = {k: frozenset(n[c] for c in sets.get(k, ())) for k in caps.SETS}
    return caps.CapPlan(f["bounding"], f["effective"], f["permitted"], f["inheritable"], f["ambient"], 40)


def _names(s) -> set[str]:
    return {caps.CAP_NAMES[c] for c in s}


def test_after_execve_root_gets_bounding_and_inheritable():
    plan = _plan(bounding={"CAP_CHOWN", "CAP_KILL"}, effective={"CAP_CHOWN"}, permitted={"CAP_CHOWN"},
                 inheritable={"CAP_SETUID"})
    after = caps.after_execve(plan, 0, no_new_privs=False)
    assert _names(after["permitted"]) == _names(after["effective"]) == {"CAP_CHOWN", "CAP_KILL", "CAP_SETUID"}
    nnp = caps.after_execve(plan, 0, no_new_privs=True)  # no more than init held
    assert _names(nnp["permitted"]) == _names(nnp["effective"]) == {"CAP_CHOWN"}


def test_after_execve_other_uid_keeps_only_ambient():
    plan = _plan(bounding={"CAP_CHOWN", "CAP_KILL"}, effective={"CAP_CHOWN", "CAP_KILL"},
                 permitted={"CAP_CHOWN", "CAP_KILL"}, inheritable={"CAP_KILL"}, ambient={"CAP_KILL"})
    after = caps.after_execve(plan, 1000, no_new_privs=True)
    assert _names(after["permitted"]) == _names(after["effective"]) == {"CAP_KILL"}
    assert _names(after["bounding"]) == {"CAP_CHOWN", "CAP_KILL"}
    assert caps.after_execve(_plan(permitted={"CAP_KILL"}), 1000, False)["effective"] == frozenset()


def test_cgroup_file_fields():
    res = specmod.Resources(unified={"memory.high": "1G"})
    assert resources.field_of("memory.limit_in_bytes", None) == ".linux.resources.memory.limit"
    assert resources.field_of("cpu.max", None) == ".linux.resources.cpu.quota"
    assert resources.field_of("memory.high", res) == ".linux.resources.unified.memory.high"
    assert resources.field_of("hugetlb.2MB.limit_in_bytes", None) == ".linux.resources.hugepageLimits"
    # every file the v1 and v2 plans can write has its field
    full = specmod.Resources(memory=specmod.Memory(limit=1 << 30, reservation=1 << 29, swap=1 << 31, swappiness=10),
                             cpu=specmod.CPU(shares=512, quota=20000, period=100000, cpus="0", mems="0"),
                             pids=specmod.Pids(limit=10), block_io=specmod.BlockIO(weight=100))
    for files in (*resources.plan_v1(full).values(),
                  *resources.plan_v2(specmod.Resources(memory=full.memory and specmod.Memory(limit=1 << 30),
                                                       cpu=full.cpu, pids=full.pids, block_io=full.block_io)).values()):
        for name in files:
            assert name in resources.FILE_FIELDS, name


@pytest.mark.parametrize("name, planned, actual, same", [
    ("memory.limit_in_bytes", "104857601", "104857600", True),
    ("memory.limit_in_bytes", "-1", "9223372036854771712", True),
    ("memory.limit_in_bytes", "104857600", "52428800", False),
    ("pids.max", "100", "77", False),
    ("pids.max", "max", "max", True),
    ("cpuset.cpus", "0,1", "0-1", True),
    ("memory.oom_control", "1", "oom_kill_disable 1\nunder_oom 0", True),
    ("blkio.throttle.read_bps_device", "8:0 100", "8:0 100\n8:16 200", True),
])
def test_kernel_values(name, planned, actual, same):
    assert explain_drift._same_cgroup_value(name, planned, actual) is same


@pytest.fixture
def bundle_dir(tmp_path) -> str:
    os.makedirs(tmp_path / "rootfs" / "etc")
    (tmp_path / "rootfs" / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    os.symlink("/etc", tmp_path / "rootfs" / "conf")  # absolute: resolves inside the rootfs
    return str(tmp_path)


def test_plan_sections_name_fields_and_diff(bundle_dir):
    config = specmod.default_config()
    config["mounts"].append({"destination": "/conf/hostname", "type": "bind", "source": "/etc/hostname",
                             "options": ["rbind", "ro"]})
    spec = specmod.parse(config)
    plan = explain_plan.build(spec, bundle_dir)
    assert list(plan)[:3] == ["format", "host", "cgroup"]
    bind = next(op for op in plan["rootfs"]["ops"] if op["destination"] == "/conf/hostname")
    assert bind["target"] == "/etc/hostname" and bind["field"] == f".mounts[{len(config['mounts']) - 1}]"
    assert plan["process"]["env"][-1] == "HOME=/root"  # from the rootfs's passwd, as init
    assert plan["capabilities"]["afterExec"]["effective"] == ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
    for _section, _key, field, text in explain.lines(plan, detail=True):
        assert field and text
    assert explain.diff(plan, plan) == []
    config["linux"]["resources"]["pids"] = {"limit": 7}
    other = explain_plan.build(specmod.parse(config), bundle_dir)
    assert [c["key"] for c in explain.diff(plan, other)] == ["cgroup:pids.max"]
    assert "+ .linux.resources.pids.limit → pids.max = 7" in explain.render_diff("a", "b", explain.diff(plan, other))
    assert not os.path.exists(plan["cgroup"]["paths"]["pids"])  # nothing made


def test_bad_field_is_a_config_error(bundle_dir):
    config = specmod.default_config()
    config["linux"]["namespaces"].append({"type": "network", "path": "/nonexistent/ns"})
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n.get("path") or n["type"] != "network"]
    with pytest.raises(ConfigError, match=r"\.linux\.namespaces\[\d\]\.path"):
        explain_plan.build(specmod.parse(config), bundle_dir)


def test_unread_fields_asks_the_validator():
    config = specmod.default_config()
    config["process"]["terminal"] = False  # read, and equal to the default: not "unread"
    config["hooks"] = {}
    config["linux"]["resources"]["memory"] = {"limit": 1 << 20, "notAField": 1}
    config["mounts"][0]["extra"] = {"x": 1}
    config["vendorExtension"] = "x"
    config["annotations"] = {"any.key": "kept"}
    assert explain_plan.unread_fields(config) == [
        ".mounts[0].extra", ".linux.resources.memory.notAField", ".vendorExtension"]

