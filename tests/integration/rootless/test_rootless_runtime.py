"""pyrunc as an ordinary user (issue 19), each case also under runc as the oracle:
the lifecycle with the default state root, run, exec, hooks, the id maps seen from the
host, subordinate ranges through newuidmap, a network namespace with lo, and the
refusals runc makes (no user namespace, limits without a delegated cgroup, sysfs without
a network namespace), each one line and leaving nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time

import pytest

from testlib import PYRUNC

RUNTIMES = ["pyrunc", pytest.param("runc", marks=pytest.mark.peer)]


class Rt:
    """A runtime run by the rootless user, with its default state root."""

    def __init__(self, name: str, user) -> None:
        self.name, self.user = name, user
        self.binary = PYRUNC if name == "pyrunc" else shutil.which(name)
        self.root = os.path.join(user.xdg, name)  # runc's rule: $XDG_RUNTIME_DIR/<runtime>

    def __call__(self, *args: str, check: bool = True, cwd: str | None = None):
        proc = self.user.run([self.binary, *args], cwd=cwd)
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.name} {' '.join(args)} -> {proc.returncode}: {proc.stderr}")
        return proc

    def state(self, cid: str) -> dict:
        return json.loads(self("state", cid).stdout)

    def ids(self) -> list[str]:
        return [c["id"] for c in json.loads(self("list", "--format", "json").stdout or "[]") or []]


@pytest.fixture(params=RUNTIMES)
def rt(request, rootless_user):
    if request.param != "pyrunc" and shutil.which(request.param) is None:
        pytest.skip(f"{request.param} is not installed")
    r = Rt(request.param, rootless_user)
    yield r
    for cid in r.ids():
        r("delete", "-f", cid, check=False)
    assert r.ids() == []


def _bundle(user, rt, args, **kw) -> str:
    return user.bundle(f"b-{rt.name}-{os.urandom(4).hex()}", args, **kw)


def test_lifecycle_and_the_state_root(rt, rootless_user):
    b = _bundle(rootless_user, rt, ["sleep", "30"])
    rt("create", "-b", b, "c1")
    st = os.stat(rt.root)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (rootless_user.uid, 0o700 | stat.S_ISVTX)
    assert os.path.isdir(os.path.join(rt.root, "c1"))
    s = rt.state("c1")
    assert s["status"] == "created" and s["pid"] > 0
    rt("start", "c1")
    assert rt.state("c1")["status"] == "running"
    rt("kill", "c1", "KILL")
    for _ in range(100):
        if rt.state("c1")["status"] == "stopped":
            break
        time.sleep(0.02)
    assert rt.state("c1")["status"] == "stopped"
    rt("delete", "c1")
    assert not os.path.exists(os.path.join(rt.root, "c1"))


def test_run_exit_status_and_identity(rt, rootless_user):
    b = _bundle(rootless_user, rt, ["sh", "-c", "id -u; id -g; cat /proc/self/uid_map; exit 3"])
    p = rt("run", "-b", b, "r1", check=False)
    assert p.returncode == 3, p.stderr
    lines = p.stdout.split("\n")
    assert lines[:2] == ["0", "0"]
    assert lines[2].split() == ["0", str(rootless_user.uid), "1"]


def test_uid_map_seen_from_the_host_with_subordinate_ranges(rt, rootless_user):
    """More ids than the user's own: newuidmap/newgidmap map the ranges of /etc/subuid and /etc/subgid."""
    def edit(c):
        c["root"]["readonly"] = False
        for kind in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][kind].append("CAP_CHOWN")

    b = _bundle(rootless_user, rt, ["sleep", "30"], subids=True, edit=edit)
    rt("run", "-d", "-b", b, "m1")
    pid = rt.state("m1")["pid"]
    with open(f"/proc/{pid}/uid_map") as f:
        uid_map = [ln.split() for ln in f.read().strip().splitlines()]
    with open(f"/proc/{pid}/gid_map") as f:
        gid_map = [ln.split() for ln in f.read().strip().splitlines()]
    u = rootless_user
    assert uid_map == [["0", str(u.uid), "1"], ["1", str(u.subuid[0]), str(u.subuid[1])]]
    assert gid_map == [["0", str(u.gid), "1"], ["1", str(u.subgid[0]), str(u.subgid[1])]]
    with open(f"/proc/{pid}/status") as f:
        assert next(ln for ln in f if ln.startswith("Uid:")).split()[1] == str(u.uid)
    out = rt("exec", "m1", "sh", "-c", "chown 1000:1000 /tmp && stat -c %u:%g /tmp").stdout.strip()
    assert out == "1000:1000"
    assert os.stat(os.path.join(b, "rootfs", "tmp")).st_uid == u.subuid[0] + 999  # container 1000 -> host


