"""cgroup v1 (this host's controllers) with real processes: the limits bite."""

from __future__ import annotations

import errno
import json
import mmap
import os
import signal
import struct
import time

import pytest
from testlib import typed

from pyrunc import cgroups
from pyrunc.cgroups import fileio, oom
from pyrunc.errors import CgroupError, ConfigError, MissingFeature

from test_cgroups_helpers import cg, children, make_manager, sleeper, unique  # noqa: F401

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.isdir("/sys/fs/cgroup/memory") or
    os.path.exists("/sys/fs/cgroup/cgroup.controllers"), reason="needs root and cgroup v1 controllers")


def test_create_places_every_controller(cg, children):
    c = children(sleeper)
    cg.add(c.pid)
    for controller, path in cg.paths.items():
        assert str(c.pid) in fileio.read(f"{path}/cgroup.procs").split(), controller
    assert cg.pids() == [c.pid]


@pytest.mark.parametrize("new_ns", [None, "cgroup", "user"])
def test_created_init_is_in_every_cgroup_made_for_it(runtime, bundle, cid, new_ns):
    """After create, init sits in the container's cgroup of every hierarchy (v1 ones and
    the cgroup2 one beside them), with no cgroup.procs write in pyrunc: init cloned
    straight into its namespaces joins the v1 ones itself through `tasks` and is cloned
    into the cgroup2 one (process._clone_init); with a cgroup or user namespace the
    intermediate does the same before it unshares, and init is born there."""
    bundle.config["linux"]["cgroupsPath"] = f"/{cid}"
    if new_ns:
        bundle.config["linux"]["namespaces"].append({"type": new_ns})
    if new_ns == "user":
        for key in ("uidMappings", "gidMappings"):
            bundle.config["linux"][key] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    bundle.set_args("sleep", "30")
    runtime("create", "-b", bundle.path, cid, check=True)
    pid = json.loads(runtime("state", cid).stdout)["pid"]
    made = [os.path.join("/sys/fs/cgroup", h, cid) for h in sorted(os.listdir("/sys/fs/cgroup"))
            if os.path.isdir(os.path.join("/sys/fs/cgroup", h, cid))]
    assert f"/sys/fs/cgroup/memory/{cid}" in made and f"/sys/fs/cgroup/pids/{cid}" in made, made
    if os.path.isdir("/sys/fs/cgroup/unified"):
        assert "/sys/fs/cgroup/unified/" + cid in made
    for d in made:
        assert fileio.read(f"{d}/cgroup.procs").split() == [str(pid)], d
    lines = open(f"/proc/{pid}/cgroup").read().splitlines()
    assert sum(line.endswith(f":/{cid}") for line in lines) >= len(made) - 1  # cpu,cpuacct may share a line
    runtime("delete", "-f", cid, check=True)
    assert not [d for d in made if os.path.isdir(d)]


def test_init_that_cannot_join_its_cgroup_fails_create_in_one_line(pyrunc, bundle, cid):
    """A pre-made cpuset cgroup without cpus refuses every task (ENOSPC): init's own join
    (`tasks`, process._clone_init) fails, create says so in one line naming the cgroup,
    and leaves no container, no init and not the cgroups it made."""
    cpuset = f"/sys/fs/cgroup/cpuset/{cid}"
    os.mkdir(cpuset)  # cpuset.cpus and cpuset.mems empty: nothing can join it
    try:
        bundle.config["linux"]["cgroupsPath"] = f"/{cid}"
        bundle.set_args("sleep", "30")
        proc = pyrunc("create", "-b", bundle.path, cid)
        err = proc.stderr.decode()
        assert proc.returncode != 0
        assert len(err.strip().splitlines()) == 1 and err.startswith("pyrunc: ") and cpuset in err, err
        assert "init" in err and "pid 1 " not in err  # not its pid in its own namespace
        assert "Traceback" not in err
        assert pyrunc("state", cid).returncode != 0
        assert fileio.read(f"{cpuset}/cgroup.procs").strip() == ""
        assert not os.path.isdir(f"/sys/fs/cgroup/memory/{cid}")  # made by create, removed by its undo
    finally:
        os.rmdir(cpuset)


