"""pybuild as an ordinary user (issue 19): a build FROM a local busybox base with RUN id,
RUN chown, COPY --chown and a step run as a non-root image user; the layer tars read from the
store say what the image says (not the host ids the tree has on disk); the image runs with
pyrunc (pybuild run, as the user). The same Dockerfile under buildah rootless is the oracle for
the layers' ownership; crun and runc as the RUN steps' runtime give the same layers. The
refusals (no subordinate ids, no newuidmap, the bridge network) are one line each.

The user is tests/rootlesslib.py's (made and removed by the tests)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from rootless_buildlib import base_tar_fixture, host_owners, owners_of, user_build_fixture
from rootlesslib import _ranges

DOCKERFILE = """\
FROM busybox
RUN id && touch /f && chown 1000:1000 /f && mkdir /d && chown 1000:50 /d
COPY --chown=1001:1002 f.txt /g.txt
RUN cp /bin/busybox /suid && chmod 4755 /suid
USER app
RUN id && touch /home/app/mine && (touch /etc/nope 2>/dev/null && echo WROTE || echo DENIED)
"""
# What the layers after the base must say: (uid, gid, mode bits) of the paths the steps made.
EXPECTED = {"f": (1000, 1000, 0o644), "d": (1000, 50, 0o755), "g.txt": (1001, 1002, 0o644),
            "suid": (0, 0, 0o4755), "home/app/mine": (1000, 1000, 0o644)}


@pytest.fixture(scope="module")
def base_tar(rootless_user):
    yield from base_tar_fixture(rootless_user, "base-build")


@pytest.fixture
def ub(rootless_user, base_tar):
    yield from user_build_fixture(rootless_user, base_tar)


def _owners(layers: dict) -> dict:
    return {p: (u, g, m & 0o7777) for p, (u, g, m) in layers.items() if p in EXPECTED}


@pytest.mark.parametrize("runtime", ["pyrunc", pytest.param("crun", marks=pytest.mark.peer),
                                     pytest.param("runc", marks=pytest.mark.peer)])
def test_build_layers_carry_the_image_ids(ub, rootless_user, runtime):
    if shutil.which(runtime) is None and runtime != "pyrunc":
        pytest.skip(f"{runtime} is not installed")
    ub.runtime = runtime
    ub.import_base()
    ctx = ub.context({"Dockerfile": DOCKERFILE, "f.txt": "hello\n"})
    p = ub("build", "--progress", "plain", "-t", "t", ctx)
    out = p.stdout + p.stderr
    assert "uid=0(root) gid=0(root)" in out            # the image's root is the user
    assert "uid=1000(app) gid=1000(app)" in out
    assert "\nDENIED\n" in out and "\nWROTE\n" not in out      # uid 1000 cannot write root's /etc in the step
    # the default store: $XDG_DATA_HOME/pybuild
    assert os.path.isfile(os.path.join(ub.data_home, "pybuild", "index.json"))
    assert _owners(ub.layer_owners("t", skip=1)) == EXPECTED
    base = ub.layer_owners("t")  # the base layer as the image says: root's files stay 0
    assert base["bin/busybox"][:2] == (0, 0) and base["etc/passwd"][:2] == (0, 0)
    assert base["home/app"][:2] == (1000, 1000)
    # on disk the unpacked tree holds the mapped host ids: image 1000 = subuid start + 999
    u = rootless_user
    owners = host_owners(u, os.path.join(ub.root, "layers"))
    assert u.uid in owners and u.subuid[0] + 999 in owners and 0 not in owners


def test_import_unpacks_in_the_users_store_and_from_unpacks_nothing(ub, rootless_user):
    """Issue 17 goal 5, rootless: `import` unpacks the base into ~/.local/share/pybuild/layers inside
    the user's namespace (host owners: the user and subordinate ids, never host root), and a build
    armed to be SIGKILLed at the first layer unpack (the test-only fault hook) runs to the end."""
    from pyrunc.faults import STEP_VAR, SWITCH, SWITCH_VALUE

    ub.import_base()
    layers = os.path.join(ub.root, "layers")
    assert [n for n in os.listdir(layers) if not n.startswith(".")], "import left the base packed"
    owners = host_owners(rootless_user, layers)
    assert rootless_user.uid in owners and 0 not in owners
    ctx = ub.context({"Dockerfile": "FROM busybox\nRUN touch /made\n"})
    p = ub("build", "--progress", "plain", "-t", "t", ctx, check=False,
           env=ub.env(**{SWITCH: SWITCH_VALUE, STEP_VAR: "layer.unpacked@1"}))
    assert p.returncode == 0, f"the build unpacked at FROM (rc {p.returncode}): {p.stderr[-2000:]}"


def test_the_image_runs_with_pyrunc_as_the_user(ub, rootless_user):
    ub.import_base()
    ctx = ub.context({"Dockerfile": DOCKERFILE, "f.txt": "hello\n"})
    ub("build", "-q", "-t", "t", ctx)
    p = ub("run", "--rm", "-u", "root", "t", "sh", "-c",
           "id -u; stat -c '%u:%g %a %n' /f /g.txt /suid /home/app/mine; cat /proc/self/uid_map")
    lines = p.stdout.splitlines()
    assert lines[:5] == ["0", "1000:1000 644 /f", "1001:1002 644 /g.txt", "0:0 4755 /suid",
                         "1000:1000 644 /home/app/mine"], p.stdout
    first = lines[5].split()
    assert first == ["0", str(rootless_user.uid), "1"]   # the container's root is the user on the host
    # pybuild run's runtime state is under $XDG_RUNTIME_DIR, and nothing is left of the container
    state = os.path.join(rootless_user.xdg, "pybuild", "runtime")
    assert os.path.isdir(state) and [n for n in os.listdir(state) if not n.startswith(".")] == []


@pytest.mark.peer
def test_same_ownership_as_buildah_rootless(ub, rootless_user, tmp_path):
    for tool in ("buildah", "podman"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    ub.import_base()
    ctx = ub.context({"Dockerfile": DOCKERFILE, "f.txt": "hello\n"})
    ub("build", "-q", "-t", "t", ctx)
    mine = ub.layer_owners("t", skip=1)
    env = ub.env()  # buildah/podman keep their storage under $XDG_DATA_HOME/containers too
    u = rootless_user
    imp = u.run(["podman", "import", ub.base_tar, "localhost/busybox"], env=env)
    assert imp.returncode == 0, imp.stderr
    with open(os.path.join(ctx, "Dockerfile.buildah"), "w") as fh:
        fh.write(DOCKERFILE.replace("FROM busybox", "FROM localhost/busybox"))
    bud = u.run(["buildah", "bud", "--isolation", "oci", "--network", "host", "--layers",
                 "-f", os.path.join(ctx, "Dockerfile.buildah"), "-t", "localhost/t", ctx], env=env, timeout=300)
    assert bud.returncode == 0, bud.stderr
    assert "\nDENIED\n" in bud.stdout and "\nWROTE\n" not in bud.stdout
    layout = u.mkdir("oci-out")
    push = u.run(["buildah", "push", "localhost/t", f"oci:{layout}:t"], env=env)
    assert push.returncode == 0, push.stderr
    theirs = _oci_layer_owners(layout, skip=1)
    assert _owners(theirs) == _owners(mine) == EXPECTED
    common = set(mine) & set(theirs)
    assert {p: mine[p][:2] for p in common} == {p: theirs[p][:2] for p in common}


def _oci_layer_owners(layout: str, skip: int) -> dict:
    import gzip

    def blob(digest: str) -> bytes:
        with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as fh:
            return fh.read()

    with open(os.path.join(layout, "index.json")) as fh:
        index = json.load(fh)
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    tars = []
    for layer in manifest["layers"][skip:]:
        data = blob(layer["digest"])
        tars.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return owners_of(tars)


# ---------------------------------------------------------------- refusals, one line each
def _one_line(p, prefix: str) -> None:
    assert p.returncode != 0
    assert p.stderr.startswith(prefix) and p.stderr.count("\n") == 1, p.stderr


def test_bridge_network_is_refused(ub):
    ub.import_base()
    ctx = ub.context({"Dockerfile": "FROM busybox\nRUN true\n"})
    _one_line(ub("build", "--network", "bridge", ctx, check=False),
              "pybuild: rootless: --network=bridge needs root")
    ctx = ub.context({"Dockerfile": "FROM busybox\nRUN --network=bridge true\n"})
    p = ub("build", "--progress", "quiet", ctx, check=False)
    assert p.returncode != 0 and "--network=bridge needs root" in p.stderr, p.stderr
    assert os.listdir(os.path.join(ub.root, "tmp")) == []


def test_without_newuidmap(ub, rootless_user):
    _one_line(ub("images", check=False, env=ub.env(PATH="/nonexistent")),
              "pybuild: rootless: newuidmap is not installed or not on PATH (Debian package uidmap)")


def test_without_subordinate_ids(ub, rootless_user):
    u = rootless_user
    ranges = {"/etc/subuid": ("--del-subuids", "--add-subuids"), "/etc/subgid": ("--del-subgids", "--add-subgids")}
    removed = []
    u.kill_all()  # usermod refuses a user with processes (podman's pause process of another test)
    try:
        for path, (dele, _) in ranges.items():
            for start, count in _ranges(path, u.name):
                subprocess.run(["usermod", dele, f"{start}-{start + count - 1}", u.name], check=True)
                removed.append((path, start, count))
        p = ub("images", check=False)
        _one_line(p, f"pybuild: rootless: no subordinate ids for {u.name} in /etc/subuid")
        assert "usermod --add-subuids" in p.stderr
    finally:
        for path, start, count in removed:
            subprocess.run(["usermod", ranges[path][1], f"{start}-{start + count - 1}", u.name], check=True)
    assert ub("images").returncode == 0


def test_parse_needs_no_namespace(ub):
    ctx = ub.context({"Dockerfile": "FROM busybox\nRUN true\n"})
    # parse touches no store: it works without subordinate ids or newuidmap on PATH
    p = ub("parse", "-f", os.path.join(ctx, "Dockerfile"), env=ub.env(PATH="/nonexistent"))
    assert p.returncode == 0


def test_an_image_id_beyond_the_range_is_one_line(ub, rootless_user):
    import io
    import tarfile

    u = rootless_user
    far = u.subuid[1] + 1000  # the namespace maps 0..count: this one has no host id
    path = os.path.join(u.home, f"far-{os.urandom(4).hex()}.tar")
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("far")
        info.size, info.uid, info.gid, info.mode = 2, far, far, 0o644
        tar.addfile(info, io.BytesIO(b"x\n"))
    os.chown(path, u.uid, u.gid)
    try:
        # import unpacks the layer (issue 17 goal 5): the refusal comes there, nothing is tagged
        p = ub("import", path, "-t", "far", check=False)
        _one_line(p, "pybuild: ")
        assert "unpacking layer 1 of 1" in p.stderr
        assert f"unpack: far: owner {far}:{far} is not mapped in this user namespace" in p.stderr
        assert os.listdir(os.path.join(ub.root, "layers")) == []
        # stored without unpacking, the same refusal comes at FROM
        ub("import", path, "-t", "far", "--no-unpack")
        ctx = ub.context({"Dockerfile": "FROM far\nRUN true\n"})
        p = ub("build", "--progress", "quiet", ctx, check=False)
        _one_line(p, "pybuild: ")
        assert f"unpack: far: owner {far}:{far} is not mapped in this user namespace" in p.stderr
        assert os.listdir(os.path.join(ub.root, "tmp")) == []
    finally:
        os.unlink(path)


def test_rmi_and_prune_remove_subordinate_owned_layers(ub, rootless_user):
    ub.import_base()
    ctx = ub.context({"Dockerfile": DOCKERFILE, "f.txt": "hello\n"})
    ub("build", "-q", "-t", "t", ctx)
    assert rootless_user.subuid[0] + 999 in host_owners(rootless_user, os.path.join(ub.root, "layers"))
    ub("rmi", "t")
    ub("rmi", "busybox")
    ub("prune")
    assert os.listdir(os.path.join(ub.root, "layers")) == []


def test_run_detached_exec_and_rm(ub, rootless_user):
    """exec joins the user namespace of the `run` that started the container (each pybuild makes
    its own; a sibling one could not enter the container's namespaces)."""
    ub.import_base()
    ub("run", "-d", "--name", "c1", "busybox", "sleep", "100")
    try:
        p = ub("exec", "c1", "sh", "-c", "id -u; touch /made; stat -c %u /made; cat /proc/self/uid_map")
        lines = p.stdout.splitlines()
        assert lines[:2] == ["0", "0"] and lines[2].split() == ["0", str(rootless_user.uid), "1"], p.stdout
        assert ub("exec", "-u", "app", "c1", "id", "-u").stdout == "1000\n"
        assert ub("exec", "c1", "sh", "-c", "exit 3", check=False).returncode == 3
    finally:
        ub("rm", "-f", "c1")
    assert "c1" not in ub("ps", "-a").stdout


def test_a_killed_build_leaves_nothing(ub, rootless_user):
    """SIGKILL of a rootless build: its watcher (in the build's namespaces) deletes the RUN
    container and the build's temp dir, as for root (pybuild/sandbox.py)."""
    import signal
    import time

    from rootless_buildlib import PYBUILD

    u = rootless_user
    ub.import_base()
    ctx = ub.context({"Dockerfile": "FROM busybox\nRUN sleep 60\n"})
    proc = subprocess.Popen([PYBUILD, "build", "--no-cache", "--progress", "plain", ctx], env=ub.env(),
                            cwd=u.home, user=u.uid, group=u.gid, extra_groups=[],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, b""):
            if b"STEP 2/2" in line:
                break
        time.sleep(1)  # the step's container is running
        sleeping = [p for p in u.pids() if _comm(p) == "sleep"]
        assert sleeping, "the RUN step did not start"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (any(_comm(p) == "sleep" for p in u.pids())
                                                or os.listdir(os.path.join(ub.root, "tmp"))):
            time.sleep(0.1)
        assert not any(_comm(p) == "sleep" for p in u.pids())
        assert os.listdir(os.path.join(ub.root, "tmp")) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def test_network_none_and_host(ub):
    """none: a namespace of the step's own with only lo (sysfs mounted: the netns is its own);
    host, the rootless default: the host's interfaces (the one of the default route here)."""
    ub.import_base()
    ctx = ub.context({"Dockerfile": "FROM busybox\nRUN echo links: $(ip -o link | cut -d: -f2) sys=$(ls /sys | wc -l)\n"})
    none = ub("build", "--no-cache", "--progress", "plain", "--network", "none", ctx)
    assert "\nlinks: lo sys=" in none.stdout + none.stderr
    host = ub("build", "--no-cache", "--progress", "plain", ctx)
    with open("/proc/net/route") as f:
        default = [ln.split()[0] for ln in f.readlines()[1:] if ln.split()[1] == "00000000"]
    line = next(ln for ln in (host.stdout + host.stderr).splitlines() if ln.startswith("links: "))
    assert "lo" in line.split() and (not default or default[0] in line.split()), line


def test_local_output_is_the_users(ub, rootless_user, tmp_path):
    """-o type=local: the user's files (BuildKit rootless alike), which they can edit and remove;
    -o type=tar keeps the image's owners."""
    import tarfile

    u = rootless_user
    ub.import_base()
    ctx = ub.context({"Dockerfile": "FROM busybox\nRUN touch /f && chown 1000:1000 /f\n"})
    out = os.path.join(u.home, f"out-{os.urandom(4).hex()}")
    tar = out + ".tar"
    ub("build", "-q", "-o", f"type=local,dest={out}", "-o", f"type=tar,dest={tar}", ctx)
    assert host_owners(u, out) == {u.uid}
    with tarfile.open(tar) as t:
        assert (t.getmember("f").uid, t.getmember("f").gid) == (1000, 1000)
    assert u.run(["rm", "-rf", out, tar]).returncode == 0 and not os.path.exists(out)


def test_copy_chown_beyond_the_range_is_one_line(ub, rootless_user):
    far = rootless_user.subuid[1] + 1000
    ub.import_base()
    ctx = ub.context({"Dockerfile": f"FROM busybox\nCOPY --chown={far}:{far} f.txt /f\n", "f.txt": "x\n"})
    p = ub("build", "--progress", "quiet", ctx, check=False)
    _one_line(p, "pybuild: ")
    assert f"--chown={far}:{far}: uid {far} is not mapped in this user namespace" in p.stderr, p.stderr
    assert os.listdir(os.path.join(ub.root, "tmp")) == []


def test_run_as_a_user_beyond_the_range_is_one_line(ub, rootless_user):
    far = rootless_user.subuid[1] + 1000
    ub.import_base()
    ctx = ub.context({"Dockerfile": f"FROM busybox\nUSER {far}\nRUN true\n"})
    p = ub("build", "--progress", "quiet", ctx, check=False)
    _one_line(p, "pybuild: ")
    assert f"USER {far}: uid {far} is not mapped in this user namespace" in p.stderr, p.stderr