def test_exec(rt, rootless_user):
    b = _bundle(rootless_user, rt, ["sleep", "30"])
    rt("run", "-d", "-b", b, "e1")
    p = rt("exec", "e1", "sh", "-c", "echo $$; id -u; cat /proc/1/cmdline | tr '\\0' ' '")
    pid, uid, cmd = p.stdout.split("\n")[:3]
    assert int(pid) > 1 and uid == "0" and cmd.split() == ["sleep", "30"]
    assert rt("exec", "e1", "sh", "-c", "exit 5", check=False).returncode == 5


def test_hooks_run_as_the_user(rt, rootless_user):
    """Hooks run on the host with the caller's ids, and poststop after delete."""
    u = rootless_user
    out = u.mkdir(f"hooks-{rt.name}")

    def edit(c):
        def hook(kind):
            return {"path": "/bin/sh", "args": ["sh", "-c", f"id -u >> {out}/{kind}; cat > {out}/{kind}.json"]}
        c["hooks"] = {k: [hook(k)] for k in ("createRuntime", "poststart", "poststop")}

    b = _bundle(u, rt, ["true"], edit=edit)
    rt("run", "-b", b, "h1")
    for kind in ("createRuntime", "poststart", "poststop"):
        with open(os.path.join(out, kind)) as f:
            assert f.read().strip() == str(u.uid), kind
        with open(os.path.join(out, f"{kind}.json")) as f:
            assert json.load(f)["id"] == "h1"


def test_network_namespace_with_lo(rt, rootless_user):
    def edit(c):
        c["linux"]["namespaces"].append({"type": "network"})

    b = _bundle(rootless_user, rt, ["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1; cat /sys/class/net/lo/operstate"],
                edit=edit)
    p = rt("run", "-b", b, "n1")
    assert p.stdout.split() == ["lo", "unknown"]


def test_no_user_namespace_is_refused(rt, rootless_user):
    def edit(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "user"]

    b = _bundle(rootless_user, rt, ["true"], edit=edit)
    p = rt("run", "-b", b, "u1", check=False)
    assert p.returncode != 0
    assert "rootless container requires user namespaces" in p.stderr
    assert rt.ids() == []


def test_limits_without_a_delegated_cgroup_fail_clearly(rt, rootless_user):
    """cgroups v1 here, nothing delegated: runc refuses a limit it cannot set, and so does pyrunc."""
    def edit(c):
        c["linux"]["resources"] = {"pids": {"limit": 50}}

    b = _bundle(rootless_user, rt, ["true"], edit=edit)
    p = rt("run", "-b", b, "l1", check=False)
    if p.returncode == 0:
        pytest.skip("this host delegates the pids cgroup to the user")
    assert "cannot set pids limit: container could not join or create cgroup" in p.stderr
    assert rt.ids() == []
    assert not os.path.exists(os.path.join(rt.root, "l1"))


def test_device_rules_are_not_applied(rt, rootless_user):
    """runc ignores device cgroup rules of a rootless container: the run succeeds."""
    def edit(c):
        c["linux"]["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}

    b = _bundle(rootless_user, rt, ["sh", "-c", "echo x > /dev/null && echo ok"], edit=edit)
    assert rt("run", "-b", b, "d1").stdout.strip() == "ok"


def test_devices_are_the_hosts_bound(rt, rootless_user):
    b = _bundle(rootless_user, rt, ["sh", "-c", "stat -c '%t,%T' /dev/null /dev/zero; head -c 3 /dev/zero | wc -c"])
    assert rt("run", "-b", b, "v1").stdout.split() == ["1,3", "1,5", "3"]


def test_sysfs_without_a_network_namespace_is_one_line(rt, rootless_user):
    def edit(c):
        c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/sys"] + [
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}]

    b = _bundle(rootless_user, rt, ["true"], edit=edit)
    p = rt("run", "-b", b, "s1", check=False)
    assert p.returncode != 0 and "sysfs" in p.stderr and "not permitted" in p.stderr.lower()
    if rt.name == "pyrunc":
        assert p.stderr.strip().count("\n") == 0 and "network namespace" in p.stderr
    assert rt.ids() == []


def test_rootless_flag(rt, rootless_user):
    """--rootless true|false|auto as runc's global flag; a bad value is one line."""
    b = _bundle(rootless_user, rt, ["true"])
    for value in ("true", "auto"):
        rt("--rootless", value, "run", "-b", b, f"f-{value}")
    p = rt("--rootless", "maybe", "run", "-b", b, "f-x", check=False)
    assert p.returncode != 0 and "maybe" in p.stderr
    p = rt("--rootless", "false", "run", "-b", b, "f-false", check=False)  # cgroup errors are errors again
    assert p.returncode == 1 and "permission denied" in p.stderr.lower() and "cgroup" in p.stderr
    assert rt.ids() == []