def test_memory_limit_ooms_and_reports_event(cg, children):
    cg.apply(typed({"memory": {"limit": 32 << 20, "swap": 32 << 20}}))
    watcher = oom.watch(cg)
    try:
        c = children(lambda: len(b"x" * (128 << 20)))
        cg.add(c.pid)
        c.go()
        status = c.wait()
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        deadline = time.monotonic() + 5
        count = 0
        while not count and time.monotonic() < deadline:
            count = watcher.read()
            time.sleep(0.01)
        assert count >= 1
        assert fileio.read_flat(f"{cg.paths['memory']}/memory.oom_control")["oom_kill"] >= 1
    finally:
        watcher.close()


def test_memory_below_limit_survives(cg, children):
    cg.apply(typed({"memory": {"limit": 64 << 20}}))
    c = children(lambda: len(b"x" * (8 << 20)))
    cg.add(c.pid)
    c.go()
    assert os.WIFEXITED(c.wait()) and c.result() == str(8 << 20)


def _fork_loop() -> int:
    """Fork until the kernel says no; the count of forks that worked."""
    made = []
    try:
        for _ in range(50):
            pid = os.fork()
            if pid == 0:
                time.sleep(5)
                os._exit(0)
            made.append(pid)
    except OSError as err:
        assert err.errno == errno.EAGAIN
    finally:
        for pid in made:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return len(made)


def test_pids_limit_stops_fork_loop(cg, children):
    cg.apply(typed({"pids": {"limit": 5}}))
    c = children(_fork_loop)
    cg.add(c.pid)
    c.go()
    assert os.WIFEXITED(c.wait()) and os.WEXITSTATUS(c.status) == 0
    assert c.result() == "4"  # the child itself is the fifth task
    assert fileio.read(f"{cg.paths['pids']}/pids.max") == "5"


def _busy_cpu_seconds(wall: float = 1.0) -> float:
    start = time.monotonic()
    t0 = time.process_time()
    while time.monotonic() - start < wall:
        pass
    return time.process_time() - t0


def test_cpu_quota_slows_busy_loop(cg, children):
    cg.apply(typed({"cpu": {"quota": 10000, "period": 100000}}))  # 10% of one CPU
    c = children(_busy_cpu_seconds)
    cg.add(c.pid)
    c.go()
    c.wait()
    used = float(c.result())
    assert used < 0.25, f"busy loop got {used:.2f}s of CPU in 1s under a 10% quota"
    assert cg.stats()["cpu"]["throttling"].get("throttled_periods", 0) > 0


def test_devices_default_deny(cg, children, tmp_path):
    cg.apply(typed({"devices": [{"allow": False, "access": "rwm"}]}))
    node = str(tmp_path / "loopnode")
    os.mknod(node, 0o600 | 0o060000, os.makedev(7, 0))  # a block device, like /dev/loop0

    def probe() -> str:
        out = []
        for path in ("/dev/null", "/dev/zero", node):
            try:
                os.close(os.open(path, os.O_RDONLY))
                out.append("ok")
            except OSError as err:
                out.append(errno.errorcode[err.errno])
        try:
            os.mknod(node + ".2", 0o600 | 0o060000, os.makedev(8, 0))  # mknod itself is allowed (b *:* m)
            out.append("mknod")
        except OSError as err:
            out.append(errno.errorcode[err.errno])
        return ",".join(out)

    c = children(probe)
    cg.add(c.pid)
    c.go()
    c.wait()
    assert c.result() == "'ok,ok,EPERM,mknod'"
    listing = fileio.read(f"{cg.paths['devices']}/devices.list").splitlines()
    assert "c 1:3 rwm" in listing and "b *:* m" in listing and "a *:* rwm" not in listing


def test_devices_explicit_deny_of_allowed_node(cg, children):
    cg.apply(typed({"devices": [{"allow": True, "type": "a"}, {"allow": False, "type": "c", "major": 1, "minor": 5,
                                                          "access": "r"}]}))

    def probe() -> str:
        try:
            os.close(os.open("/dev/zero", os.O_RDONLY))
            return "ok"
        except OSError as err:
            return errno.errorcode[err.errno]

    c = children(probe)
    cg.add(c.pid)
    c.go()
    c.wait()
    # runc's defaults come after the spec's rules and re-allow /dev/zero (c 1:5 rwm)
    assert c.result() == "'ok'"


def _counter_child(buf: mmap.mmap):
    def run() -> None:
        n = 0
        while True:
            n += 1
            struct.pack_into("<Q", buf, 0, n)
    return run


