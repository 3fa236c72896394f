"""pyrunc SIGKILLed at every step of create, start, run, exec and delete (issue 18).

Each case arms the test-only fault hook (pyrunc/faults.py) at one step of one verb, so pyrunc dies
there as under `kill -9`. Then, for every step:
- `pyrunc list` shows the container (whatever its status: every step lies after create claimed the
  state dir and before delete removed it), and `state` agrees;
- `start`, what a client retries, ends: it succeeds exactly when the container shows as created;
- `delete -f` succeeds and nothing is left: no process (the container's, an exec'd one, create's
  forks), no cgroup, no mount under the bundle, no state dir or staging entry, and in the `net`
  variant (pybuild's bridge network made by a createRuntime hook, removed by a poststop hook, as
  `pybuild bundle -p` writes them) no veth, no IPAM lease, no bridge;
- the same ID is created again, and deleted cleanly.
tests/security/test_killed_create.py kills create at every syscall with strace; this file kills each
verb at its named steps, through the hook the code carries.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import tempfile
import time
import uuid

import pytest
from rellib import fault_env, killed, pids_with
from testlib import PYRUNC, Bundle

from pybuild.net.hook import hook_config
from pybuild.net.model import NetSettings, link_name
from pybuild.net.plumbing import NetRequest, teardown
from pyrunc.faults import STEPS

# the verb that runs the step, and what runs before it (a created or a running container)
CASES = {
    "create.claimed": "create", "create.cgroups": "create", "create.fifo": "create", "create.init-pid": "create",
    "create.ready": "create", "create.saved": "create", "create.detached": "create",
    "start.locked": "start", "start.released": "start", "start.running": "start",
    "run.started": "run", "run.exited": "run",
    "exec.spawned": "exec", "exec.running": "exec",
    "delete.stopped": "delete", "delete.cgroups": "delete", "delete.hooks-run": "delete",
}


def _run(root: str, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """stdio in files: a created container's init keeps what it inherited open."""
    full = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        res = subprocess.run([PYRUNC, "--root", root, *args], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             env=full, timeout=timeout)
        out.seek(0)
        err.seek(0)
        res.stdout, res.stderr = out.read().decode(), err.read().decode()
    return res


def _leftovers(root: str, bundle: Bundle, cid: str, marker: str, net: NetSettings | None = None) -> list[str]:
    left = [f"pid {p}" for p in pids_with(marker) + pids_with(f" {cid}")]
    if net is not None:
        left += [f"link {n}" for n in (link_name(cid), net.bridge) if os.path.exists(f"/sys/class/net/{n}")]
        leases = os.path.join(net.state_dir, net.bridge)
        left += [f"lease {n}" for n in (os.listdir(leases) if os.path.isdir(leases) else ()) if not n.startswith(".")]
    left += glob.glob(f"/sys/fs/cgroup/*/{cid}") + glob.glob(f"/sys/fs/cgroup/*/*/{cid}")
    if os.path.lexists(os.path.join(root, cid)):
        left.append("state dir")
    staging = os.path.join(root, "~new")
    if os.path.isdir(staging) and os.listdir(staging):
        left.append(f"staging {os.listdir(staging)}")
    with open("/proc/self/mountinfo") as fh:
        left += [f"mount {line.split()[4]}" for line in fh if bundle.path in line.split()[4]]
    return left


def _settled(root: str, bundle: Bundle, cid: str, marker: str, net: NetSettings | None = None,
             timeout: float = 10) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := _leftovers(root, bundle, cid, marker, net)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture(params=[False, True], ids=["plain", "net"])
def setup(request, tmp_path, busybox_rootfs):
    marker = f"sleep {100000 + uuid.uuid4().int % 800000}"
    bundle = Bundle(str(tmp_path / "bundle"), busybox_rootfs)
    bundle.config["process"]["args"] = ["sh", "-c", f"{marker}; true"]
    net = None
    if request.param:
        net = NetSettings(bridge=f"pbf{uuid.uuid4().hex[:8]}", state_dir=str(tmp_path / "net"))
        bundle.config["hooks"] = hook_config(net)
    bundle.write()
    root = str(tmp_path / "state")
    yield root, bundle, marker, net
    for cid in os.listdir(root) if os.path.isdir(root) else ():
        _run(root, "delete", "-f", cid)
    if net is not None and os.path.exists(f"/sys/class/net/{net.bridge}"):  # a failed case's
        teardown(NetRequest("", net.bridge, state_dir=net.state_dir))


@pytest.mark.parametrize("step", sorted(CASES))
def test_pyrunc_killed_at(setup, step: str) -> None:
    root, bundle, marker, net = setup
    verb = CASES[step]
    cid = f"t-{uuid.uuid4().hex[:10]}"
    env = fault_env(step)
    if verb == "create":
        res = _run(root, "create", "-b", bundle.path, cid, env=env)
    elif verb == "run":
        if step == "run.exited":
            bundle.config["process"]["args"] = ["true"]
            bundle.write()
        res = _run(root, "run", "-b", bundle.path, cid, env=env)
    else:
        assert _run(root, "create", "-b", bundle.path, cid).returncode == 0
        if verb in ("exec", "delete"):
            assert _run(root, "start", cid).returncode == 0
        if verb == "start":
            res = _run(root, "start", cid, env=env)
        elif verb == "exec":
            res = _run(root, "exec", cid, "sh", "-c", f"{marker}1", env=env)
        else:
            res = _run(root, "delete", "-f", cid, env=env)
    assert killed(res), f"{step}: not killed (rc {res.returncode}): {res.stderr}"

    listed = _run(root, "list", "--format", "json")
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    shown = {c["id"]: c["status"] for c in json.loads(listed.stdout or "null") or []}
    # every step lies after create claimed the state dir and before delete removes it
    assert cid in shown, f"{step}: list does not show the container: {shown}"
    state = _run(root, "state", cid)
    assert state.returncode == 0 and json.loads(state.stdout)["status"] == shown[cid], state.stderr
    # what a client retries next: `start` ends (a killed start once left a status that made it wait
    # forever), and succeeds exactly when the container is created
    retry = _run(root, "start", cid, timeout=20)
    assert (retry.returncode == 0) == (shown[cid] == "created"), f"{step}: {shown[cid]}: {retry.stderr}"
    assert "Traceback" not in retry.stderr
    delete = _run(root, "delete", "-f", cid)
    assert delete.returncode == 0, f"{step}: delete -f: {delete.stderr}"
    left = _settled(root, bundle, cid, marker, net)
    assert not left, f"{step}: left after delete -f: {left}"

    again = _run(root, "create", "-b", bundle.path, cid)
    assert again.returncode == 0, f"{step}: the same ID cannot be created again: {again.stderr}"
    if net is not None:  # the hook did make the network that the checks above found gone
        assert os.path.exists(f"/sys/class/net/{link_name(cid)}"), f"{step}: no veth after create"
    assert _run(root, "delete", "-f", cid).returncode == 0
    assert not _settled(root, bundle, cid, marker, net), step


def test_every_pyrunc_step_is_exercised() -> None:
    assert {s for s in STEPS if s.split(".")[0] in ("create", "start", "run", "exec", "delete")} == set(CASES)
