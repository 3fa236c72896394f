"""kill --all over the cgroup, cgroup limits in config.json and their removal by delete, through the
CLI, on a busybox container, with runc on the same bundle as the oracle."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
from cgverbslib import V1_ONLY, _start, cgpath  # noqa: F401  (cgpath: a fixture)

pytestmark = V1_ONLY


def test_kill_all(runtime, bundle, cid, cgpath):
    _start(runtime, bundle, cid, cgpath, ["sh", "-c", "sleep 100 & sleep 100 & wait"])
    deadline = time.monotonic() + 5
    while len(json.loads(runtime("ps", "-f", "json", cid, check=True).stdout) or []) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    runtime("kill", "--all", cid, "KILL", check=True)
    deadline = time.monotonic() + 5
    while open(f"/sys/fs/cgroup/pids{cgpath}/cgroup.procs").read().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_limits_in_config(runtime, bundle, cid, cgpath):
    bundle.config["linux"]["cgroupsPath"] = cgpath
    bundle.config["linux"]["resources"] = {"pids": {"limit": 3}}
    bundle.set_args("sh", "-c", "for i in 1 2 3 4 5 6; do sleep 2 & done; wait; echo done")
    out = runtime("run", "-b", bundle.path, cid, timeout=30)
    assert b"can't fork" in out.stderr or b"Resource temporarily unavailable" in out.stderr
    bundle.config["linux"]["resources"] = {"memory": {"limit": 16 << 20, "swap": 16 << 20}}
    bundle.set_args("dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
    out = runtime("run", "-b", bundle.path, cid + "m", timeout=30)
    runtime.ids.add(cid + "m")
    assert out.returncode == 128 + signal.SIGKILL


def test_delete_removes_cgroups(runtime, bundle, cid, cgpath):
    _start(runtime, bundle, cid, cgpath, ["sleep", "100"])
    assert os.path.isdir(f"/sys/fs/cgroup/memory{cgpath}")
    runtime("delete", "-f", cid, check=True)
    leftovers = [c for c in os.listdir("/sys/fs/cgroup") if os.path.exists(f"/sys/fs/cgroup/{c}{cgpath}")]
    assert leftovers == []


@pytest.mark.parametrize("resources,needle", [
    ({"cpu": {"cpus": "0-63"}}, ".linux.resources.cpu.cpus"),
    ({"memory": {"limit": -5}}, ".linux.resources.memory.limit"),
    ({"unified": {"memory.high": "1"}}, ".linux.resources.unified"),
    ({"devices": [{"allow": True, "type": "x"}]}, ".linux.resources.devices[0].type"),
])
def test_bad_limits_fail_cleanly(pyrunc, bundle, cid, cgpath, resources, needle):
    bundle.config["linux"]["cgroupsPath"] = cgpath
    bundle.config["linux"]["resources"] = resources
    bundle.set_args("true")
    out = pyrunc("run", "-b", bundle.path, cid, timeout=30)
    assert out.returncode != 0
    lines = out.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
    assert [c for c in os.listdir("/sys/fs/cgroup") if os.path.exists(f"/sys/fs/cgroup/{c}{cgpath}")] == []
    assert pyrunc("state", cid).returncode != 0
