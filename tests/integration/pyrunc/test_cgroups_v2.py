"""cgroup v2 on this host's /sys/fs/cgroup/unified: no controllers are
enabled there, but the core files are (procs, freeze, kill) and so is the
eBPF device filter, which works on any cgroup2 directory."""

from __future__ import annotations

import errno
import mmap
import os
import signal
import struct
import time

import pytest
from testlib import typed
from test_cgroups_helpers import children, sleeper, unique  # noqa: F401

from pyrunc.cgroups import devices, fileio, load_manager
from pyrunc.cgroups.v2 import V2Manager
from pyrunc.errors import MissingFeature

MOUNT = "/sys/fs/cgroup/unified"
if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
    MOUNT = "/sys/fs/cgroup"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(f"{MOUNT}/cgroup.procs"),
                                reason="needs root and a cgroup2 mount")


@pytest.fixture
def v2():
    m = V2Manager("/" + unique(), mount=MOUNT)
    m.create()
    try:
        yield m
    finally:
        m.destroy(kill=True)
        assert not m.exists()


def test_procs(v2, children):
    kids = [children(sleeper) for _ in range(2)]
    for k in kids:
        v2.add(k.pid)
    assert sorted(v2.pids()) == sorted(k.pid for k in kids)
    assert load_manager(v2.to_state()).pids() == v2.pids()


def test_freeze_thaw(v2, children):
    buf = mmap.mmap(-1, 8)

    def count() -> None:
        n = 0
        while True:
            n += 1
            struct.pack_into("<Q", buf, 0, n)

    c = children(count)
    v2.add(c.pid)
    c.go()
    time.sleep(0.1)
    v2.freeze()
    assert v2.is_frozen()
    assert fileio.read_flat(f"{v2.dir}/cgroup.events")["frozen"] == 1
    a = struct.unpack_from("<Q", buf)[0]
    time.sleep(0.2)
    assert struct.unpack_from("<Q", buf)[0] == a
    v2.thaw()
    assert not v2.is_frozen()
    time.sleep(0.1)
    assert struct.unpack_from("<Q", buf)[0] > a


def test_kill_all_sigkill_uses_cgroup_kill(v2, children):
    kids = [children(sleeper) for _ in range(3)]
    for k in kids:
        v2.add(k.pid)
    v2.kill_all(signal.SIGKILL)
    for k in kids:
        status = k.wait(5)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def test_kill_all_other_signal(v2, children):
    c = children(sleeper)
    v2.add(c.pid)
    v2.kill_all(signal.SIGTERM)
    status = c.wait(5)
    assert os.WTERMSIG(status) == signal.SIGTERM
    assert not v2.is_frozen()


def test_destroy_kills_stragglers(children):
    m = V2Manager(f"/{unique()}/leaf", mount=MOUNT)
    m.create()
    c = children(sleeper)
    m.add(c.pid)
    m.destroy(kill=True)
    assert os.WTERMSIG(c.wait(5)) == signal.SIGKILL
    assert not os.path.exists(os.path.dirname(m.dir))


def _open_probe(paths):
    def probe() -> str:
        out = []
        for path, flags in paths:
            try:
                os.close(os.open(path, flags))
                out.append("ok")
            except OSError as err:
                out.append(errno.errorcode[err.errno])
        return ",".join(out)
    return probe


def test_ebpf_device_filter_blocks_open(v2, children, tmp_path):
    node = str(tmp_path / "blk")
    os.mknod(node, 0o600 | 0o060000, os.makedev(7, 0))
    v2.apply(typed({"devices": [{"allow": False, "access": "rwm"}]}))
    c = children(_open_probe([("/dev/null", os.O_RDWR), ("/dev/zero", os.O_RDONLY), (node, os.O_RDONLY)]))
    v2.add(c.pid)
    c.go()
    c.wait()
    assert c.result() == "'ok,ok,EPERM'"


def test_ebpf_replaced_on_update(v2, children):
    v2.apply(typed({"devices": [{"allow": False, "access": "rwm"}]}))
    # blacklist: everything but a read of /dev/zero (a partial "w" deny also blocks O_RDWR, as on v1)
    v2.update(typed({"devices": [{"allow": True, "type": "a"}]}), devices_too=True)
    fd = os.open(v2.dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        from pyrunc import syscalls

        assert len(syscalls.bpf_prog_query(fd, syscalls.BPF_CGROUP_DEVICE)) == 1
    finally:
        os.close(fd)
    c = children(_open_probe([("/dev/zero", os.O_RDONLY)]))
    v2.add(c.pid)
    c.go()
    c.wait()
    assert c.result() == "'ok'"


def test_ebpf_blacklist_partial_deny(v2, children):
    state = devices.compute([devices.Rule(True, "a", -1, -1, "rwm"),
                             devices.Rule(False, "c", 1, 5, "w")], with_defaults=False)
    from pyrunc.cgroups.v2 import attach_device_filter

    attach_device_filter(v2.dir, devices.bpf_program(state))
    c = children(_open_probe([("/dev/zero", os.O_RDONLY), ("/dev/zero", os.O_WRONLY), ("/dev/zero", os.O_RDWR)]))
    v2.add(c.pid)
    c.go()
    c.wait()
    assert c.result() == "'ok,EPERM,EPERM'"


def test_limits_need_controllers(v2):
    available = fileio.read(f"{MOUNT}/cgroup.controllers").split()
    if "pids" in available:
        pytest.skip("pids is available on this cgroup2 mount")
    with pytest.raises(MissingFeature, match="cgroup v2 controller pids: not supported: not available"):
        v2.apply(typed({"pids": {"limit": 5}}))


def test_stats_without_controllers(v2, children):
    c = children(sleeper)
    v2.add(c.pid)
    s = v2.stats()
    assert set(s) >= {"cpu", "blkio", "hugetlb"}
    assert "kernel" in s["cpu"]["usage"]


@pytest.fixture
def hugetlb_v2():
    """A nested v2 cgroup with the hugetlb controller enabled on the way down;
    the root's subtree_control is put back as it was."""
    available = fileio.read(f"{MOUNT}/cgroup.controllers").split()
    if "hugetlb" not in available or not os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB"):
        pytest.skip("no hugetlb controller / 2MB pages on this cgroup2 mount")
    before = fileio.read(f"{MOUNT}/cgroup.subtree_control").split()
    m = V2Manager(f"/{unique()}/leaf", mount=MOUNT)
    m.create()
    try:
        yield m
    finally:
        m.destroy(kill=True)
        if "hugetlb" not in before:
            fileio.write(f"{MOUNT}/cgroup.subtree_control", "-hugetlb")


def test_hugetlb_limit_enables_controller(hugetlb_v2):
    m = hugetlb_v2
    m.apply(typed({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]}))
    assert "hugetlb" in fileio.read(f"{os.path.dirname(m.dir)}/cgroup.subtree_control").split()
    assert fileio.read(f"{m.dir}/hugetlb.2MB.max") == str(4 << 20)
    assert m.stats()["hugetlb"]["2MB"] == {"failcnt": 0}


def test_update_rolls_back_on_failure_v2(hugetlb_v2):
    m = hugetlb_v2
    m.apply(typed({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]}))
    from pyrunc.errors import CgroupError

    with pytest.raises(CgroupError, match="hugetlb.2MB.rsvd.max"):
        m.update(typed({"hugepageLimits": [{"pageSize": "2MB", "limit": 8 << 20}],
                  "unified": {"hugetlb.2MB.rsvd.max": "not-a-number"}}))
    assert fileio.read(f"{m.dir}/hugetlb.2MB.max") == str(4 << 20)
