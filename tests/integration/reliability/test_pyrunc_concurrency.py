"""pyrunc under concurrency (issue 18), the way orchestrators call it: retries, races, many at once.

- 16 `run`s of distinct IDs at once: all succeed with their own output.
- 8 `create`s of one ID at once: exactly one wins; the others say the ID exists, in one line.
- `delete -f` racing `start`, and racing `exec`s: whatever wins, every command ends with success or one
  line, no process of the container (nor of an exec) outlives the delete, nothing is left.
- `kill` racing the container's own exit: success or one line, never a hang; delete then works.
After each race: no state dir, no cgroup, no process with the test's marker.
"""

from __future__ import annotations

import glob
import os
import subprocess
import threading
import time
import uuid

import pytest
from rellib import pids_with
from testlib import PYRUNC, Bundle


@pytest.fixture
def root(tmp_path) -> str:
    return str(tmp_path / "state")


def _cmd(root: str, *args: str) -> list[str]:
    return [PYRUNC, "--root", root, *args]


def _run(root: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """stdio in files: a created container's init keeps what it inherited open."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        res = subprocess.run(_cmd(root, *args), stdout=out, stderr=err, stdin=subprocess.DEVNULL, timeout=timeout)
        out.seek(0)
        err.seek(0)
        res.stdout, res.stderr = out.read().decode(), err.read().decode()
    return res


def _one_line(res: subprocess.CompletedProcess, where: str) -> None:
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert "Traceback" not in res.stderr and len(lines) == 1 and lines[0].startswith("pyrunc: "), \
        f"{where}: rc {res.returncode}: {res.stderr}"


def _nothing_left(root: str, cid: str, marker: str = "") -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = glob.glob(f"/sys/fs/cgroup/*/{cid}") + glob.glob(f"/sys/fs/cgroup/*/*/{cid}")
        left += [cid] if os.path.lexists(os.path.join(root, cid)) else []
        left += [f"pid {p}" for p in pids_with(marker)] if marker else []
        if not left:
            return
        time.sleep(0.05)
    raise AssertionError(f"left behind: {left}")


def _marker() -> str:
    """A command line no other test on this machine runs (`sleep N` with a random N)."""
    return f"sleep {100000 + uuid.uuid4().int % 800000}"


def _bundle(tmp_path, busybox_rootfs, *args: str) -> Bundle:
    b = Bundle(str(tmp_path / f"bundle-{uuid.uuid4().hex[:6]}"), busybox_rootfs)
    b.config["process"]["args"] = list(args)
    return b.write()


def _parallel(commands: list[list[str]], timeout: float = 120) -> list[subprocess.CompletedProcess]:
    results: list[subprocess.CompletedProcess | None] = [None] * len(commands)

    def one(i: int) -> None:
        results[i] = _run(*commands[i], timeout=timeout)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(commands))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results  # type: ignore[return-value]


def test_16_parallel_runs(root, tmp_path, busybox_rootfs) -> None:
    b = _bundle(tmp_path, busybox_rootfs, "sh", "-c", "echo $HOSTNAME-ran")
    ids = [f"t-{uuid.uuid4().hex[:10]}" for _ in range(16)]
    results = _parallel([[root, "run", "-b", b.path, cid] for cid in ids])
    for cid, res in zip(ids, results):
        assert res.returncode == 0, f"{cid}: {res.stderr}"
        assert res.stdout.strip().endswith("-ran"), res.stdout
    for cid in ids:
        _nothing_left(root, cid)


def test_8_parallel_creates_of_one_id(root, tmp_path, busybox_rootfs) -> None:
    marker = _marker()
    b = _bundle(tmp_path, busybox_rootfs, *marker.split())
    for round_ in range(3):
        cid = f"t-{uuid.uuid4().hex[:10]}"
        results = _parallel([[root, "create", "-b", b.path, cid] for _ in range(8)])
        winners = [r for r in results if r.returncode == 0]
        assert len(winners) == 1, f"round {round_}: {[(r.returncode, r.stderr) for r in results]}"
        for r in results:
            if r.returncode:
                _one_line(r, f"round {round_}")
                assert "exists" in r.stderr, r.stderr
        state = _run(root, "state", cid)
        assert state.returncode == 0 and '"created"' in state.stdout, state.stderr
        assert _run(root, "delete", "-f", cid).returncode == 0
        _nothing_left(root, cid, marker)


@pytest.mark.parametrize("round_", range(6))
def test_delete_racing_start(root, tmp_path, busybox_rootfs, round_: int) -> None:
    marker = _marker()
    b = _bundle(tmp_path, busybox_rootfs, "sh", "-c", marker)
    cid = f"t-{uuid.uuid4().hex[:10]}"
    assert _run(root, "create", "-b", b.path, cid).returncode == 0
    delay = round_ * 0.004
    start = subprocess.Popen(_cmd(root, "start", cid), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    delete = _run(root, "delete", "-f", cid)
    _, err = start.communicate(timeout=60)
    assert delete.returncode == 0, delete.stderr
    if start.returncode:
        _one_line(subprocess.CompletedProcess(start.args, start.returncode, "", err), "start")
    _nothing_left(root, cid, marker)


@pytest.mark.parametrize("round_", range(4))
def test_delete_racing_execs(root, tmp_path, busybox_rootfs, round_: int) -> None:
    marker = _marker()
    b = _bundle(tmp_path, busybox_rootfs, "sh", "-c", marker)
    cid = f"t-{uuid.uuid4().hex[:10]}"
    assert _run(root, "run", "-d", "-b", b.path, cid).returncode == 0
    execs = [subprocess.Popen(_cmd(root, "exec", cid, "sh", "-c", f"{marker}1"), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    time.sleep(0.05 * round_)
    delete = _run(root, "delete", "-f", cid)
    assert delete.returncode == 0, delete.stderr
    for p in execs:
        _, err = p.communicate(timeout=60)
        if p.returncode not in (0, 137):  # 137: the exec'd process was killed with its container
            _one_line(subprocess.CompletedProcess(p.args, p.returncode, "", err), "exec")
    _nothing_left(root, cid, marker)


def test_kill_racing_exit(root, tmp_path, busybox_rootfs) -> None:
    b = _bundle(tmp_path, busybox_rootfs, "sh", "-c", "sleep 0.1")
    outcomes: dict[str, int] = {}
    for round_ in range(12):
        cid = f"t-{uuid.uuid4().hex[:10]}"
        assert _run(root, "run", "-d", "-b", b.path, cid).returncode == 0
        # From at once (the container surely runs) to well after its own exit (surely gone), so
        # both outcomes come whatever the machine's speed, with the middle rounds racing the exit.
        time.sleep(round_ * 0.02)
        kill = _run(root, "kill", cid, "TERM", timeout=30)
        if kill.returncode:
            _one_line(kill, f"kill, round {round_}")
        outcomes["killed" if kill.returncode == 0 else "refused"] = outcomes.get(
            "killed" if kill.returncode == 0 else "refused", 0) + 1
        deadline = time.monotonic() + 10
        while '"stopped"' not in _run(root, "state", cid).stdout and time.monotonic() < deadline:
            time.sleep(0.02)
        delete = _run(root, "delete", cid)
        assert delete.returncode == 0, delete.stderr
        _nothing_left(root, cid)
    assert outcomes.get("killed") and outcomes.get("refused"), f"the kills missed the race: {outcomes}"
