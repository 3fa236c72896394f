"""Shared fixtures: markers, busybox bundles, the leak guard.

The leak guard (DESIGN §7) runs around every test under tests/integration: a test that leaves a mount, a cgroup, a network namespace, a
veth or a state dir behind fails, and the leftovers are removed so the next
test starts clean.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import uuid

import pytest

import testlib
from testlib import BUSYBOX, Bundle, make_busybox_rootfs, runtime_fixture
DEFAULT_ROOT = "/run/pyrunc"


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = str(item.fspath)
        if "/integration/" in path or "/security/" in path:
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.root)


# Mount points made once per boot by the system's tools and kept on purpose: iproute2 makes
# /run/netns a shared bind mount the first time anyone (a test, podman) names a netns. Whichever
# test comes first after a boot would otherwise be blamed for it.
_PER_BOOT_MOUNTS = frozenset({"/run/netns"})


def _mounts() -> set[str]:
    out = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            out.add(parts[4])
    return out - _PER_BOOT_MOUNTS


def _cgroup_dirs() -> set[str]:
    found = set()
    base = "/sys/fs/cgroup"
    for ctl in os.listdir(base):
        top = os.path.join(base, ctl)
        for name in ("pyrunc", "pybuild"):
            d = os.path.join(top, name)
            if os.path.isdir(d):
                for sub in os.listdir(d):
                    if os.path.isdir(os.path.join(d, sub)):
                        found.add(os.path.join(d, sub))
    return found


def _state_dirs() -> set[str]:
    """Containers' state dirs. Names starting with @ are the runtime's own (the compiled
    seccomp filter cache, made by the first container that has a profile and kept): no
    container ID can take that name."""
    try:
        return {os.path.join(DEFAULT_ROOT, n) for n in os.listdir(DEFAULT_ROOT) if not n.startswith("@")}
    except FileNotFoundError:
        return set()


def _links() -> set[str]:
    """veth and bridge links this project names (pybuild's networking, tests);
    podman's own podman0/vethN are podman's business."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line.strip()}
    return {n for n in names if n.startswith(("pyrunc", "pybuild", "pb", "veth-pb", "vpb"))}


def _netns() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


def _net_state() -> set[str]:
    """pybuild's NAT rules (nft tables, iptables rules and chains named pybuild*),
    IPAM leases (/run/pybuild/net/<bridge>/<address>) and runtime state of
    `pybuild run` containers (/run/pybuild/runtime/<id>)."""
    from pybuild.net.firewall import list_objects

    found = list_objects()
    base = "/run/pybuild/net"
    try:
        bridges = [d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))]
    except FileNotFoundError:
        bridges = []
    for bridge in bridges:
        with contextlib.suppress(FileNotFoundError):
            found |= {f"lease:{bridge}/{n}" for n in os.listdir(os.path.join(base, bridge))}
    with contextlib.suppress(FileNotFoundError):
        found |= {f"runtime:{n}" for n in os.listdir("/run/pybuild/runtime")}
    return found


def snapshot() -> dict[str, set[str]]:
    return {"mounts": _mounts(), "cgroups": _cgroup_dirs(), "state": _state_dirs(),
            "links": _links(), "netns": _netns(), "net": _net_state()}


def _cleanup(kind: str, items: set[str], mine: str) -> None:
    """Only mounts under the test's own temp dir are undone here: anything else
    (a state dir, a cgroup, a link) may belong to another run on this machine,
    so it is reported, never removed."""
    if kind != "mounts":
        return
    for item in sorted(items, key=len, reverse=True):
        if item.startswith(mine):
            subprocess.run(["umount", "-l", item], capture_output=True)


# PYRUNC_TEST_SHARED_HOST=1: other test runs share this machine (engineers working side by
# side). Their containers come and go while a test runs, so a new item is only counted
# once it has stayed for SHARED_GRACE seconds and is not in use by a live process; the
# default (CI, a lone run) counts every new item at once.
SHARED_HOST = os.environ.get("PYRUNC_TEST_SHARED_HOST") == "1"
SHARED_GRACE = 15.0


def _in_use(kind: str, item: str) -> bool:
    """Whether a leftover belongs to something still running (another run's container)."""
    try:
        if kind == "cgroups":
            with open(os.path.join(item, "cgroup.procs")) as f:
                return bool(f.read().strip())
        if kind == "state":
            import json

            with open(os.path.join(item, "state.json")) as f:
                pid = json.load(f).get("pid") or 0
            return pid > 0 and os.path.exists(f"/proc/{pid}")
        if kind == "net" and item.startswith("runtime:"):
            return _in_use("state", os.path.join("/run/pybuild/runtime", item.split(":", 1)[1]))
        if kind in ("links", "net"):
            return _net_in_use(item)
    except (OSError, ValueError):
        return False
    return False


