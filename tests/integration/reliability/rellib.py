"""Helpers of the reliability tests: the fault hook's environment, leftovers, fsck verdicts.

    env = fault_env("build.layer-blob@2")      # for a subprocess: SIGKILL at that step
    res = pb.build(ctx, env=env); assert killed(res)
    assert_store_sound(pb)                      # fsck ok, --repair removes the garbage, fsck clean
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from pyrunc.faults import STEP_VAR, SWITCH, SWITCH_VALUE

SOAK = os.environ.get("PYRUNC_SOAK") == "1"


def fault_env(step: str) -> dict[str, str]:
    return {SWITCH: SWITCH_VALUE, STEP_VAR: step}


def killed(res: subprocess.CompletedProcess) -> bool:
    """SIGKILLed by the hook: -9 from subprocess, or 137 through a shell."""
    return res.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL)


def pids_with(needle: str) -> list[int]:
    """Processes whose command line contains `needle` (not this one)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if needle.encode() in fh.read().replace(b"\0", b" "):
                    out.append(int(entry))
        except OSError:
            continue
    return out


def store_leftovers(root: str) -> dict[str, list[str]]:
    """What a dead pybuild may leave that its watcher must take: processes naming the store (the
    command, its watcher, a runtime under its temp dir) and mounts under it. Cgroups, links and
    runtime state are counted by the leak guard around every test."""
    with open("/proc/self/mountinfo") as fh:
        mounts = [line.split()[4] for line in fh if root in line.split()[4]]
    return {"processes": pids_with(f"--root {root}") + pids_with(f"{root}/tmp/"), "mounts": mounts}


def settle(root: str, seconds: float = 15) -> dict[str, list[str]]:
    deadline = time.monotonic() + seconds
    left = store_leftovers(root)
    while any(left.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
        left = store_leftovers(root)
    return {k: v for k, v in left.items() if v}


def fsck_lines(pb, *args: str) -> list[str]:
    res = pb("fsck", *args)
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 0, f"fsck {' '.join(args)}: rc {res.returncode}\n{res.stdout}{res.stderr}"
    return res.stdout.splitlines()


def assert_store_sound(pb, where: str = "") -> list[str]:
    """fsck finds no error; --repair removes every piece of garbage; a second fsck is clean.
    Returns the garbage lines the first fsck reported."""
    first = fsck_lines(pb)
    assert not [line for line in first if line.startswith("error:")], f"{where}: {first}"
    fsck_lines(pb, "--repair")
    again = fsck_lines(pb)
    assert len(again) == 1 and again[0].endswith(": ok"), f"{where}: after --repair: {again}"
    return [line for line in first if line.startswith("garbage:")]
