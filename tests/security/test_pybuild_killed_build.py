"""Issue 11 finding 9: a SIGKILLed `pybuild build` left its RUN container running until the next
build. Now the build's watcher (pybuild/sandbox.py) deletes its containers the moment it dies and
each runtime has a parent-death signal: right after the kill, no process of the step is left, and
no cgroup, runtime state, temp dir or mount. Variants: pyrunc and runc, a container that ignores
SIGTERM, a kill of the whole process group, a kill during a COPY (no container), and a build that
ends normally (the watcher must then do nothing and leave no process behind).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest
from pbsec import busybox_tar, pb, write_context  # noqa: F401


def _pids_with(marker: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if marker.encode() in fh.read().replace(b"\0", b" "):
                    out.append(int(entry))
        except OSError:
            continue
    return out


def _start(pb, ctx: str, runtime: str, new_session: bool = True) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pybuild", "--root", pb.root, "--runtime", runtime, "build",
                             "--progress", "plain", ctx], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=new_session)


def _wait_for(proc: subprocess.Popen, line_start: str, timeout: float = 90) -> None:
    """Until a progress line starts with `line_start` (the step's own output, not its STEP line)."""
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen += line
        if line.startswith(line_start):
            return
    raise AssertionError(f"never saw {line_start!r}: {seen[-2000:]}")


def _leftovers(pb, pid: int, marker: str) -> dict[str, list]:
    tmp = os.path.join(pb.root, "tmp")
    with open("/proc/self/mountinfo") as fh:
        mounts = [line.split()[4] for line in fh if pb.root in line]
    return {"processes": _pids_with(marker), "tmp": os.listdir(tmp) if os.path.isdir(tmp) else [],
            "cgroups": glob.glob(f"/sys/fs/cgroup/*/*/pybuild-{pid}-*") + glob.glob(f"/sys/fs/cgroup/*/pybuild-{pid}-*"),
            "mounts": mounts}


def _settle(pb, pid: int, marker: str, seconds: float = 10) -> dict[str, list]:
    deadline = time.monotonic() + seconds
    left = _leftovers(pb, pid, marker)
    while any(left.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _leftovers(pb, pid, marker)
    return left


@pytest.mark.parametrize("runtime", ["pyrunc", "runc"])
@pytest.mark.parametrize("group", [False, True], ids=["pid", "group"])
def test_sigkilled_build_takes_its_container_with_it(pb, tmp_path, runtime, group):
    if runtime != "pyrunc" and not shutil.which(runtime):
        pytest.skip(f"{runtime} is not installed")
    marker = f"sleep {4000 + int(uuid.uuid4().int % 999)}"
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": (
        "FROM busybox\n"
        f"RUN trap '' TERM INT HUP; echo started; {marker}; echo never\n")})
    proc = _start(pb, ctx, runtime)
    _wait_for(proc, "started")
    assert _pids_with(marker), "the step's process is not running"
    if group:
        os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    left = _settle(pb, proc.pid, marker)
    assert not any(left.values()), f"left behind by the killed build: {left}"


def test_sigkill_during_a_copy_and_a_normal_end_leave_nothing(pb, tmp_path):
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": "FROM busybox\nCOPY big /big\nRUN echo started && sleep 3\n"})
    with open(os.path.join(ctx, "big"), "wb") as fh:
        fh.write(os.urandom(64 << 20))
    proc = _start(pb, ctx, "pyrunc")
    _wait_for(proc, "[stage 1/1] STEP 2/3: COPY big")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not any(_settle(pb, proc.pid, "no-such-marker").values())
    # a build that ends normally: its watcher exits with it
    proc = _start(pb, ctx, "pyrunc")
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-2000:]
    assert not _pids_with(f"--root {pb.root}"), "a process of the finished build is still running"
