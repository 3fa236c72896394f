"""pybuild SIGKILLed at every step of a build, a commit, an unpack, an export, a pull and a push,
and while an import, a load or a pull unpacks the image's layers into the layer store.

Each case runs one command with the test-only fault hook (pyrunc/faults.py) armed at one step, so the
process dies there as under `kill -9`. Then, for every step:
- nothing of the dead command runs on or stays mounted (its watcher took its containers and mounts);
- `pybuild fsck` finds no error (what the command left is garbage at most), `fsck --repair` removes
  the garbage and a second fsck is clean;
- the same command run again succeeds, and a build reuses every step whose cache record was
  written before the kill (the `--> CACHED` lines), not fewer.
Plus: a SIGKILLed `pybuild run` (foreground and detached) takes its container with it (its watcher).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from pbsec import busybox_tar, pb, write_context  # noqa: F401
from rellib import assert_store_sound, fault_env, killed, settle

from pyrunc.faults import STEPS

DOCKERFILE = "FROM busybox\nCOPY a /a\nRUN echo one > /one\nRUN echo two > /two\n"

# step -> Dockerfile steps whose cache record exists at the kill (the rebuild must reuse them)
BUILD_CASES = {
    "build.locked@1": 0,
    "layer.entry@3": 0,           # unpacking busybox for the first RUN
    "layer.unpacked@1": 0,
    "blob.synced@2": 1,           # RUN one's layer blob, before its rename
    "build.step-applied@2": 1,    # RUN one ran; nothing of it committed
    "build.layer-blob@2": 1,
    "build.layer-adopted@2": 1,
    "build.cache-recorded@2": 2,
    "build.image-written@1": 3,
    "index.locked@1": 3,          # the tag being written
    "build.tagged@1": 3,
}


def _context(tmp_path) -> str:
    return write_context(str(tmp_path / "ctx"), {"Dockerfile": DOCKERFILE, "a": "a\n"})


def _after_kill(pb, res, where: str) -> list[str]:
    assert killed(res), f"{where}: not killed (rc {res.returncode}): {res.stderr[-2000:]}"
    left = settle(pb.root)
    assert not left, f"{where}: left running or mounted: {left}"
    return assert_store_sound(pb, where)


@pytest.mark.parametrize("step", sorted(BUILD_CASES))
def test_build_killed_at(pb, tmp_path, step: str) -> None:
    ctx = _context(tmp_path)
    res = pb.build(ctx, "--network", "none", "-t", "img", env=fault_env(step))
    _after_kill(pb, res, step)
    again = pb.build(ctx, "--network", "none", "-t", "img")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("--> CACHED") >= BUILD_CASES[step], again.stderr
    out = pb("run", "--rm", "--network", "none", "img", "cat", "/a", "/one", "/two")
    assert out.returncode == 0 and out.stdout == "a\none\ntwo\n", out.stderr
    assert_store_sound(pb, f"{step}, rebuilt")


@pytest.fixture
def built(pb, tmp_path):
    """A store holding `img` (built, every layer unpacked) and a context to build it again."""
    ctx = _context(tmp_path)
    pb.ok("build", "--network", "none", "-t", "img", ctx)
    return ctx


@pytest.mark.parametrize("step", ["commit.layer-blob@1", "commit.image-written@1", "blob.synced@1"])
def test_commit_killed_at(pb, built, step: str) -> None:
    pb.ok("run", "--name", "c1", "--network", "none", "img", "sh", "-c", "echo changed > /changed")
    try:
        _after_kill(pb, pb("commit", "c1", "committed", env=fault_env(step)), step)
        pb.ok("commit", "c1", "committed")
        assert pb.ok("run", "--rm", "--network", "none", "committed", "cat", "/changed").stdout == "changed\n"
    finally:
        pb("rm", "-f", "c1")
    assert_store_sound(pb, f"{step}, committed again")


@pytest.mark.parametrize("step,fmt", [("export.blob@2", "oci"), ("export.written@1", "oci"),
                                      ("export.blob@1", "docker")])
def test_export_killed_at(pb, built, tmp_path, step: str, fmt: str) -> None:
    dest = str(tmp_path / "out" / "img.tar")
    os.makedirs(os.path.dirname(dest))
    _after_kill(pb, pb("export", "img", "-o", dest, "--format", fmt, env=fault_env(step)), step)
    assert not os.path.exists(dest), "a killed export left a file under the archive's name"
    # what a SIGKILL cannot clean: the temp file beside the destination, never under its name
    assert all(n.startswith(".img.tar.") and n.endswith(".tmp") for n in os.listdir(os.path.dirname(dest)))
    pb.ok("export", "img", "-o", dest, "--format", fmt)
    fresh = type(pb)(str(tmp_path / "loaded"))
    assert "img" in fresh.ok("load", "-i", dest).stdout


def test_output_tar_killed_while_flattening(pb, built, tmp_path) -> None:
    """--output type=tar flattens the image in the store's tmp/ (export-<pid>-*): garbage after a kill."""
    dest = str(tmp_path / "flat.tar")
    res = pb.build(built, "--network", "none", "-t", "img", "-o", f"type=tar,dest={dest}",
                   env=fault_env("layer.entry@5"))
    garbage = _after_kill(pb, res, "flatten")
    assert any("scratch tmp/export-" in line for line in garbage), garbage
    pb.ok("build", "--network", "none", "-t", "img", "-o", f"type=tar,dest={dest}", built)
    assert os.path.getsize(dest) > 0


