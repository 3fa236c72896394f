"""v1 plans: every linux.resources field → the files runc writes."""

import pytest

from pyrunc.cgroups import resources
from pyrunc.errors import ConfigError
from testlib import typed


def plan_v1(raw, **kw):
    """The plan of a raw linux.resources object, read as create reads it (pyrunc.config first)."""
    return resources.plan_v1(None if raw is None else typed(raw, kw.get("prefix", ".linux.resources"),
                                                        kw.get("source", "config.json")), **kw)


def test_empty():
    assert plan_v1(None) == {}
    assert plan_v1({}) == {}


def test_memory_every_field():
    plan = plan_v1({"memory": {"limit": 100 << 20, "reservation": 50 << 20, "swap": 200 << 20,
                               "kernelTCP": 1 << 20, "swappiness": 10, "disableOOMKiller": True,
                               "useHierarchy": True, "checkBeforeUpdate": True}})
    assert plan == {"memory": {
        "memory.limit_in_bytes": str(100 << 20),
        "memory.memsw.limit_in_bytes": str(200 << 20),
        "memory.soft_limit_in_bytes": str(50 << 20),
        "memory.kmem.tcp.limit_in_bytes": str(1 << 20),
        "memory.swappiness": "10",
        "memory.oom_control": "1",
        "memory.use_hierarchy": "1",
    }}


def test_memory_unlimited_implies_unlimited_swap():
    assert plan_v1({"memory": {"limit": -1}})["memory"] == {
        "memory.limit_in_bytes": "-1", "memory.memsw.limit_in_bytes": "-1"}


def test_memory_zero_means_unset():
    assert plan_v1({"memory": {"limit": 0, "swap": 0}}) == {}


def test_use_hierarchy_false_written():
    assert plan_v1({"memory": {"useHierarchy": False}}) == {"memory": {"memory.use_hierarchy": "0"}}


@pytest.mark.parametrize("field,value,msg", [
    ("limit", -5, "out of range"),
    ("limit", "1g", "must be an integer"),
    ("limit", True, "must be an integer"),
    ("swappiness", 101, "0-100"),
    ("reservation", -2, "out of range"),
])
def test_memory_bad(field, value, msg):
    with pytest.raises(ConfigError) as err:
        plan_v1({"memory": {field: value}})
    assert f".linux.resources.memory.{field}" in str(err.value)
    assert msg in str(err.value)


def test_swap_below_limit():
    with pytest.raises(ConfigError, match=r"memory\.swap: memory\+swap limit should be >= memory limit"):
        plan_v1({"memory": {"limit": 200, "swap": 100}})


def test_cpu_every_field():
    plan = plan_v1({"cpu": {"shares": 512, "quota": 20000, "period": 100000, "burst": 1000,
                            "realtimeRuntime": 950000, "realtimePeriod": 1000000,
                            "cpus": "0-1", "mems": "0", "idle": 1}})
    assert plan == {
        "cpu": {"cpu.shares": "512", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "20000",
                "cpu.cfs_burst_us": "1000", "cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "950000",
                "cpu.idle": "1"},
        "cpuset": {"cpuset.cpus": "0-1", "cpuset.mems": "0"},
    }


def test_cpu_period_before_quota():
    names = list(plan_v1({"cpu": {"quota": 5000, "period": 10000}})["cpu"])
    assert names == ["cpu.cfs_period_us", "cpu.cfs_quota_us"]


def test_cpu_quota_unlimited():
    assert plan_v1({"cpu": {"quota": -1}}) == {"cpu": {"cpu.cfs_quota_us": "-1"}}


@pytest.mark.parametrize("cpu,field", [
    ({"shares": 300000}, "shares"), ({"period": 10}, "period"), ({"quota": 10}, "quota"),
    ({"cpus": "0-a"}, "cpus"), ({"mems": "1,"}, "mems"), ({"cpus": "3-1"}, "cpus"), ({"idle": 2}, "idle"),
])
def test_cpu_bad(cpu, field):
    with pytest.raises(ConfigError, match=rf"\.linux\.resources\.cpu\.{field}:"):
        plan_v1({"cpu": cpu})


