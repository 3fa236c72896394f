"""Issue 19 security: a rootless user gets nothing through pyrunc that their user
namespace does not give them (docs/SECURITY.md §11). runc is the oracle where it applies.

R1  ids: a map outside the caller's own id and /etc/subuid ranges is refused (newuidmap),
    nothing is left.
R2  host files: a host file or directory only root may write stays unwritable from the
    container's root, through a read-write bind mount.
R3  setuid: a setuid file the container makes on a bound host dir belongs to the user
    (or a subordinate id), never to host root.
R4  cgroups: no cgroup outside the delegation, an absolute or a relative cgroupsPath
    alike; nothing is made.
R5  state: another user's state root, or one others may write, is refused; the default
    root is the caller's, 0700 and sticky.
R7  supplementary groups: the caller's are kept (runc: no setgroups in a rootless
    container), so a file whose group is denied what others may do stays denied, even with
    subgid ranges mapped (where newgidmap leaves setgroups allowed); additionalGids are
    refused.
R6  the interpreter guard: without CAP_SYS_ADMIN for open_tree, a rootless create runs
    from a sealed memfd (no write possible), and init's /proc/PID/exe is closed to the
    user while init waits.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import uuid

import pytest

from rootlesslib import rootless_user_fixture
from testlib import PYRUNC

RUNTIMES = ["pyrunc", pytest.param("runc", marks=pytest.mark.peer)]


@pytest.fixture(scope="module")
def rootless_user():
    yield from rootless_user_fixture()


def binary(name: str) -> str:
    return PYRUNC if name == "pyrunc" else shutil.which(name)


def ids(user, runtime: str) -> list[str]:
    p = user.run([binary(runtime), "list", "--format", "json"])
    return [c["id"] for c in json.loads(p.stdout or "[]") or []]


@pytest.fixture(params=RUNTIMES)
def runtime(request, rootless_user):
    yield request.param
    for cid in ids(rootless_user, request.param):
        rootless_user.run([binary(request.param), "delete", "-f", cid])


def bundle(user, args, edit=None) -> str:
    return user.bundle(f"sec-{uuid.uuid4().hex[:8]}", args, edit=edit)


@pytest.mark.parametrize("host_id", ["root", "other-range"])
def test_r1_map_outside_the_ranges_is_refused(rootless_user, runtime, host_id):
    u = rootless_user
    bad = 0 if host_id == "root" else u.subuid[0] + u.subuid[1] + 1000

    def edit(c):
        c["linux"]["uidMappings"].append({"containerID": 1, "hostID": bad, "size": 1})

    p = u.run([binary(runtime), "run", "-b", bundle(u, ["true"], edit), "r1"])
    assert p.returncode != 0
    if runtime == "pyrunc":
        assert p.stderr.startswith("pyrunc: newuidmap:") and p.stderr.count("\n") == 1, p.stderr
        assert "/etc/subuid" in p.stderr
    assert ids(u, runtime) == []
    if runtime == "pyrunc":  # runc 1.1.5 leaves its child as a zombie (runc:[1:CHILD]) here
        assert u.pids() == []


def test_r2_root_owned_host_files_stay_unwritable(rootless_user, runtime):
    u = rootless_user
    host = os.path.join(u.home, f"rootdir-{uuid.uuid4().hex[:6]}")
    os.mkdir(host, 0o755)  # root's, as this test runs as root
    with open(os.path.join(host, "file"), "w") as f:
        f.write("root's\n")
    os.chmod(os.path.join(host, "file"), 0o644)

    def edit(c):
        c["mounts"].append({"destination": "/host", "type": "bind", "source": host, "options": ["rbind", "rw"]})
        for kind in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][kind] += ["CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_CHOWN"]

    script = ("touch /host/new 2>/dev/null && echo made; echo x >> /host/file 2>/dev/null && echo wrote; "
              "chmod 777 /host/file 2>/dev/null && echo chmod; chown 0 /host 2>/dev/null; echo done")
    p = u.run([binary(runtime), "run", "-b", bundle(u, ["sh", "-c", script], edit), "r2"])
    assert p.stdout.split() == ["done"], p.stdout + p.stderr
    assert os.listdir(host) == ["file"]
    with open(os.path.join(host, "file")) as f:
        assert f.read() == "root's\n"
    assert stat.S_IMODE(os.stat(os.path.join(host, "file")).st_mode) == 0o644


def test_r3_setuid_files_belong_to_the_user(rootless_user, runtime):
    u = rootless_user
    shared = u.mkdir(f"shared-{uuid.uuid4().hex[:6]}")

    def edit(c):
        c["mounts"].append({"destination": "/shared", "type": "bind", "source": shared, "options": ["rbind", "rw"]})
        c["root"]["readonly"] = False
        for kind in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"][kind] += ["CAP_FOWNER", "CAP_CHOWN", "CAP_SETUID"]

    script = "cp /bin/busybox /shared/suid && chown 0:0 /shared/suid && chmod 4755 /shared/suid && echo ok"
    p = u.run([binary(runtime), "run", "-b", bundle(u, ["sh", "-c", script], edit), "r3"])
    assert p.stdout.strip() == "ok", p.stderr
    st = os.stat(os.path.join(shared, "suid"))
    assert st.st_uid == u.uid and st.st_uid != 0  # container root is the user on the host
    assert st.st_mode & stat.S_ISUID


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_r4_no_cgroup_outside_the_delegation(rootless_user, runtime, where):
    u = rootless_user
    name = f"pyrt-sec-{uuid.uuid4().hex[:8]}"
    path = f"/{name}" if where == "absolute" else name

    def edit(c):
        c["linux"]["cgroupsPath"] = path

    p = u.run([binary(runtime), "run", "-b", bundle(u, ["true"], edit), "r4"])
    made = [os.path.join(r, d, name) for r, d in _hierarchies() if os.path.exists(os.path.join(r, d, name))]
    assert made == []
    if p.returncode == 0:
        pytest.skip("this host delegates a cgroup to the user")
    assert "permission denied" in p.stderr.lower() or "not permitted" in p.stderr.lower(), p.stderr
    assert ids(u, runtime) == []


def _hierarchies() -> list[tuple[str, str]]:
    """(mount point, the caller's own cgroup in it) of every hierarchy, for a cgroupsPath
    resolved either from the root or from the user's own cgroup (same as ours here)."""
    out = []
    with open("/proc/self/cgroup") as f:
        own = {ln.split(":", 2)[1]: ln.split(":", 2)[2].strip() for ln in f}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            fstype = parts[parts.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                opts = set(parts[-1].split(","))
                key = "" if fstype == "cgroup2" else next((k for k in own if set(k.split(",")) <= opts and k), None)
                for d in ("", (own.get(key) or "").lstrip("/")):
                    out.append((parts[4], d))
    return out


def test_r5_state_root_must_be_the_callers(rootless_user):
    u = rootless_user
    b = bundle(u, ["true"])
    p = u.run([PYRUNC, "--root", "/run", "run", "-b", b, "r5"])
    assert p.returncode == 1 and p.stderr.strip() == "pyrunc: state root /run: owned by uid 0, not by the caller " \
        f"(uid {u.uid})"
    shared = u.mkdir(f"state-{uuid.uuid4().hex[:6]}")
    os.chmod(shared, 0o777)
    p = u.run([PYRUNC, "--root", shared, "list"])
    assert p.returncode == 1 and "writable by group or others (mode 0777)" in p.stderr
    assert os.listdir(shared) == []
    assert u.run([PYRUNC, "run", "-d", "-b", b, "r5"]).returncode == 0
    root = os.path.join(u.xdg, "pyrunc")
    st = os.stat(root)
    assert st.st_uid == u.uid and stat.S_IMODE(st.st_mode) == 0o700 | stat.S_ISVTX
    for dirpath, dirs, files in os.walk(root):
        for n in [dirpath] + [os.path.join(dirpath, x) for x in dirs + files]:
            st = os.lstat(n)
            assert st.st_uid == u.uid, n
            if not stat.S_ISFIFO(st.st_mode):  # exec.fifo: init may run as any uid (as runc)
                assert not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH), n
    assert u.run([PYRUNC, "delete", "-f", "r5"]).returncode == 0


def test_r6_interpreter_guard_without_privileges(rootless_user):
    """open_tree needs CAP_SYS_ADMIN: a rootless create runs from a sealed memfd."""
    u = rootless_user
    out = u.mkdir(f"guard-{uuid.uuid4().hex[:6]}")
    probe = ("import fcntl, os\nexe = '/proc/%d/exe' % os.getppid()\nfd = os.open(exe, os.O_RDONLY)\n"
             f"open('{out}/seen', 'w').write('%s %d' % (os.readlink(exe), fcntl.fcntl(fd, fcntl.F_GET_SEALS)))")

    def edit(c):
        c["hooks"] = {"createRuntime": [{"path": "/usr/bin/python3.11", "args": ["python3", "-I", "-S", "-c", probe]}]}

    b = bundle(u, ["sleep", "30"], edit)
    p = u.run([PYRUNC, "create", "-b", b, "r6"])
    assert p.returncode == 0, p.stderr
    try:
        with open(os.path.join(out, "seen")) as f:
            link, seals = f.read().rsplit(" ", 1)
        assert link.startswith("/memfd:") and int(seals) & fcntl.F_SEAL_WRITE, (link, seals)
        state = json.loads(u.run([PYRUNC, "state", "r6"]).stdout)
        check = u.run(["/usr/bin/python3.11", "-I", "-S", "-c",
                       f"import os\ntry:\n os.open('/proc/{state['pid']}/exe', os.O_RDONLY)\nexcept OSError as e:\n"
                       " print(e.errno)"])
        assert check.stdout.strip() == "13"  # EACCES: init is not dumpable
    finally:
        u.run([PYRUNC, "delete", "-f", "r6"])


@pytest.fixture
def denied_group(rootless_user):
    """A host group the user is in, and a file its members may not read (others may: 0604)."""
    import grp
    import subprocess

    name = f"pyrtneg{uuid.uuid4().hex[:6]}"
    subprocess.run(["groupadd", name], check=True, capture_output=True)
    try:
        gid = grp.getgrnam(name).gr_gid
        d = rootless_user.mkdir(f"neg-{uuid.uuid4().hex[:6]}")
        path = os.path.join(d, "secret")
        with open(path, "w") as f:
            f.write("secret\n")
        os.chown(path, 0, gid)
        os.chmod(path, 0o604)
        yield gid, d
    finally:
        subprocess.run(["groupdel", name], capture_output=True)


@pytest.mark.parametrize("subids", [False, True], ids=["own-ids", "subid-ranges"])
def test_r7_supplementary_groups_are_kept(rootless_user, runtime, denied_group, subids):
    u = rootless_user
    gid, d = denied_group
    assert u.run(["cat", os.path.join(d, "secret")], groups=(gid,)).returncode != 0  # denied on the host

    def edit(c):
        c["mounts"].append({"destination": "/neg", "type": "bind", "source": d, "options": ["rbind", "ro"]})

    b = u.bundle(f"sec-{uuid.uuid4().hex[:8]}", ["sh", "-c", "cat /neg/secret 2>/dev/null || echo denied"],
                 subids=subids, edit=edit)
    p = u.run([binary(runtime), "run", "-b", b, "r7"], groups=(gid,))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "denied"


def test_r7_additional_gids_are_refused(rootless_user, runtime):
    u = rootless_user

    def edit(c):
        c["process"]["user"]["additionalGids"] = [5]

    b = u.bundle(f"sec-{uuid.uuid4().hex[:8]}", ["true"], subids=True, edit=edit)
    p = u.run([binary(runtime), "run", "-b", b, "r7b"])
    assert p.returncode != 0 and "cannot set any additional groups in a rootless container" in p.stderr
    assert ids(u, runtime) == []
