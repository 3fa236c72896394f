"""Soak (issue 18): bench/soak.py's three loops, short by default, whole with PYRUNC_SOAK=1 (1000
create/start/wait/delete cycles, 1000 execs into one container, 200 builds). Before and after each
loop the counts of mounts, cgroups, the caller's fds, state dirs, veths, IPAM leases, temp dirs and
the exec'd container's processes are equal, and the runtime's peak RSS over the last tenth of the
loop is no larger than over the first (+5%, +2 MiB for the allocator's noise). pyrunc only here:
bench/soak.sh runs runc beside it for the figures of docs/RELIABILITY.md.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys

import pytest
from rellib import SOAK

_SPEC = importlib.util.spec_from_file_location(
    "soak", os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))), "bench", "soak.py"))
soak = importlib.util.module_from_spec(_SPEC)
sys.modules["soak"] = soak  # dataclasses look their module up
_SPEC.loader.exec_module(soak)  # type: ignore[union-attr]

SIZES = {"cycles": 1000, "execs": 1000, "builds": 200} if SOAK else {"cycles": 25, "execs": 25, "builds": 4}


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    if not os.path.exists(soak.BUSYBOX):
        pytest.skip("busybox-static is not installed")
    if not os.access(soak.GNU_TIME, os.X_OK):
        pytest.skip(f"{soak.GNU_TIME} (Debian's time package) is not installed: no per-command peak RSS")
    work = str(tmp_path_factory.mktemp("soak"))
    yield soak.Soak(work, network="bridge")
    shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("loop", ["cycles", "execs", "builds"])
def test_soak(runner, loop: str) -> None:
    result = getattr(runner, loop)(SIZES[loop])
    soak.settle(runner, result)
    print(soak.report(result))
    assert not result.leaks(), soak.report(result)
    first, last = result.series["pyrunc"].rss_ends()
    assert last <= first * 1.05 + 2048, f"peak RSS grew: {first} -> {last} KiB\n{soak.report(result)}"
