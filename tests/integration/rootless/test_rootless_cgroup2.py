"""A delegated cgroup2 subtree (issue 19): a rootless container with a relative cgroupsPath
lands inside the delegation; one outside it is refused and nothing is made. runc and crun
are the oracles.

This host is hybrid (cgroup v1 + a controller-less cgroup2 at /sys/fs/cgroup/unified), so
each run happens in a private mount namespace where /sys/fs/cgroup is that cgroup2
hierarchy alone, as on a unified host; the caller sits in `D/caller`, D owned by the user as
systemd's Delegate=yes leaves it. runc and crun put a relative path beside the caller's
cgroup (its parent, as the caller's cgroup holds processes), pyrunc below it: both inside D
(crun 1.8 resolves it from the hierarchy's root, so it is the oracle only for the refusal).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from testlib import PYRUNC

RUNTIMES = ["pyrunc", pytest.param("runc", marks=pytest.mark.peer), pytest.param("crun", marks=pytest.mark.peer)]


def _cgroup2_mount() -> str | None:
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return "/sys/fs/cgroup"
    if os.path.exists("/sys/fs/cgroup/unified/cgroup.controllers"):
        return "/sys/fs/cgroup/unified"
    return None


@pytest.fixture
def delegated(rootless_user):
    """D = a cgroup2 directory delegated to the user, with D/caller for the runtime; removed after."""
    mount = _cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup2 hierarchy on this host")
    if shutil.which("unshare") is None or shutil.which("setpriv") is None:
        pytest.skip("unshare/setpriv (util-linux) are not installed")
    u = rootless_user
    name = f"pyrt-deleg-{uuid.uuid4().hex[:8]}"
    d = os.path.join(mount, name)
    os.mkdir(d)
    try:
        for sub in ("caller",):
            os.mkdir(os.path.join(d, sub))
        for path in (d, os.path.join(d, "caller")):
            for f in ("", "cgroup.procs", "cgroup.threads", "cgroup.subtree_control"):
                os.chown(os.path.join(path, f) if f else path, u.uid, u.gid)
        yield mount, name
    finally:
        for root, dirs, _files in os.walk(d, topdown=False):
            for x in dirs:
                os.rmdir(os.path.join(root, x))
        os.rmdir(d)


def _run_in(u, mount: str, name: str, argv: list[str]) -> subprocess.CompletedProcess:
    """argv as the user, started in D/caller, with /sys/fs/cgroup the cgroup2 hierarchy alone."""
    remount = "" if mount == "/sys/fs/cgroup" else \
        "umount -R /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && "
    script = (f"{remount}echo $$ > /sys/fs/cgroup/{name}/caller/cgroup.procs && cd {u.home} && "
              f"exec setpriv --reuid={u.uid} --regid={u.gid} --clear-groups \"$@\"")
    env = ["env", "-i", *(f"{k}={v}" for k, v in u.env().items())]
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *env, *argv],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("runtime", RUNTIMES[:2])  # crun 1.8 puts a relative path below the hierarchy's root
def test_relative_cgroups_path_lands_in_the_delegation(rootless_user, delegated, runtime):
    binary = PYRUNC if runtime == "pyrunc" else shutil.which(runtime)
    if binary is None:
        pytest.skip(f"{runtime} is not installed")
    mount, name = delegated
    u = rootless_user

    def edit(c):
        c["linux"]["cgroupsPath"] = "ctr"

    b = u.bundle(f"cg2-{runtime}-{uuid.uuid4().hex[:6]}", ["cat", "/proc/self/cgroup"], edit=edit)
    p = _run_in(u, mount, name, [binary, "run", "-b", b, "cg1"])
    assert p.returncode == 0, p.stderr
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("0::"))
    assert line.startswith(f"0::/{name}/") and line.endswith("/ctr"), line
    left = [r for r, _dirs, _files in os.walk(os.path.join(mount, name))]
    assert left == [os.path.join(mount, name), os.path.join(mount, name, "caller")]  # delete removed it


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_absolute_cgroups_path_outside_the_delegation_is_refused(rootless_user, delegated, runtime):
    binary = PYRUNC if runtime == "pyrunc" else shutil.which(runtime)
    if binary is None:
        pytest.skip(f"{runtime} is not installed")
    mount, name = delegated
    u = rootless_user
    outside = f"pyrt-outside-{uuid.uuid4().hex[:8]}"

    def edit(c):
        c["linux"]["cgroupsPath"] = f"/{outside}"

    b = u.bundle(f"cg2o-{runtime}-{uuid.uuid4().hex[:6]}", ["true"], edit=edit)
    p = _run_in(u, mount, name, [binary, "run", "-b", b, "cg2"])
    assert p.returncode != 0
    assert "permission denied" in p.stderr.lower(), p.stderr
    assert not os.path.exists(os.path.join(mount, outside))
    if runtime == "pyrunc":
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("pyrunc: ")
