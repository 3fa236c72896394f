"""pause/resume, update, events, ps, kill --all and cgroup limits through the
CLI, on a busybox container, with runc on the same bundle as the oracle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.isdir("/sys/fs/cgroup/pids")
                                or os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                                reason="needs root and this host's cgroup v1 controllers")


@pytest.fixture
def cgpath() -> str:
    return f"/pyrunc-test-{uuid.uuid4().hex[:8]}"


def _start(runtime, bundle, cid, cgpath, args, resources=None):
    bundle.config["linux"]["cgroupsPath"] = cgpath
    if resources:
        bundle.config["linux"]["resources"] = resources
    bundle.set_args(*args)
    runtime.ids.add(cid)
    # detached: the container keeps its stdio, so no pipes (they would never hit EOF)
    code = subprocess.run([runtime.binary, "--root", runtime.root, "run", "-d", "-b", bundle.path, cid],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=30).returncode
    assert code == 0, f"{runtime.name} run -d failed with {code}"


def _status(runtime, cid) -> str:
    return json.loads(runtime("state", cid, check=True).stdout)["status"]


def _err(proc) -> str:
    text = proc.stderr.decode().strip()
    if text.startswith("time="):  # runc's logrus line: msg="..."
        text = text.split('msg="', 1)[1].rsplit('"', 1)[0]
    return text.removeprefix("pyrunc: ")


def test_pause_resume(runtime, bundle, cid, cgpath):
    _start(runtime, bundle, cid, cgpath, ["sleep", "100"])
    runtime("pause", cid, check=True)
    assert _status(runtime, cid) == "paused"
    assert open(f"/sys/fs/cgroup/freezer{cgpath}/freezer.state").read().strip() == "FROZEN"
    again = runtime("pause", cid)
    assert again.returncode == 1 and _err(again) == "container not running"
    runtime("resume", cid, check=True)
    assert _status(runtime, cid) == "running"
    again = runtime("resume", cid)
    assert again.returncode == 1 and _err(again) == "container not paused"
    runtime("kill", cid, "KILL", check=True)


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


def test_events_stats_shape(runtime, bundle, cid, cgpath):
    _start(runtime, bundle, cid, cgpath, ["sleep", "100"], {"pids": {"limit": 50}, "memory": {"limit": 64 << 20}})
    out = runtime("events", "--stats", cid, check=True).stdout.decode()
    event = json.loads(out)
    assert event["type"] == "stats" and event["id"] == cid
    data = event["data"]
    assert list(data) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
                          "network_interfaces"]
    assert data["pids"] == {"current": 1, "limit": 50}
    assert data["memory"]["usage"]["limit"] == 64 << 20
    assert set(data["memory"]) >= {"usage", "swap", "kernel", "kernelTCP", "raw"}
    assert set(data["cpu"]["usage"]) >= {"kernel", "user"}
    runtime("kill", cid, "KILL", check=True)


def test_events_stream_reports_oom(runtime, bundle, cid, cgpath):
    script = "sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 100"
    _start(runtime, bundle, cid, cgpath, ["sh", "-c", script],
           {"memory": {"limit": 16 << 20, "swap": 16 << 20}})
    proc = subprocess.Popen([runtime.binary, "--root", runtime.root, "events", "--interval", "1s", cid],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(json.loads(line))
            if any(e["type"] == "oom" for e in seen):
                break
        assert {"type": "oom", "id": cid} in seen
        assert any(e["type"] == "stats" for e in seen) or len(seen) >= 1
    finally:
        proc.kill()
        proc.wait()
        runtime("kill", cid, "KILL")


def test_ps(runtime, bundle, cid, cgpath):
    _start(runtime, bundle, cid, cgpath, ["sleep", "100"])
    pid = json.loads(runtime("state", cid, check=True).stdout)["pid"]
    assert json.loads(runtime("ps", "-f", "json", cid, check=True).stdout) == [pid]
    table = runtime("ps", cid, check=True).stdout.decode().splitlines()
    assert table[0].split()[:2] == ["UID", "PID"] and len(table) == 2 and str(pid) in table[1].split()
    custom = runtime("ps", cid, "-o", "pid,comm", check=True).stdout.decode().split()
    assert custom == ["PID", "COMMAND", str(pid), "sleep"]
    runtime("kill", cid, "KILL", check=True)


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


def _shape(value, depth=0):
    """The key tree of a stats object (values and memory.raw's keys dropped)."""
    if isinstance(value, dict):
        return {k: (None if k == "raw" else _shape(v, depth + 1)) for k, v in value.items()}
    if isinstance(value, list):
        return ["list"]
    return type(value).__name__


@pytest.mark.peer
def test_events_stats_same_shape_as_runc(pyrunc, bundle, cid, cgpath, tmp_path):
    import shutil

    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    resources = {"pids": {"limit": 50}, "memory": {"limit": 64 << 20}}
    shapes = {}
    runc_root = str(tmp_path / "runc-root")
    for name in ("pyrunc", "runc"):
        binary = pyrunc.binary if name == "pyrunc" else shutil.which("runc")
        root = pyrunc.root if name == "pyrunc" else runc_root
        ident = f"{cid}-{name}"
        bundle.config["linux"]["cgroupsPath"] = f"{cgpath}-{name}"
        bundle.config["linux"]["resources"] = resources
        bundle.set_args("sleep", "100")
        try:
            subprocess.run([binary, "--root", root, "run", "-d", "-b", bundle.path, ident], check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=30)
            out = subprocess.run([binary, "--root", root, "events", "--stats", ident], check=True,
                                 capture_output=True, timeout=30).stdout
            shapes[name] = _shape(json.loads(out))
        finally:
            subprocess.run([binary, "--root", root, "delete", "-f", ident], capture_output=True, timeout=30)
    assert shapes["pyrunc"] == shapes["runc"]


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