def test_freeze_thaw(cg, children):
    buf = mmap.mmap(-1, 8)
    c = children(_counter_child(buf))
    cg.add(c.pid)
    c.go()
    time.sleep(0.1)
    cg.freeze()
    assert cg.is_frozen()
    a = struct.unpack_from("<Q", buf)[0]
    time.sleep(0.2)
    b = struct.unpack_from("<Q", buf)[0]
    assert a == b, "counter moved while frozen"
    cg.thaw()
    assert not cg.is_frozen()
    time.sleep(0.1)
    assert struct.unpack_from("<Q", buf)[0] > b


def test_kill_all(cg, children):
    kids = [children(sleeper) for _ in range(3)]
    for k in kids:
        cg.add(k.pid)
    cg.kill_all(signal.SIGTERM)
    for k in kids:
        status = k.wait(5)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
    assert cg.pids() == []


def test_kill_all_keeps_paused_container_paused(cg, children):
    c = children(sleeper)
    cg.add(c.pid)
    cg.freeze()
    cg.kill_all(signal.SIGUSR1)
    assert cg.is_frozen()
    cg.thaw()


# Which kernel file carries each requested field, per controller: a kernel without the
# file (no CFQ/BFQ scheduler means no blkio weight; no swap accounting, no memsw; ...)
# gets that field left out of the request, named in the test's report, and the
# runtime's error for it is checked by test_missing_kernel_file_is_a_clear_error.
FIELD_FILES = {
    ("memory", "swap"): ("memory", ("memory.memsw.limit_in_bytes",)),
    ("memory", "kernelTCP"): ("memory", ("memory.kmem.tcp.limit_in_bytes",)),
    ("memory", "swappiness"): ("memory", ("memory.swappiness",)),
    ("cpu", "burst"): ("cpu", ("cpu.cfs_burst_us",)),
    ("cpu", "realtimePeriod"): ("cpu", ("cpu.rt_period_us",)),
    ("cpu", "realtimeRuntime"): ("cpu", ("cpu.rt_runtime_us",)),
    ("cpu", "idle"): ("cpu", ("cpu.idle",)),
    ("blockIO", "weight"): ("blkio", ("blkio.bfq.weight", "blkio.weight")),
}


def kernel_files(cg, ctl: str, names: tuple[str, ...]) -> list[str]:
    """The files of `names` that the kernel shows in the test's own cgroup: not at the
    hierarchy's root, which lacks some (bfq's blkio.bfq.weight exists only below it)."""
    return [n for n in names if os.path.exists(f"{cg.paths[ctl]}/{n}")]


