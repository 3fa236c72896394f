"""Issue 11 finding 4: `linux.cgroupsPath` naming a root or a foreign cgroup.

`/`, `//`, `/x/../..` or a relative path while the runtime sits at a
hierarchy's root resolve to the root cgroup: joining it means no limits, and
destroying it (runc 1.1 removes the path recursively) removes every empty
cgroup of the host and, with a shared pid namespace, kills every process. A
path naming an existing cgroup must be joined as runc does (with its warning
when it holds processes), but delete must remove only what the container
made: not the cgroup, not its pre-existing children, not its processes.

runc 1.1.5 is the oracle where it is safe to run: it is never run with a root
path here (it would empty the host's cgroup tree); where it removes a foreign
child or kills a foreign process, the case is a strict xfail (oracle gap).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import pytest

ROOT_PATHS = ["/", "//", "/.", "/x/..", "/x/../..", "/../..", "/./x/../"]
RELATIVE_ROOT_PATHS = [".", "..", "a/../..", "./"]


def hierarchies() -> dict[str, str]:
    """Every cgroup mount point of this host: {mount: fstype}."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype = right.split()[0]
            if fstype in ("cgroup", "cgroup2"):
                out[left.split()[4]] = fstype
    return out


def _own_cgroup_is_root_somewhere() -> bool:
    with open("/proc/self/cgroup") as f:
        return any(line.rstrip("\n").split(":", 2)[2] == "/" for line in f)


def _rmdir_tree(path: str) -> None:
    if not os.path.isdir(path):
        return
    for root, _dirs, _files in sorted(os.walk(path, topdown=False), key=lambda w: -len(w[0])):
        for _ in range(200):
            try:
                os.rmdir(root)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)


class Foreign:
    """A cgroup that is not the container's: `/<name>` in every hierarchy, with a
    pre-existing child cgroup and (optionally) a process of its own. No child in
    the v1 devices hierarchy: the kernel refuses "a" rules on a devices cgroup with
    children, so neither runtime could join it at all."""

    def __init__(self, with_process: bool) -> None:
        self.name = f"pyrunc-sec-foreign-{uuid.uuid4().hex[:8]}"
        self.dirs = [os.path.join(m, self.name) for m in hierarchies()]
        self.with_child = [d for d in self.dirs if not os.path.exists(os.path.join(os.path.dirname(d),
                                                                                   "devices.list"))]
        self.proc = None
        for d in self.dirs:
            os.makedirs(d)
        for d in self.with_child:
            os.mkdir(os.path.join(d, "child"))
        for d in self.dirs:
            if "cpuset" in d:
                for name in ("cpuset.cpus", "cpuset.mems"):
                    for where in (d, os.path.join(d, "child")):
                        with open(os.path.join(os.path.dirname(where), name)) as src:
                            value = src.read().strip()
                        with open(os.path.join(where, name), "w") as dst:
                            dst.write(value)
        if with_process:
            self.proc = subprocess.Popen(["sleep", "300"])
            for d in self.dirs:
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(self.proc.pid))

    @property
    def path(self) -> str:
        return "/" + self.name

    def children_left(self) -> list[str]:
        return [d for d in self.with_child if os.path.isdir(os.path.join(d, "child"))]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def remove(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        for d in self.dirs:
            freezer = os.path.join(d, "freezer.state")
            if os.path.exists(freezer):
                with open(freezer, "w") as f:
                    f.write("THAWED")
            _rmdir_tree(d)


@pytest.fixture
def foreign():
    made: list[Foreign] = []

    def make(with_process: bool = True) -> Foreign:
        f = Foreign(with_process)
        made.append(f)
        return f

    yield make
    for f in made:
        f.remove()


@pytest.fixture
def canaries():
    """An empty cgroup at the root of every hierarchy: what a destroy of the root would remove."""
    name = f"pyrunc-sec-canary-{uuid.uuid4().hex[:8]}"
    dirs = [os.path.join(m, name) for m in hierarchies()]
    for d in dirs:
        os.mkdir(d)
    yield dirs
    for d in dirs:
        _rmdir_tree(d)


def _run_in(rt, make_bundle, cgroups_path: str, *args: str):
    b = make_bundle()
    b.args(*args)
    b.config["linux"]["cgroupsPath"] = cgroups_path
    b.write()
    return rt.run(b)


def _state_gone(rt, cid: str) -> None:
    assert not os.path.exists(os.path.join(rt.root, cid))


@pytest.mark.parametrize("path", ROOT_PATHS + RELATIVE_ROOT_PATHS)
def test_root_cgroup_is_refused(pyrunc_rt, make_bundle, host, canaries, path: str) -> None:
    """runc 1.1.5 is not run: with this config its delete removes every empty cgroup of the host."""
    if path in RELATIVE_ROOT_PATHS and not _own_cgroup_is_root_somewhere():
        pytest.skip("the runtime's own cgroup is not a hierarchy root here")
    rt = pyrunc_rt
    b = make_bundle()
    b.args("true")
    b.config["linux"]["cgroupsPath"] = path
    b.write()
    cid = rt.new_id()
    for verb in (("run", "-b", b.path, cid), ("create", "-b", b.path, cid)):
        out = rt(*verb, stdin=subprocess.DEVNULL)
        assert out.returncode != 0
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert ".linux.cgroupsPath" in out.stderr and "root of the cgroup hierarchy" in out.stderr
        _state_gone(rt, cid)
    out = rt("delete", "-f", cid)
    assert out.returncode == 0
    assert all(os.path.isdir(d) for d in canaries), "an empty host cgroup was removed"


def _create(rt, b) -> tuple[str, str]:
    cid = rt.new_id()
    err = os.path.join(b.path, f"{cid}.stderr")
    with open(err, "w") as f:
        rc = subprocess.run(rt.cmd("create", "-b", b.path, cid), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=f, timeout=60).returncode
    text = open(err).read()
    assert rc == 0, text
    return cid, text


def _container_in(rt, b, f: Foreign, *, pid_ns: bool = True) -> tuple[str, str]:
    b.args("sleep", "100")
    b.config["linux"]["cgroupsPath"] = f.path
    if not pid_ns:
        b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "pid"]
    b.write()
    return _create(rt, b)


