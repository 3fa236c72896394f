"""events: --stats and the stream (OOM), with runc on the same bundle as the oracle."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from cgverbslib import V1_ONLY, _start, cgpath  # noqa: F401  (cgpath: a fixture)

pytestmark = V1_ONLY


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