def test_every_field_applied(cg, record_property):
    vda = fileio.read("/sys/block/vda/dev") if os.path.exists("/sys/block/vda/dev") else None
    res = {
        "memory": {"limit": 100 << 20, "reservation": 50 << 20, "swap": 200 << 20, "kernelTCP": 8 << 20,
                   "swappiness": 10, "disableOOMKiller": True, "useHierarchy": True},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000,
                "realtimePeriod": 1000000, "realtimeRuntime": 1000, "cpus": "0", "mems": "0", "idle": 0},
        "pids": {"limit": 42},
        "blockIO": {"weight": 300},
    }
    missing = []
    for (section, key), (ctl, names) in FIELD_FILES.items():
        if not kernel_files(cg, ctl, names):
            del res[section][key]
            missing.append(f"{section}.{key} ({' or '.join(names)} absent)")
    if missing:
        record_property("not checked on this kernel", "; ".join(missing))
        print("not checked on this kernel:", "; ".join(missing))
    if vda:
        major, minor = (int(x) for x in vda.split(":"))
        dev = {"major": major, "minor": minor}
        bfq = "[bfq]" in fileio.read("/sys/block/vda/queue/scheduler")
        if bfq:  # per-device weights need the bfq scheduler on that device
            res["blockIO"]["weightDevice"] = [{**dev, "weight": 400}]
        res["blockIO"].update({
            "throttleReadBpsDevice": [{**dev, "rate": 1048576}],
            "throttleWriteBpsDevice": [{**dev, "rate": 2097152}],
            "throttleReadIOPSDevice": [{**dev, "rate": 100}],
            "throttleWriteIOPSDevice": [{**dev, "rate": 200}]})
    cg.apply(typed(res))
    p = cg.paths

    def rd(ctl: str, name: str) -> str:
        return fileio.read(f"{p[ctl]}/{name}")

    def asked(section: str, key: str) -> bool:
        return key in res[section]

    assert rd("memory", "memory.limit_in_bytes") == str(100 << 20)
    assert rd("memory", "memory.soft_limit_in_bytes") == str(50 << 20)
    if asked("memory", "swap"):
        assert rd("memory", "memory.memsw.limit_in_bytes") == str(200 << 20)
    if asked("memory", "kernelTCP"):
        assert rd("memory", "memory.kmem.tcp.limit_in_bytes") == str(8 << 20)
    if asked("memory", "swappiness"):
        assert rd("memory", "memory.swappiness") == "10"
    assert "oom_kill_disable 1" in rd("memory", "memory.oom_control")
    assert rd("memory", "memory.use_hierarchy") == "1"
    assert rd("cpu", "cpu.shares") == "512"
    assert rd("cpu", "cpu.cfs_quota_us") == "50000"
    assert rd("cpu", "cpu.cfs_period_us") == "100000"
    if asked("cpu", "burst"):
        assert rd("cpu", "cpu.cfs_burst_us") == "1000"
    if asked("cpu", "realtimePeriod"):
        assert rd("cpu", "cpu.rt_period_us") == "1000000"
    if asked("cpu", "realtimeRuntime"):
        assert rd("cpu", "cpu.rt_runtime_us") == "1000"
    if asked("cpu", "idle"):
        assert rd("cpu", "cpu.idle") == "0"
    assert rd("cpuset", "cpuset.cpus") == "0"
    assert rd("cpuset", "cpuset.mems") == "0"
    assert rd("pids", "pids.max") == "42"
    if asked("blockIO", "weight"):  # CFQ is gone: bfq takes the weight where it exists
        weight_file = kernel_files(cg, "blkio", ("blkio.bfq.weight", "blkio.weight"))[0]
        assert rd("blkio", weight_file).split()[-1] == "300"
    if vda:
        if bfq:
            assert f"{vda} 400" in rd("blkio", "blkio.bfq.weight_device")
        assert rd("blkio", "blkio.throttle.read_bps_device") == f"{vda} 1048576"
        assert rd("blkio", "blkio.throttle.write_bps_device") == f"{vda} 2097152"
        assert rd("blkio", "blkio.throttle.read_iops_device") == f"{vda} 100"
        assert rd("blkio", "blkio.throttle.write_iops_device") == f"{vda} 200"


@pytest.mark.parametrize(("section", "key"), sorted(FIELD_FILES))
def test_missing_kernel_file_is_a_clear_error(cg, section, key):
    """Where this kernel lacks a field's file, asking for it is one clear error naming the file."""
    ctl, names = FIELD_FILES[(section, key)]
    if kernel_files(cg, ctl, names):
        pytest.skip(f"this kernel has {' / '.join(kernel_files(cg, ctl, names))}: nothing missing to report")
    value = {"swap": 200 << 20, "kernelTCP": 8 << 20, "swappiness": 10, "burst": 1000, "realtimePeriod": 1000000,
             "realtimeRuntime": 1000, "idle": 0, "weight": 300}[key]
    extra = {"limit": 100 << 20} if key == "swap" else {}
    with pytest.raises(CgroupError) as err:
        cg.apply(typed({section: {key: value, **extra}}))
    assert any(n in str(err.value) for n in names) and "lacks" in str(err.value), str(err.value)


@pytest.mark.parametrize("res,what", [
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}, "hugetlb"),
    ({"network": {"classID": 5}}, "net_cls"),
    ({"network": {"priorities": [{"name": "lo", "priority": 1}]}}, "net_prio"),
    ({"rdma": {"mlx5_0": {"hcaHandles": 1}}}, "rdma"),
])
def test_unmounted_controller_is_a_clear_error(cg, res, what):
    if what in cg.paths:
        pytest.skip(f"{what} is mounted here")
    with pytest.raises(MissingFeature, match=f"cgroup v1 controller {what}: not supported: "
                                             f"(not mounted on this host|the kernel lacks it)"):
        cg.apply(typed(res))