def test_root_of_a_user_namespace(rt, rootless_user):
    """As podman runs its runtime: euid 0 in a user namespace mapping only the user (auto-detected
    rootless cgroups, devices bound, the state root still $XDG_RUNTIME_DIR/<runtime> as $USER is not root)."""
    def edit(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "user"]
        del c["linux"]["uidMappings"], c["linux"]["gidMappings"]

    b = _bundle(rootless_user, rt, ["sh", "-c", "id -u; cat /proc/self/uid_map; stat -c '%t,%T' /dev/null"], edit=edit)
    p = rootless_user.run(["unshare", "-Urm", rt.binary, "run", "-b", b, "ns1"])
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    assert lines[0] == "0" and lines[1].split() == ["0", str(rootless_user.uid), "1"] and lines[2] == "1,3"
    assert os.path.isdir(rt.root) and not os.path.exists(os.path.join(rt.root, "ns1"))


def test_idmapped_mount_needs_root(rootless_user):
    """pyrunc only (runc 1.1 has no idmapped mounts): refused in one line, nothing left."""
    u = rootless_user
    src = u.mkdir("idmap-src")

    def edit(c):
        c["mounts"].append({"destination": "/mnt", "type": "bind", "source": src, "options": ["bind", "idmap"]})

    b = u.bundle(f"b-idmap-{os.urandom(4).hex()}", ["true"], edit=edit)
    p = u.run([PYRUNC, "run", "-b", b, "i1"])
    assert p.returncode == 1
    with open(os.path.join(b, "config.json")) as f:
        index = len(json.load(f)["mounts"]) - 1
    assert p.stderr.strip() == (f"pyrunc: mounts[{index}] idmap: not supported: an idmapped mount needs root "
                                "(mount_setattr(MOUNT_ATTR_IDMAP) on a host mount needs CAP_SYS_ADMIN)")
    assert not os.path.exists(os.path.join(u.xdg, "pyrunc", "i1"))


def test_cgroup_verbs_without_a_delegated_cgroup(rt, rootless_user):
    """pause, ps and update need the container's cgroups: with none delegated they fail (runc
    alike, after runc's warning), each with one error line, and the container keeps running."""
    b = _bundle(rootless_user, rt, ["sleep", "30"])
    rt("run", "-d", "-b", b, "g1")
    for args, needle in ((("pause", "g1"), "freezer"), (("ps", "g1"), ""),
                         (("update", "--pids-limit", "10", "g1"), "cannot set pids limit")):
        p = rt(*args, check=False)
        assert p.returncode != 0, args
        assert needle in p.stderr, p.stderr
        if rt.name == "pyrunc":
            lines = p.stderr.strip().split("\n")
            assert lines[0] == f"pyrunc: warning: pyrunc {args[0]} may fail if you don't have the full access to " \
                "cgroups" or args[0] == "update", lines
            assert len([ln for ln in lines if "warning" not in ln]) == 1, lines
    assert rt.state("g1")["status"] == "running"


def test_overlay_mount_in_the_user_namespace(rt, rootless_user):
    """overlay is mountable in a user namespace (kernel >= 5.11): pybuild's rootless RUN steps rely on it."""
    u = rootless_user
    ov = u.mkdir(f"ov-{rt.name}-{os.urandom(3).hex()}")
    for d in ("l", "u", "w"):
        u.mkdir(ov, d)
    with open(os.path.join(ov, "l", "f"), "w") as f:
        f.write("low\n")
    u.chown_tree(ov)

    def edit(c):
        c["mounts"].append({"destination": "/mnt", "type": "overlay", "source": "overlay",
                            "options": [f"lowerdir={ov}/l", f"upperdir={ov}/u", f"workdir={ov}/w"]})

    b = _bundle(u, rt, ["sh", "-c", "cat /mnt/f; echo up > /mnt/g"], edit=edit)
    p = rt("run", "-b", b, "o1", check=False)
    if p.returncode != 0 and "overlay" in p.stderr and "not permitted" in p.stderr.lower():
        pytest.skip(f"this kernel refuses overlay in a user namespace: {p.stderr.strip()}")
    assert p.returncode == 0 and p.stdout == "low\n", p.stderr
    st = os.stat(os.path.join(ov, "u", "g"))
    assert (st.st_uid, st.st_gid) == (u.uid, u.gid)


@pytest.mark.peer
def test_spec_rootless_as_the_user_is_runcs(rootless_user):
    """`pyrunc spec --rootless` run by the user maps the user's own ids, byte for byte as runc's."""
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    u = rootless_user
    docs = {}
    for name, binary in (("pyrunc", PYRUNC), ("runc", shutil.which("runc"))):
        d = u.mkdir(f"spec-{name}-{os.urandom(3).hex()}")
        p = u.run([binary, "spec", "--rootless"], cwd=d)
        assert p.returncode == 0, p.stderr
        with open(os.path.join(d, "config.json"), "rb") as f:
            docs[name] = f.read()
    assert docs["pyrunc"] == docs["runc"]
    assert json.loads(docs["pyrunc"])["linux"]["uidMappings"] == [{"containerID": 0, "hostID": u.uid, "size": 1}]