def test_non_empty_existing_cgroup_is_joined_with_runcs_warning(rt, make_bundle, host, foreign) -> None:
    f = foreign()
    cid, stderr = _container_in(rt, make_bundle(), f)
    assert "container's cgroup is not empty: 1 process(es) found" in stderr
    pid = rt.init_pid(cid)
    with open(f"/proc/{pid}/cgroup") as cg:
        joined = {ctl: path for _, ctl, path in (line.rstrip("\n").split(":", 2) for line in cg)}
    mounted = {ctl: path for ctl, path in joined.items() if "net_cls" not in ctl}  # not mounted here
    assert set(mounted.values()) == {f.path}, joined
    out = rt("delete", "-f", cid)
    _state_gone(rt, cid)
    assert f.alive(), "delete killed a process that is not the container's"
    assert all(os.path.isdir(d) for d in f.dirs), "delete removed a cgroup it did not create"
    if rt.name == "pyrunc":
        assert out.returncode == 0, out.stderr


def test_foreign_children_survive_delete(rt, make_bundle, host, foreign) -> None:
    rt.oracle_gap("delete removes the pre-existing children of a cgroupsPath it did not create")
    f = foreign(with_process=False)
    cid, _ = _container_in(rt, make_bundle(), f)
    out = rt("delete", "-f", cid)
    assert out.returncode == 0, out.stderr
    _state_gone(rt, cid)
    assert f.children_left() == f.with_child
    assert all(os.path.isdir(d) for d in f.dirs)


def test_foreign_children_survive_a_failed_create(rt, make_bundle, host, foreign) -> None:
    rt.oracle_gap("a failed create removes the pre-existing children of its cgroupsPath")
    f = foreign(with_process=False)
    out = _run_in(rt, make_bundle, f.path, "/no/such/binary")
    assert out.returncode != 0
    assert f.children_left() == f.with_child
    assert all(os.path.isdir(d) for d in f.dirs)


def test_shared_pid_namespace_does_not_kill_foreign_processes(rt, make_bundle, host, foreign) -> None:
    """Without a pid namespace delete sweeps the cgroup (the container's children are not
    killed with init): only a cgroup the container made may be swept."""
    rt.oracle_gap("kills every process of a pre-existing cgroupsPath when the pid namespace is shared")
    f = foreign()
    cid, _ = _container_in(rt, make_bundle(), f, pid_ns=False)
    rt("delete", "-f", cid)
    _state_gone(rt, cid)
    assert f.alive(), "delete killed a process that is not the container's"