# ---- pull and push against a registry of the test's own -------------------------------------------
@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from registrylib import REGISTRY_BIN, Registry

    if not os.path.exists(REGISTRY_BIN):
        pytest.skip("needs docker-registry (apt-get install docker-registry)")
    reg = Registry(str(tmp_path_factory.mktemp("registry"))).start()
    yield reg
    reg.stop()


@pytest.fixture
def big(pb, tmp_path):
    """An image with a 3 MB random layer: several 1 MiB chunks to die in the middle of."""
    ctx = write_context(str(tmp_path / "bigctx"), {"Dockerfile": "FROM busybox\nCOPY blob /blob\n",
                                                   "blob": os.urandom(3 << 20)})
    pb.ok("build", "-t", "big", ctx)
    return "big"


@pytest.mark.parametrize("step", ["pull.manifest@1", "pull.chunk@2", "pull.blobs@1", "blob.synced@1",
                                  "index.locked@1"])
def test_pull_killed_at(pb, big, registry, tmp_path, step: str) -> None:
    ref = f"{registry.url}/rel/pull-{step.replace('@', '-').replace('.', '-')}:1"
    pb.ok("push", big, ref)
    puller = type(pb)(str(tmp_path / "puller"))
    _after_kill(puller, puller("pull", ref, env=fault_env(step)), step)
    puller.ok("pull", ref)
    assert puller.ok("run", "--rm", "--network", "none", ref, "wc", "-c", "/blob").stdout.split()[0] == str(3 << 20)
    assert_store_sound(puller, f"{step}, pulled again")


@pytest.mark.parametrize("step", ["push.chunk@2", "push.blobs@1"])
def test_push_killed_at(pb, big, registry, tmp_path, step: str) -> None:
    ref = f"{registry.url}/rel/push-{step.replace('@', '-').replace('.', '-')}:1"
    _after_kill(pb, pb("push", "--chunk-size", str(1 << 20), big, ref, env=fault_env(step)), step)
    again = pb.ok("push", "--chunk-size", str(1 << 20), big, ref)
    if step.startswith("push.chunk"):
        assert "resumed at" in again.stderr, again.stderr
    puller = type(pb)(str(tmp_path / "puller"))
    puller.ok("pull", ref)
    assert_store_sound(pb, f"{step}, pushed again")


# ---- an image entering the store is unpacked there (issue 17 goal 5): killed mid-way -------------
ENTRY_UNPACK_STEPS = ["layer.entry@2", "layer.unpacked@1"]


def _unpacked_all(pb, name: str) -> bool:
    from pybuild.store import Store

    store = Store(pb.root)
    return all(store.has_layer(c) for c in store.load_image(name).chain_ids)


def _tags(pb) -> set:
    from pybuild.store import Store

    return {name for name, _ in Store(pb.root).list_refs()}


@pytest.mark.parametrize("step", ENTRY_UNPACK_STEPS)
def test_import_killed_while_unpacking(pb, busybox_tar, step: str) -> None:
    _after_kill(pb, pb("import", busybox_tar, "-t", "again", env=fault_env(step)), step)
    assert "again" not in _tags(pb), "a killed import tagged its image"
    pb.ok("import", busybox_tar, "-t", "again")
    assert _unpacked_all(pb, "again")
    assert_store_sound(pb, f"{step}, imported again")


@pytest.mark.parametrize("step", ENTRY_UNPACK_STEPS)
def test_load_killed_while_unpacking(pb, built, tmp_path, step: str) -> None:
    archive = str(tmp_path / "img.tar")
    pb.ok("save", "img", "-o", archive)
    fresh = type(pb)(str(tmp_path / "loader"))
    _after_kill(fresh, fresh("load", "-i", archive, env=fault_env(step)), step)
    assert "img" not in _tags(fresh), "a killed load tagged its image"
    fresh.ok("load", "-i", archive)
    assert _unpacked_all(fresh, "img")
    assert fresh.ok("run", "--rm", "--network", "none", "img", "cat", "/one").stdout == "one\n"
    assert_store_sound(fresh, f"{step}, loaded again")


