"""update: live limits, refusals, bad input, with runc on the same bundle as the oracle."""

from __future__ import annotations

import json
import time
from cgverbslib import V1_ONLY, _err, _start, _status, cgpath  # noqa: F401  (cgpath: a fixture)

pytestmark = V1_ONLY


def test_update_live_and_refusals(runtime, bundle, cid, cgpath):
    _start(runtime, bundle, cid, cgpath, ["sleep", "100"], {"pids": {"limit": 100}})
    runtime("update", "--pids-limit", "7", "--memory", "64m", "--cpu-quota", "20000", "--cpu-period", "100000",
            "--cpu-share", "256", "--cpuset-cpus", "0", cid, check=True)
    assert open(f"/sys/fs/cgroup/pids{cgpath}/pids.max").read().strip() == "7"
    assert open(f"/sys/fs/cgroup/memory{cgpath}/memory.limit_in_bytes").read().strip() == str(64 << 20)
    assert open(f"/sys/fs/cgroup/cpu{cgpath}/cpu.cfs_quota_us").read().strip() == "20000"
    assert open(f"/sys/fs/cgroup/cpu{cgpath}/cpu.shares").read().strip() == "256"
    assert open(f"/sys/fs/cgroup/cpuset{cgpath}/cpuset.cpus").read().strip() == "0"
    res = json.dumps({"pids": {"limit": 9}, "memory": {"limit": 32 << 20}}).encode()
    runtime("update", "-r", "-", cid, input=res, check=True)
    assert open(f"/sys/fs/cgroup/pids{cgpath}/pids.max").read().strip() == "9"
    bad = runtime("update", "--cpuset-cpus", "0-99", cid)
    assert bad.returncode == 1
    assert open(f"/sys/fs/cgroup/pids{cgpath}/pids.max").read().strip() == "9"
    runtime("kill", cid, "KILL", check=True)
    deadline = time.monotonic() + 5
    while _status(runtime, cid) != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    stopped = runtime("update", "--pids-limit", "5", cid)
    assert stopped.returncode == 1 and _err(stopped) == "container not running"


def test_update_bad_input_is_one_line(pyrunc, bundle, cid, cgpath):
    _start(pyrunc, bundle, cid, cgpath, ["sleep", "100"])
    for args, needle in ((["--memory", "lots"], "invalid size"),
                         (["-r", "-"], ".memory.limit: -7 is out of range")):
        out = pyrunc("update", *args, cid, input=b'{"memory": {"limit": -7}}')
        assert out.returncode == 1
        lines = out.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and needle in lines[0]
    pyrunc("kill", cid, "KILL", check=True)