def test_update_live_and_all_or_nothing(cg, children):
    c = children(sleeper)
    cg.add(c.pid)
    cg.apply(typed({"pids": {"limit": 100}, "memory": {"limit": 64 << 20}}))
    cg.update(typed({"pids": {"limit": 3}}))
    pids_max = f"{cg.paths['pids']}/pids.max"
    assert fileio.read(pids_max) == "3"
    # pids is written before blkio; the bogus device makes blkio fail, pids must roll back
    with pytest.raises(CgroupError, match="blkio.throttle.read_bps_device"):
        cg.update(typed({"pids": {"limit": 9}, "memory": {"limit": 32 << 20},
                   "blockIO": {"throttleReadBpsDevice": [{"major": 250, "minor": 250, "rate": 1}]}}))
    assert fileio.read(pids_max) == "3"
    assert fileio.read(f"{cg.paths['memory']}/memory.limit_in_bytes") == str(64 << 20)
    with pytest.raises(ConfigError, match=r"resources.json: .cpu.cpus: CPUs .* do not exist"):
        cg.update(typed({"pids": {"limit": 9}, "cpu": {"cpus": "0-63"}}, prefix='', source='resources.json'), source="resources.json", prefix="")
    assert fileio.read(pids_max) == "3"


def test_update_memory_grow_and_shrink_with_swap(cg):
    cg.apply(typed({"memory": {"limit": 32 << 20, "swap": 64 << 20}}))
    cg.update(typed({"memory": {"limit": 256 << 20, "swap": 512 << 20}}))  # memsw must be raised first
    mem = cg.paths["memory"]
    assert fileio.read(f"{mem}/memory.limit_in_bytes") == str(256 << 20)
    cg.update(typed({"memory": {"limit": 16 << 20, "swap": 16 << 20}}))  # limit must be lowered first
    assert fileio.read(f"{mem}/memory.memsw.limit_in_bytes") == str(16 << 20)


def test_check_before_update(cg, children):
    cg.apply(typed({"memory": {"limit": 256 << 20}}))
    keep = mmap.mmap(-1, 8)

    def hog():
        data = b"x" * (32 << 20)
        struct.pack_into("<Q", keep, 0, 1)
        time.sleep(30)
        return len(data)

    c = children(hog)
    cg.add(c.pid)
    c.go()
    deadline = time.monotonic() + 5
    while not struct.unpack_from("<Q", keep)[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(ConfigError, match="below the current usage"):
        cg.update(typed({"memory": {"limit": 1 << 20, "checkBeforeUpdate": True}}))
    assert fileio.read(f"{cg.paths['memory']}/memory.limit_in_bytes") == str(256 << 20)


def test_stats_shape(cg, children):
    cg.apply(typed({"pids": {"limit": 10}, "memory": {"limit": 64 << 20}}))
    c = children(lambda: _busy_cpu_seconds(0.2))
    cg.add(c.pid)
    c.go()
    time.sleep(0.1)
    s = cg.stats()
    assert list(s) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]
    assert s["pids"] == {"current": 1, "limit": 10}
    assert s["memory"]["usage"]["limit"] == 64 << 20 and s["memory"]["usage"]["usage"] > 0
    assert s["cpu"]["usage"]["total"] > 0 and len(s["cpu"]["usage"]["percpu"]) == os.cpu_count()
    json.dumps(s)
    c.wait()


def test_destroy_removes_created_parents():
    top = "/" + unique()
    m = make_manager(f"{top}/inner/leaf")
    try:
        m.create()
        assert os.path.isdir(f"/sys/fs/cgroup/memory{top}/inner/leaf")
        again = cgroups.load_manager(json.loads(json.dumps(m.to_state())))
    finally:
        m.destroy(kill=True)
    for ctl in m.paths.values():
        assert not os.path.exists(ctl)
    assert not os.path.exists(f"/sys/fs/cgroup/memory{top}")
    again.destroy()  # idempotent


def test_destroy_keeps_parent_in_use():
    top = "/" + unique()
    a, b = make_manager(f"{top}/a"), make_manager(f"{top}/b")
    try:
        a.create()
        b.create()
        a.destroy()
        assert os.path.isdir(f"/sys/fs/cgroup/pids{top}/b")
    finally:
        a.destroy()
        b.destroy()
        for m in (a, b):  # whichever of them made the parent removes it once empty
            from pyrunc.cgroups.common import DirMaker

            DirMaker(m.created).remove_parents()
    assert not os.path.exists(f"/sys/fs/cgroup/pids{top}")


def test_relative_path_is_below_own_cgroup():
    from pyrunc.cgroups import hierarchy

    name = unique()
    m = make_manager(name)
    own = hierarchy.own_cgroups()
    expected = os.path.normpath(f"/sys/fs/cgroup/memory{own['memory']}/{name}")
    assert m.paths["memory"] == expected
    try:
        m.create()
        assert os.path.isdir(expected)
    finally:
        m.destroy()
    assert not os.path.exists(expected)