def test_pids():
    assert plan_v1({"pids": {"limit": 10}}) == {"pids": {"pids.max": "10"}}
    assert plan_v1({"pids": {"limit": -1}}) == {"pids": {"pids.max": "max"}}
    assert plan_v1({"pids": {"limit": 0}}) == {}


def test_blkio_every_field():
    plan = plan_v1({"blockIO": {
        "weight": 500, "leafWeight": 300,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 100},
                         {"major": 8, "minor": 16, "weight": 700}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 2097152}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}, {"major": 8, "minor": 16, "rate": 7}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}],
    }})
    assert plan == {"blkio": {
        "blkio.weight": "500",
        "blkio.leaf_weight": "300",
        "blkio.weight_device": "8:0 600\n8:16 700",
        "blkio.leaf_weight_device": "8:0 100",
        "blkio.throttle.read_bps_device": "8:0 1048576",
        "blkio.throttle.write_bps_device": "8:0 2097152",
        "blkio.throttle.read_iops_device": "8:0 100\n8:16 7",
        "blkio.throttle.write_iops_device": "8:0 200",
    }}


@pytest.mark.parametrize("blkio,path", [
    ({"weight": 5}, "blockIO.weight"),
    ({"weight": 1001}, "blockIO.weight"),
    ({"throttleReadBpsDevice": [{"major": 8, "minor": 0}]}, r"blockIO.throttleReadBpsDevice\[0\]"),
    ({"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": -1}]},
     r"blockIO.throttleReadBpsDevice\[0\].rate"),
    ({"weightDevice": [{"minor": 0, "weight": 100}]}, r"blockIO.weightDevice\[0\]"),
])
def test_blkio_bad(blkio, path):
    with pytest.raises(ConfigError, match=rf"\.linux\.resources\.{path}"):
        plan_v1({"blockIO": blkio})


def test_hugepages():
    plan = plan_v1({"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}, {"pageSize": "1GB", "limit": 0}]})
    assert plan == {"hugetlb": {"hugetlb.2MB.limit_in_bytes": "2097152", "hugetlb.1GB.limit_in_bytes": "0"}}


def test_hugepages_normalises_size():
    assert plan_v1({"hugepageLimits": [{"pageSize": "2048KB", "limit": 4}]}) == {
        "hugetlb": {"hugetlb.2MB.limit_in_bytes": "4"}}


def test_hugepages_bad_size():
    with pytest.raises(ConfigError, match=r"hugepageLimits\[0\]\.pageSize"):
        plan_v1({"hugepageLimits": [{"pageSize": "2 megs", "limit": 1}]})


def test_network():
    plan = plan_v1({"network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500},
                                                                   {"name": "lo", "priority": 1}]}})
    assert plan == {"net_cls": {"net_cls.classid": "1048577"},
                    "net_prio": {"net_prio.ifpriomap": "eth0 500\nlo 1"}}


def test_rdma():
    plan = plan_v1({"rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_0": {"hcaObjects": 7}}})
    assert plan == {"rdma": {"rdma.max": "mlx5_1 hca_handle=3 hca_object=10000\nmlx4_0 hca_object=7"}}


def test_rdma_empty_entry():
    # the one validator (pyrunc.config) names map keys as ["key"]
    with pytest.raises(ConfigError, match=r'rdma\["mlx5_1"\]: needs hcaHandles or hcaObjects'):
        plan_v1({"rdma": {"mlx5_1": {}}})


def test_unified_refused_on_v1():
    with pytest.raises(ConfigError, match=r"\.linux\.resources\.unified: cgroup v2 resources"):
        plan_v1({"unified": {"memory.high": "1000"}})


def test_prefix_and_source_for_update():
    with pytest.raises(ConfigError) as err:
        plan_v1({"pids": {"limit": "x"}}, prefix="", source="resources.json")
    assert str(err.value) == "resources.json: .pids.limit: must be an integer (int64, -9223372036854775808 to 9223372036854775807)"