@pytest.mark.parametrize("step", ENTRY_UNPACK_STEPS)
def test_pull_killed_while_unpacking(pb, big, registry, tmp_path, step: str) -> None:
    ref = f"{registry.url}/rel/unpack-{step.replace('@', '-').replace('.', '-')}:1"
    pb.ok("push", big, ref)
    puller = type(pb)(str(tmp_path / "puller"))
    _after_kill(puller, puller("pull", ref, env=fault_env(step)), step)
    assert not _tags(puller), "a killed pull tagged its image"
    puller.ok("pull", ref)
    assert _unpacked_all(puller, ref)
    assert_store_sound(puller, f"{step}, pulled again")


def _links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def test_build_killed_while_making_its_bridge(pb, tmp_path) -> None:
    """A RUN step's set-up SIGKILLed after adding the bridge link, before marking it as pybuild's:
    the next build on that bridge works (the link was once left under the bridge's own name, and
    every later set-up refused it as 'not pybuild's'), and the unfinished link goes."""
    import uuid

    bridge = f"pbk{uuid.uuid4().hex[:8]}"
    ctx = _context(tmp_path)
    env = {"PYBUILD_BRIDGE": bridge}
    try:
        res = pb.build(ctx, "--network", "bridge", "-t", "img", env={**env, **fault_env("net.bridge-added@1")})
        unfinished = {n for n in _links() if n.startswith("pbn")}  # (other work may sweep it first)
        assert bridge not in _links(), "the bridge's own name was taken by an unmarked link"
        _after_kill(pb, res, "net.bridge-added")
        again = pb.build(ctx, "--network", "bridge", "-t", "img", env=env)
        assert again.returncode == 0, again.stderr[-3000:]
        left = _links() & unfinished
        assert not left, f"the dead set-up's bridge is still there: {left}"
        assert bridge not in _links(), "the build's bridge outlived its last RUN step"
    finally:
        if bridge in _links():
            subprocess.run(["ip", "link", "del", bridge], check=False)


def test_unfinished_bridges_of_dead_set_ups_are_swept() -> None:
    from pybuild.net.links import Links

    dead = subprocess.Popen(["true"])
    dead.wait()
    gone, alive = f"pbn{dead.pid}-{os.urandom(2).hex()}", f"pbn{os.getpid()}-{os.urandom(2).hex()}"
    try:
        for name in (gone, alive):
            subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
        links = Links()
        try:
            links.sweep_unfinished()
        finally:
            links.close()
        assert gone not in _links() and alive in _links()
    finally:
        for name in (gone, alive):
            subprocess.run(["ip", "link", "del", name], capture_output=True)


def test_every_pybuild_step_is_exercised() -> None:
    cases = set(BUILD_CASES) | {"net.bridge-added@1", "commit.layer-blob@1", "commit.image-written@1", "export.blob@1", "export.written@1",
                                "pull.manifest@1", "pull.chunk@2", "pull.blobs@1", "push.chunk@2", "push.blobs@1"}
    named = {c.partition("@")[0] for c in cases}
    assert {s for s in STEPS if not s.startswith(("create.", "start.", "run.", "exec.", "delete."))} <= named


# ---- the run monitor's watcher ------------------------------------------------------------------
def _runtime_state(cid: str) -> bool:
    return os.path.isdir(f"/run/pybuild/runtime/{cid}")


@pytest.mark.parametrize("detach", [False, True], ids=["foreground", "detached"])
def test_killed_run_takes_its_container(pb, built, detach: bool) -> None:
    marker = f"sleep {5000 + os.getpid() % 997}"
    if detach:
        cid = pb.ok("run", "-d", "--name", "victim", "img", "sh", "-c", marker).stdout.strip()
    else:
        proc = subprocess.Popen([sys.executable, "-m", "pybuild", "--root", pb.root, "run", "--name", "victim",
                                 "img", "sh", "-c", f"echo started; {marker}"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout.readline() == "started\n"
        cid = json.loads(pb.ok("inspect", "--type", "container", "victim").stdout)[0]["Id"]
    with open(os.path.join(pb.root, "containers", cid, "monitor")) as fh:
        monitor = int(fh.read().split()[0])
    assert _runtime_state(cid)
    os.kill(monitor, signal.SIGKILL)
    if not detach:
        proc.wait(30)
    deadline = time.monotonic() + 20
    while (_runtime_state(cid) or os.path.exists(os.path.join(pb.root, "containers", cid, "fs", "work"))) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _runtime_state(cid), "the container outlived its monitor"
    from rellib import pids_with

    assert not pids_with(marker), "the container's process outlived its monitor"
    row = [line for line in pb.ok("ps", "-a").stdout.splitlines() if line.endswith(" victim")]
    assert len(row) == 1 and "Exited (137)" in row[0], row
    pb.ok("rm", "victim")
    assert_store_sound(pb, "killed run")