def test_shared_pid_namespace_still_sweeps_its_own_cgroup(rt, make_bundle, host) -> None:
    b = make_bundle()
    b.sh("sleep 300 & sleep 300")
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "pid"]
    b.config["linux"]["cgroupsPath"] = f"/pyrunc-sec-own-{uuid.uuid4().hex[:8]}"
    b.write()
    cid, _ = _create(rt, b)
    out = rt("start", cid)
    assert out.returncode == 0, out.stderr
    time.sleep(0.3)
    pids = rt("ps", "--format", "json", cid)
    assert pids.returncode == 0, pids.stderr
    procs = json.loads(pids.stdout)
    assert len(procs) >= 2
    out = rt("delete", "-f", cid)
    assert out.returncode == 0, out.stderr
    time.sleep(0.1)
    for pid in procs:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert not any(os.path.exists(os.path.join(m, b.config["linux"]["cgroupsPath"].lstrip("/")))
                   for m in hierarchies())


def test_frozen_existing_cgroup_is_refused(rt, make_bundle, host, foreign) -> None:
    f = foreign(with_process=False)
    freezer = [d for d in f.dirs if os.path.exists(os.path.join(d, "freezer.state"))]
    if not freezer:
        pytest.skip("no v1 freezer here")
    with open(os.path.join(freezer[0], "freezer.state"), "w") as fs:
        fs.write("FROZEN")
    out = _run_in(rt, make_bundle, f.path, "true")
    assert out.returncode != 0
    assert "unexpectedly frozen" in out.stderr
    assert all(os.path.isdir(d) for d in f.dirs) and f.children_left() == f.with_child


def test_another_containers_cgroup(rt, make_bundle, host) -> None:
    """B names A's cgroup: deleting B leaves A, its cgroup and its processes alone."""
    path = f"/pyrunc-sec-shared-{uuid.uuid4().hex[:8]}"
    a = make_bundle("a")
    a.args("sleep", "100")
    a.config["linux"]["cgroupsPath"] = path
    a.write()
    cid_a, _ = _create(rt, a)
    b = make_bundle("b")
    b.args("sleep", "100")
    b.config["linux"]["cgroupsPath"] = path
    b.write()
    cid_b, warning = _create(rt, b)
    assert "not empty" in warning
    rt("delete", "-f", cid_b)
    _state_gone(rt, cid_b)
    state = json.loads(rt("state", cid_a).stdout)
    assert state["status"] == "created"
    assert all(os.path.isdir(os.path.join(m, path.lstrip("/"))) for m in hierarchies())
    out = rt("delete", "-f", cid_a)
    assert out.returncode == 0, out.stderr
    assert not any(os.path.exists(os.path.join(m, path.lstrip("/"))) for m in hierarchies())


@pytest.mark.skipif(not any(t == "cgroup2" for t in hierarchies().values()), reason="no cgroup2 mount")
def test_v2_manager_keeps_a_foreign_cgroup(host, foreign) -> None:
    """The same rules for the cgroup2 manager (cgroup2 is /sys/fs/cgroup/unified here)."""
    from pyrunc.cgroups.v2 import V2Manager

    mount = next(m for m, t in hierarchies().items() if t == "cgroup2")
    f = foreign()
    m = V2Manager(f.path, mount=mount)
    m.create()
    assert m.created == []
    m.destroy(kill=True)
    assert f.alive() and os.path.isdir(m.dir) and os.path.isdir(os.path.join(m.dir, "child"))
    own = V2Manager(f.path + "/mine/leaf", mount=mount)
    own.create()
    assert own.created == [os.path.join(m.dir, "mine"), os.path.join(m.dir, "mine", "leaf")]
    own.destroy(kill=True)
    assert not os.path.exists(os.path.join(m.dir, "mine")) and os.path.isdir(os.path.join(m.dir, "child"))


def test_v2_root_is_refused(host) -> None:
    from pyrunc import cgroups
    from pyrunc.errors import ConfigError

    for path in ROOT_PATHS:
        with pytest.raises(ConfigError, match="root of the cgroup hierarchy"):
            cgroups.new_manager(path, "x")
