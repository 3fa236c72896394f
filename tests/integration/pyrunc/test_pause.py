"""pause and resume (the freezer), with runc on the same bundle as the oracle."""

from __future__ import annotations


from cgverbslib import V1_ONLY, _err, _start, _status, cgpath  # noqa: F401  (cgpath: a fixture)

pytestmark = V1_ONLY


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
