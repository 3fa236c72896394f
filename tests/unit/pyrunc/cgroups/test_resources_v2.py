"""v2 plans and runc's v1 → v2 conversions."""

import pytest

from pyrunc.cgroups import resources
from pyrunc.cgroups.resources import blkio_weight_to_io_weight, memory_swap_to_v2, shares_to_weight
from pyrunc.errors import ConfigError
from testlib import typed


def plan_v2(raw, **kw):
    """The plan of a raw linux.resources object, read as create reads it (pyrunc.config first)."""
    return resources.plan_v2(None if raw is None else typed(raw, kw.get("prefix", ".linux.resources"),
                                                        kw.get("source", "config.json")), **kw)


@pytest.mark.parametrize("shares,weight", [(0, 0), (1, 1), (2, 1), (1024, 100), (262144, 10000),
                                           (300000, 10000), (512, 59), (2048, 174), (100, 17)])
def test_shares_to_weight(shares, weight):
    assert shares_to_weight(shares) == weight


def test_shares_to_weight_monotonic():
    prev = 0
    for s in range(2, 262145, 97):
        w = shares_to_weight(s)
        assert 1 <= w <= 10000 and w >= prev
        prev = w


@pytest.mark.parametrize("blkio,io", [(0, 0), (10, 1), (1000, 10000), (500, 4950), (100, 910)])
def test_blkio_to_io_weight(blkio, io):
    assert blkio_weight_to_io_weight(blkio) == io


@pytest.mark.parametrize("swap,mem,out", [(0, -1, -1), (-1, 100, -1), (0, 100, 0), (300, 100, 200),
                                          (100, 100, 0)])
def test_swap_conversion(swap, mem, out):
    assert memory_swap_to_v2(swap, mem) == out


@pytest.mark.parametrize("swap,mem", [(100, 0), (100, -1), (50, 100)])
def test_swap_conversion_bad(swap, mem):
    with pytest.raises(ValueError):
        memory_swap_to_v2(swap, mem)


def test_memory():
    assert plan_v2({"memory": {"limit": 1000, "swap": 3000, "reservation": 500}}) == {
        "memory": {"memory.swap.max": "2000", "memory.max": "1000", "memory.low": "500"}}


def test_memory_unlimited():
    assert plan_v2({"memory": {"limit": -1}}) == {"memory": {"memory.swap.max": "max", "memory.max": "max"}}


def test_memory_swap_equal_disables_swap():
    assert plan_v2({"memory": {"limit": 1000, "swap": 1000}})["memory"]["memory.swap.max"] == "0"


def test_memory_swap_without_limit():
    with pytest.raises(ConfigError, match=r"memory\.swap: unable to set swap limit without memory limit"):
        plan_v2({"memory": {"swap": 1000}})


@pytest.mark.parametrize("mem,field", [({"swappiness": 10}, "swappiness"),
                                       ({"disableOOMKiller": True}, "disableOOMKiller")])
def test_memory_v1_only(mem, field):
    with pytest.raises(ConfigError, match=rf"memory\.{field}: not supported on cgroup v2"):
        plan_v2({"memory": mem})


def test_cpu():
    assert plan_v2({"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 10,
                            "cpus": "0", "mems": "0", "idle": 0}}) == {
        "cpu": {"cpu.weight": "100", "cpu.max": "50000 100000", "cpu.max.burst": "10", "cpu.idle": "0"},
        "cpuset": {"cpuset.cpus": "0", "cpuset.mems": "0"}}


@pytest.mark.parametrize("cpu,value", [({"quota": -1}, "max"), ({"period": 50000}, "max 50000"),
                                       ({"quota": 2000}, "2000")])
def test_cpu_max(cpu, value):
    assert plan_v2({"cpu": cpu})["cpu"]["cpu.max"] == value


def test_cpu_realtime_refused():
    with pytest.raises(ConfigError, match=r"cpu\.realtimeRuntime: realtime"):
        plan_v2({"cpu": {"realtimeRuntime": 100}})


def test_pids():
    assert plan_v2({"pids": {"limit": 5}}) == {"pids": {"pids.max": "5"}}
    assert plan_v2({"pids": {"limit": -1}}) == {"pids": {"pids.max": "max"}}


def test_io_weight_converted():
    assert plan_v2({"blockIO": {"weight": 500}}) == {"io": {"io.weight": "default 4950"}}


def test_io_weight_bfq_unconverted():
    plan = plan_v2({"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 300}]}},
                   bfq=True)
    assert plan == {"io": {"io.bfq.weight": "500\n8:0 300"}}


def test_io_max():
    plan = plan_v2({"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 10}],
                                "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 20}],
                                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 30}],
                                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 40}]}})
    assert plan == {"io": {"io.max": "8:0 rbps=10\n8:0 wbps=20\n8:0 riops=30\n8:16 wiops=40"}}


def test_leaf_weight_refused():
    with pytest.raises(ConfigError, match=r"blockIO\.leafWeight: not supported on cgroup v2"):
        plan_v2({"blockIO": {"leafWeight": 100}})


def test_hugetlb_rdma():
    plan = plan_v2({"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
                    "rdma": {"mlx5_1": {"hcaHandles": 1}}})
    assert plan == {"hugetlb": {"hugetlb.2MB.max": "4194304"}, "rdma": {"rdma.max": "mlx5_1 hca_handle=1"}}


def test_network_refused():
    with pytest.raises(ConfigError, match=r"\.network: net_cls/net_prio do not exist on cgroup v2"):
        plan_v2({"network": {"classID": 1}})


def test_unified_overrides_converted():
    plan = plan_v2({"cpu": {"shares": 1024}, "unified": {"cpu.weight": "7", "memory.high": "1000",
                                                         "cgroup.max.descendants": "5"}})
    assert plan == {"cpu": {"cpu.weight": "7"}, "memory": {"memory.high": "1000"},
                    "cgroup": {"cgroup.max.descendants": "5"}}


def test_unified_hugetlb_key():
    assert plan_v2({"unified": {"hugetlb.2MB.max": "0"}}) == {"hugetlb": {"hugetlb.2MB.max": "0"}}


@pytest.mark.parametrize("key,msg", [("memory.bogus", "unknown cgroup v2 file"),
                                     ("../memory.max", "must be a file name"),
                                     ("memorymax", "CONTROLLER.PARAMETER"),
                                     ("cgroup.procs", "unknown cgroup v2 file"),
                                     ("foo.bar", "unknown cgroup v2 file")])
def test_unified_bad_key(key, msg):
    with pytest.raises(ConfigError, match=msg) as err:
        plan_v2({"unified": {key: "1"}})
    assert f".linux.resources.unified.{key}" in str(err.value)


def test_unified_bad_value():
    with pytest.raises(ConfigError, match=r'unified\["memory.high"\]: must be a string'):
        plan_v2({"unified": {"memory.high": 5}})
