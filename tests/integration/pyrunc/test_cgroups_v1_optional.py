"""The v1 controllers this host does not mount (net_cls, net_prio, hugetlb):
mount a hierarchy for them in a temporary directory, apply the spec fields
through a V1Manager (update: these managers have no devices controller),
check the files, and unmount. Skipped where the kernel
lacks the controller or it is bound to a hierarchy with other options.
(The kernel keeps an unmounted v1 hierarchy alive while old tasks reference
it, so a later mount with the same options reuses it; nothing else changes.)"""

from __future__ import annotations

import os
import subprocess
import tempfile

import pytest
from testlib import typed
from test_cgroups_helpers import unique

from pyrunc.cgroups import fileio
from pyrunc.cgroups.v1 import V1Manager

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def _kernel_has(controller: str) -> bool:
    with open("/proc/cgroups") as f:
        return any(line.split()[0] == controller and line.split()[3] == "1"
                   for line in f if not line.startswith("#"))


@pytest.fixture
def v1_mount(request):
    controllers = request.param
    for c in controllers.split(","):
        if not _kernel_has(c):
            pytest.skip(f"kernel lacks the {c} controller")
    mnt = tempfile.mkdtemp(prefix="pyrunc-test-cg-")
    proc = subprocess.run(["mount", "-t", "cgroup", "-o", controllers, "cgroup", mnt], capture_output=True)
    if proc.returncode != 0:
        os.rmdir(mnt)
        pytest.skip(f"cannot mount a v1 {controllers} hierarchy: {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", mnt], check=True)
        os.rmdir(mnt)


@pytest.mark.parametrize("v1_mount", ["net_cls,net_prio"], indirect=True)
def test_network_fields(v1_mount):
    path = f"{v1_mount}/{unique()}/leaf"
    m = V1Manager({"net_cls": path, "net_prio": path})
    m.create()
    try:
        m.update(typed({"network": {"classID": 0x100001, "priorities": [{"name": "lo", "priority": 7}]}}))
        assert fileio.read(f"{path}/net_cls.classid") == str(0x100001)
        assert "lo 7" in fileio.read(f"{path}/net_prio.ifpriomap").splitlines()
        m.update(typed({"network": {"priorities": [{"name": "lo", "priority": 3}]}}))
        assert "lo 3" in fileio.read(f"{path}/net_prio.ifpriomap").splitlines()
    finally:
        m.destroy(kill=True)
    assert not os.path.exists(os.path.dirname(path))


@pytest.mark.parametrize("v1_mount", ["hugetlb"], indirect=True)
def test_hugepage_limits(v1_mount):
    if not os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB"):
        pytest.skip("no 2MB huge pages")
    path = f"{v1_mount}/{unique()}"
    m = V1Manager({"hugetlb": path})
    m.create()
    try:
        m.update(typed({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 20}]}))
        assert fileio.read(f"{path}/hugetlb.2MB.limit_in_bytes") == str(4 << 20)
        assert m.stats()["hugetlb"]["2MB"] == {"failcnt": 0}
    finally:
        m.destroy(kill=True)
    assert not os.path.exists(path)