def _net_in_use(item: str) -> bool:
    """pybuild's network objects of a container that still runs: its lease's veth exists (a
    veth lives only as long as a process holds its namespace; pybuild never pins one)."""
    import hashlib
    import json

    live = set()
    base = "/run/pybuild/net"
    for bridge in os.listdir(base) if os.path.isdir(base) else ():
        d = os.path.join(base, bridge)
        for name in os.listdir(d) if os.path.isdir(d) else ():
            with contextlib.suppress(OSError, ValueError):
                with open(os.path.join(d, name)) as f:
                    cid = json.load(f)["id"]
                h = hashlib.sha256(cid.encode()).hexdigest()[:12]
                if os.path.exists(f"/sys/class/net/vpb{h}"):
                    live |= {bridge, f"vpb{h}", f"lease:{bridge}/{name}", f"nft:pybuild-{h}", f"nft:pybuild-{bridge}"}
    if item.startswith("iptables:"):
        return any(name in item for name in live)
    return item in live


def _settle(leaks: dict[str, set[str]]) -> dict[str, set[str]]:
    import time

    deadline = time.monotonic() + SHARED_GRACE
    while True:
        now = snapshot()
        leaks = {k: {i for i in v if i in now[k] and not _in_use(k, i)} for k, v in leaks.items()}
        leaks = {k: v for k, v in leaks.items() if v}
        if not leaks or time.monotonic() > deadline:
            return leaks
        time.sleep(0.5)


@pytest.fixture(autouse=True)
def leak_guard(request):
    """Around every test under tests/integration. Not under tests/security: those run
    hostile bundles with exact checks of their own (tests/security/conftest.py: H1 no new
    host mount, H5 no state or cgroup of the test's containers left)."""
    path = str(request.node.fspath)
    if "/integration/" not in path:
        yield
        return
    mine = str(request.getfixturevalue("tmp_path"))
    before = snapshot()
    yield
    after = snapshot()
    leaks = {k: after[k] - before[k] for k in after if after[k] - before[k]}
    # Other work on this machine in its own temp dirs is not this test's doing.
    if "mounts" in leaks:
        leaks["mounts"] = {m for m in leaks["mounts"] if not m.startswith("/tmp/") or m.startswith(mine)}
    leaks = {k: v for k, v in leaks.items() if v}
    if leaks and SHARED_HOST:
        leaks = _settle(leaks)
    for kind, items in leaks.items():
        _cleanup(kind, items, mine)
    if leaks:
        pytest.fail(f"test left behind: {leaks}")


# ---------------------------------------------------------------- bundles
@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory) -> str:
    """A template rootfs: busybox-static with its applets as symlinks."""
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed")
    return make_busybox_rootfs(
        str(tmp_path_factory.mktemp("busybox") / "rootfs"), ("proc", "sys", "dev", "etc", "tmp", "root"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "root:x:0:\nnogroup:x:65534:\n")


@pytest.fixture
def bundle(tmp_path, busybox_rootfs) -> Bundle:
    b = Bundle(str(tmp_path / "bundle"), busybox_rootfs)
    os.makedirs(b.path, exist_ok=True)
    return b.write()


@pytest.fixture
def cid() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


class Runtime(testlib.Runtime):
    """Runs a runc-compatible CLI with its own --root (bytes out), and cleans up after."""

    def __call__(self, *args: str, check: bool = False, input: bytes | None = None,
                 timeout: float = 60, cwd: str | None = None) -> subprocess.CompletedProcess:
        cmd = self.cmd(*args)
        for a in args:
            if a.startswith("t-"):
                self.ids.add(a)
        # Files, not pipes: a created container's init inherits stdout/stderr and
        # keeps them open until it exits, so a pipe would never reach EOF.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(cmd, stdout=out, stderr=err, input=input, timeout=timeout, cwd=cwd)
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = out.read(), err.read()
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} -> {proc.returncode}\n{proc.stderr.decode()}")
        return proc


@pytest.fixture
def pyrunc(request, tmp_path):
    yield from runtime_fixture(request, tmp_path, "pyrunc", Runtime)


@pytest.fixture(params=["pyrunc", pytest.param("runc", marks=pytest.mark.peer)])
def runtime(request, tmp_path):
    """The same test under pyrunc and under runc as the oracle."""
    yield from runtime_fixture(request, tmp_path, request.param, Runtime)
