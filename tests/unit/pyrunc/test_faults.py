"""The test-only fault hook (pyrunc/faults.py) is inert unless its explicit switch is on.

- Without PYRUNC_FAULT_INJECTION=sigkill (absent, or any other value) a step named by
  PYRUNC_FAULT_AT is reached and nothing happens, and pyrunc.faults is never imported.
- With the switch, the named step (and only its N-th reach with @N) SIGKILLs the process.
- With the switch, an unknown step name is an error (status 99), never a silent pass.
- Every fault_point in the code names a step of the catalogue, and every step is placed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from pyrunc.faults import STEP_VAR, STEPS, SWITCH

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
PROBE = ("import sys\n"
         "from pybuild import fault_point\n"
         "for _ in range(3):\n"
         "    fault_point('build.tagged')\n"
         "    print('passed', flush=True)\n"
         "print('faults imported' if 'pyrunc.faults' in sys.modules else 'faults not imported')\n")


def _probe(**env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in (SWITCH, STEP_VAR)}
    full.update(env)
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=full, cwd=REPO,
                          timeout=60)


@pytest.mark.parametrize("switch", [None, "", "1", "yes", "SIGKILL", "sigkill "])
def test_inert_without_the_exact_switch(switch: str | None) -> None:
    env = {STEP_VAR: "build.tagged"}
    if switch is not None:
        env[SWITCH] = switch
    res = _probe(**env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n") == ["passed"] * 3 + ["faults not imported", ""]


def test_switch_alone_kills_nothing() -> None:
    res = _probe(**{SWITCH: "sigkill"})
    assert res.returncode == 0 and res.stdout.count("passed") == 3, res.stderr


def test_switch_and_step_kill_at_the_nth_reach() -> None:
    res = _probe(**{SWITCH: "sigkill", STEP_VAR: "build.tagged"})
    assert res.returncode == -signal.SIGKILL and res.stdout == ""
    res = _probe(**{SWITCH: "sigkill", STEP_VAR: "build.tagged@3"})
    assert res.returncode == -signal.SIGKILL and res.stdout.count("passed") == 2
    res = _probe(**{SWITCH: "sigkill", STEP_VAR: "build.locked"})  # another step: never reached
    assert res.returncode == 0 and res.stdout.count("passed") == 3


@pytest.mark.parametrize("wanted", ["build.tagge", "nosuch", "build.tagged@x"])
def test_unknown_step_is_an_error(wanted: str) -> None:
    res = _probe(**{SWITCH: "sigkill", STEP_VAR: wanted})
    assert res.returncode == 99 and "no such fault step" in res.stderr


def test_catalogue_matches_the_code() -> None:
    placed = set()
    for top in ("pyrunc", "pybuild"):
        for dirpath, _dirs, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                if name.endswith(".py") and name != "faults.py":
                    with open(os.path.join(dirpath, name)) as fh:
                        placed |= set(re.findall(r'fault_point\("([^"]+)"\)', fh.read()))
    assert placed - set(STEPS) == set(), "fault points missing from the catalogue"
    assert set(STEPS) - placed == set(), "catalogue steps placed nowhere"
