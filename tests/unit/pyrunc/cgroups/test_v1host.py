"""cgroups/v1host: the host-dependent decisions of the v1 manager, as pure
functions of the plan and a probe (no root: the probe reads a fake hierarchy)."""

from __future__ import annotations

import pytest
from testlib import typed

from pyrunc.cgroups import v1host
from pyrunc.cgroups.resources import plan_v1
from pyrunc.errors import MissingFeature

MEMSW = "memory.memsw.limit_in_bytes"
BFQ_ONLY = frozenset({"blkio.bfq.weight", "blkio.bfq.weight_device"})


def probe(files=frozenset(), limit=None, period=None, ancestors=()) -> v1host.Probe:
    return v1host.Probe(frozenset(files), limit, period, tuple(ancestors))


def test_bfq_names_where_only_bfq_offers_them():
    plan = plan_v1(typed({"blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 400}],
                                      "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 5}]}}))
    settled, raises = v1host.settle(plan, probe(BFQ_ONLY), None)
    assert list(settled["blkio"].items()) == [("blkio.throttle.read_bps_device", "8:0 5"),
                                              ("blkio.bfq.weight", "300"), ("blkio.bfq.weight_device", "8:0 400")]
    assert raises == [] and "blkio.weight" in plan["blkio"]  # the plan given is left as it was
    cfq = v1host.settle(plan, probe(BFQ_ONLY | {"blkio.weight", "blkio.weight_device"}), None)[0]
    assert cfq == plan  # CFQ's files where the kernel still has them
    assert v1host.settle(plan, probe(), None)[0] == plan  # neither: the write fails naming blkio.weight


@pytest.mark.parametrize("current, order", [
    (None, ["memory.limit_in_bytes", MEMSW]),  # a new cgroup: unlimited, so the limit goes first
    (64 << 20, [MEMSW, "memory.limit_in_bytes"]),  # growing: memsw first
    (512 << 20, ["memory.limit_in_bytes", MEMSW]),  # shrinking: the limit first
])
def test_memory_order_keeps_memsw_above_the_limit(current, order):
    plan = plan_v1(typed({"memory": {"limit": 128 << 20, "swap": 256 << 20, "swappiness": 10}}))
    mem = v1host.settle(plan, probe({MEMSW}, limit=current), None)[0]["memory"]
    assert list(mem) == order + ["memory.swappiness"]
    assert mem["memory.limit_in_bytes"] == str(128 << 20) and mem[MEMSW] == str(256 << 20)


def test_unlimited_memory_raises_memsw_first_and_drops_it_without_swap_accounting():
    res = typed({"memory": {"limit": -1}})
    plan = plan_v1(res)
    assert list(v1host.settle(plan, probe({MEMSW}, limit=1 << 30), res)[0]["memory"]) == [
        MEMSW, "memory.limit_in_bytes"]
    assert v1host.settle(plan, probe(), res)[0]["memory"] == {"memory.limit_in_bytes": "-1"}
    asked = typed({"memory": {"limit": 100 << 20, "swap": 200 << 20}})
    with pytest.raises(MissingFeature, match="swap accounting is off"):
        v1host.settle(plan_v1(asked), probe(), asked)


def test_realtime_raises_ancestors_top_down_never_lowers():
    plan = plan_v1(typed({"cpu": {"realtimeRuntime": 20000}}))
    ancestors = [("/cg/a", 50000, 1000000), ("/cg/a/b", 0, 1000000), ("/cg/a/b/c", 1000, 500000)]
    raises = v1host.settle(plan, probe(period=1000000, ancestors=ancestors), None)[1]
    assert raises == [("/cg/a/b/cpu.rt_runtime_us", "20000"), ("/cg/a/b/c/cpu.rt_runtime_us", "10000")]
    own_period = plan_v1(typed({"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 3000}}))
    assert v1host.settle(own_period, probe(ancestors=[("/cg/a", 0, 1000000)]), None)[1] == [
        ("/cg/a/cpu.rt_runtime_us", "333334")]  # rounded up: the child's share must fit
    assert v1host.settle(plan_v1(typed({"cpu": {"realtimeRuntime": -1}})), probe(), None)[1] == []


def test_seeds_parents_first():
    seeds = v1host.seeds_from(["/cs/p", "/cs/p/c"], [("cpuset.cpus", "0-1"), ("cpuset.mems", "0")])
    assert [(s.path, s.value) for s in seeds] == [("/cs/p/cpuset.cpus", "0-1"), ("/cs/p/cpuset.mems", "0"),
                                                  ("/cs/p/c/cpuset.cpus", "0-1"), ("/cs/p/c/cpuset.mems", "0")]


def _hierarchy(tmp_path, root_files, children):
    """A fake v1 hierarchy: `root` with cgroup.procs and root_files, a child per entry."""
    root = tmp_path / "blkio"
    root.mkdir()
    for name in ("cgroup.procs", "cgroup.clone_children", *root_files):
        (root / name).write_text("0\n" if name == "cgroup.clone_children" else "")
    for child, files in children.items():
        (root / child).mkdir()
        for name in ("cgroup.procs", *files):
            (root / child / name).write_text("")
    return root


NAMES = ["blkio.weight", "blkio.bfq.weight", "blkio.weight_device", "blkio.bfq.weight_device"]


def test_offered_reads_a_non_root_cgroup(tmp_path):
    root = _hierarchy(tmp_path, ["blkio.bfq.io_service_bytes"], {"other": ["blkio.bfq.weight"]})
    assert v1host.offered(str(root / "other"), NAMES) == {"blkio.bfq.weight"}  # its own directory
    # not made yet: the root lacks the file, a sibling below the root has it
    assert v1host.offered(str(root / "pyrunc" / "id"), NAMES) == {"blkio.bfq.weight"}
    (root / "pyrunc").mkdir()
    (root / "pyrunc" / "cgroup.procs").write_text("")
    (root / "pyrunc" / "blkio.weight").write_text("")
    assert v1host.offered(str(root / "pyrunc" / "id"), NAMES) == {"blkio.weight"}  # the nearest ancestor


def test_offered_without_any_child_uses_the_kernels_known_set(tmp_path):
    bfq = _hierarchy(tmp_path, ["blkio.bfq.io_service_bytes"], {})
    assert v1host.offered(str(bfq / "pyrunc" / "id"), NAMES) == {"blkio.bfq.weight", "blkio.bfq.weight_device"}
    (tmp_path / "none").mkdir()
    none = _hierarchy(tmp_path / "none", ["blkio.throttle.read_bps_device"], {})
    assert v1host.offered(str(none / "pyrunc" / "id"), NAMES) == frozenset()


def test_probe_of_cgroups_create_would_make(tmp_path, monkeypatch):
    root = tmp_path / "cpu"
    root.mkdir()
    for name, value in (("cgroup.procs", ""), ("cpu.rt_runtime_us", "950000"), ("cpu.rt_period_us", "1000000")):
        (root / name).write_text(value)
    (root / "top").mkdir()
    for name, value in (("cgroup.procs", ""), ("cpu.rt_runtime_us", "500"), ("cpu.rt_period_us", "1000000")):
        (root / "top" / name).write_text(value)
    monkeypatch.setattr(v1host, "_rt_default", lambda: 1000000)
    plan = plan_v1(typed({"cpu": {"realtimeRuntime": 1000}}))
    found = v1host.probe({"cpu": str(root / "top" / "mid" / "leaf")}, plan)
    assert found.rt_period == 1000000
    assert found.rt_ancestors == ((str(root / "top"), 500, 1000000), (str(root / "top" / "mid"), 0, 1000000))
    assert v1host.settle(plan, found, None)[1] == [(f"{root}/top/cpu.rt_runtime_us", "1000"),
                                                   (f"{root}/top/mid/cpu.rt_runtime_us", "1000")]


def test_known_set_of_files_kept_off_the_root(tmp_path):
    root = _hierarchy(tmp_path, [], {})
    assert v1host.offered(str(root / "pyrunc" / "id"), ["pids.max", "freezer.state", "pids.bogus"]) == {
        "pids.max", "freezer.state"}
