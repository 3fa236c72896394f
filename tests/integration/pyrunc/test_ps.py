"""ps: the container's processes, with runc on the same bundle as the oracle."""

from __future__ import annotations

import json
from cgverbslib import V1_ONLY, _start, cgpath  # noqa: F401  (cgpath: a fixture)

pytestmark = V1_ONLY


def test_ps(runtime, bundle, cid, cgpath):
    _start(runtime, bundle, cid, cgpath, ["sleep", "100"])
    pid = json.loads(runtime("state", cid, check=True).stdout)["pid"]
    assert json.loads(runtime("ps", "-f", "json", cid, check=True).stdout) == [pid]
    table = runtime("ps", cid, check=True).stdout.decode().splitlines()
    assert table[0].split()[:2] == ["UID", "PID"] and len(table) == 2 and str(pid) in table[1].split()
    custom = runtime("ps", cid, "-o", "pid,comm", check=True).stdout.decode().split()
    assert custom == ["PID", "COMMAND", str(pid), "sleep"]
    runtime("kill", cid, "KILL", check=True)
