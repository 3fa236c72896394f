"""Layers are unpacked when an image enters the store (pull, load, import), as `docker load`, podman
pull and containerd do, so the first build FROM it unpacks nothing (issue 17 goal 5).

"Unpacks nothing" is asserted through the store, never through time: the layer dirs exist right
after the load, and the build then runs with the test-only fault hook armed at the first layer
unpack (`layer.unpacked@1`, pyrunc/faults.py): had FROM unpacked anything, the build would have
been SIGKILLed there. `--no-unpack` stores blobs only (the layers appear at the first FROM).
Failures: a layer that cannot be unpacked makes the verb exit non-zero with one line naming the
layer, tags nothing and leaves no half layer.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile

import pytest

from pybuild.image import chain_ids
from pybuild.store import Store
from pyrunc.faults import STEP_VAR, SWITCH, SWITCH_VALUE

PYBUILD = os.path.join(os.path.dirname(sys.executable), "pybuild")
ENV = {**os.environ, "PYBUILD_REGISTRY_BACKOFF": "0.01"}
NO_UNPACK_AT_ALL = {**ENV, SWITCH: SWITCH_VALUE, STEP_VAR: "layer.unpacked@1"}
DOCKERFILE = "FROM base\nRUN echo built > /built\n"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="pybuild builds need root")


def pb(root: str, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([PYBUILD, "--root", root, *args], capture_output=True, text=True, timeout=180,
                          env=env or ENV)
    if check:
        assert proc.returncode == 0, f"pybuild {' '.join(args)} -> {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc


def unpacked(root: str, name: str) -> dict[str, int]:
    """chainID -> inode of its layer dir, for every layer of `name` that is unpacked."""
    store = Store(root)
    image = store.load_image(name)
    return {c: os.stat(os.path.join(store.layers_root, c[7:])).st_ino
            for c in chain_ids(image.config.rootfs.diff_ids) if store.has_layer(c)}


def layer_entries(root: str) -> list[str]:
    path = os.path.join(root, "layers")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def build_without_unpack(root: str, tmp_path, base: str) -> None:
    """Build FROM `base` with the hook armed at the first unpack: it must not fire."""
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE.replace("base", base, 1))
    before = unpacked(root, base)
    res = pb(root, "build", "--network", "none", "-t", "built", str(ctx), check=False, env=NO_UNPACK_AT_ALL)
    assert res.returncode not in (-signal.SIGKILL, 137), "the build unpacked a layer at FROM"
    assert res.returncode == 0, res.stderr[-3000:]
    assert unpacked(root, base) == before  # the same dirs, not re-made
    assert pb(root, "run", "--rm", "--network", "none", "built", "cat", "/built").stdout == "built\n"


@pytest.fixture
def base_archive(tmp_path, busybox_rootfs):
    """A docker-archive of a two-layer `base` (busybox + a file), saved by pybuild."""
    root = str(tmp_path / "maker")
    pb(root, "import", busybox_rootfs, "-t", "bb", "-c", 'CMD ["sh"]', "--no-unpack")
    ctx = tmp_path / "basectx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM bb\nCOPY hello /srv/hello\n")
    (ctx / "hello").write_text("hello\n")
    pb(root, "build", "--network", "none", "-t", "base", str(ctx))
    archive = str(tmp_path / "base.tar")
    pb(root, "save", "base", "-o", archive, "--format", "docker-archive")
    return archive


@needs_root
def test_load_unpacks_and_build_unpacks_nothing(tmp_path, base_archive):
    root = str(tmp_path / "store")
    pb(root, "load", "-i", base_archive)
    image = Store(root).load_image("base")
    assert len(unpacked(root, "base")) == len(image.manifest.layers) == 2
    build_without_unpack(root, tmp_path, "base")


@needs_root
def test_load_no_unpack_leaves_it_to_from(tmp_path, base_archive):
    root = str(tmp_path / "store")
    pb(root, "load", "--no-unpack", "-i", base_archive)
    assert unpacked(root, "base") == {} and layer_entries(root) == []
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    # the armed hook does fire when FROM unpacks (so its silence above means something)
    res = pb(root, "build", "--network", "none", "-t", "built", str(ctx), check=False, env=NO_UNPACK_AT_ALL)
    assert res.returncode in (-signal.SIGKILL, 137), res.stderr[-2000:]
    pb(root, "fsck", "--repair")
    pb(root, "build", "--network", "none", "-t", "built", str(ctx))
    assert len(unpacked(root, "base")) == 2  # FROM did it


@needs_root
@pytest.mark.parametrize("source", ["dir", "tar"])
def test_import_unpacks_and_build_unpacks_nothing(tmp_path, busybox_rootfs, source):
    root = str(tmp_path / "store")
    src = busybox_rootfs
    if source == "tar":
        src = str(tmp_path / "rootfs.tar")
        with tarfile.open(src, "w:gz") as tar:
            tar.add(busybox_rootfs, arcname=".")
    pb(root, "import", src, "-t", "base", "-c", 'CMD ["sh"]')
    assert len(unpacked(root, "base")) == 1
    build_without_unpack(root, tmp_path, "base")


@needs_root
def test_import_no_unpack(tmp_path, busybox_rootfs):
    root = str(tmp_path / "store")
    pb(root, "import", busybox_rootfs, "-t", "base", "--no-unpack")
    assert unpacked(root, "base") == {} and layer_entries(root) == []


@needs_root
def test_pull_unpacks_and_build_unpacks_nothing(tmp_path, base_archive, registry):
    maker = str(tmp_path / "pusher")
    pb(maker, "load", "--no-unpack", "-i", base_archive)
    ref = f"{registry.url}/entry/base:1"
    pb(maker, "push", "base", ref)
    root = str(tmp_path / "store")
    pb(root, "pull", ref)
    assert len(unpacked(root, ref)) == 2
    build_without_unpack(root, tmp_path, ref)
    moved = str(tmp_path / "mover")
    pb(moved, "pull", "--no-unpack", ref)
    assert unpacked(moved, ref) == {} and layer_entries(moved) == []
    pb(root, "pull", ref)  # again: every layer reused
    assert len(unpacked(root, ref)) == 2


def _hostile_oci_archive(path: str, layer: bytes, diff_id: str | None = None) -> None:
    """An OCI archive of one image whose only layer is `layer` (an uncompressed tar); `diff_id`
    overrides the config's (a lie about the layer)."""
    import hashlib

    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id or digest(layer)]}}).encode()
    from pybuild.image import host_platform
    config = config.replace(b'"amd64"', json.dumps(host_platform()["architecture"]).encode())
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digest(config), "size": len(config)},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                       "digest": digest(layer), "size": len(layer)}]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest),
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "evil:1"}}]}).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in (("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
                           (f"blobs/sha256/{digest(config)[7:]}", config),
                           (f"blobs/sha256/{digest(manifest)[7:]}", manifest),
                           (f"blobs/sha256/{digest(layer)[7:]}", layer)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _tar(*entries: tuple[str, bytes | None]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


BIG = os.urandom(1 << 20)


@needs_root
@pytest.mark.parametrize("case", ["bad-whiteout", "diffid-lie"])
def test_load_whose_unpack_fails_tags_nothing_and_leaves_no_half_layer(tmp_path, case):
    """The layer's blob is sound (its digest matches) but it cannot become a layer: an invalid
    whiteout (refused by the unpacker after it wrote a 1 MiB file) or a config whose diffID is not
    the tar's (found at the end of the unpack)."""
    layer = _tar(("dir", None), ("dir/big", BIG), ("dir/.wh..." if case == "bad-whiteout" else "dir/ok", b""))
    archive = str(tmp_path / "evil.tar")
    _hostile_oci_archive(archive, layer, diff_id="sha256:" + "0" * 64 if case == "diffid-lie" else None)
    root = str(tmp_path / "store")
    res = pb(root, "load", "-i", archive, check=False)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pybuild: load {archive}: unpacking layer 1 of 1 (sha256:"), lines
    assert ("invalid whiteout name" if case == "bad-whiteout" else "digest mismatch") in lines[0]
    assert Store(root).list_refs() == []
    assert layer_entries(root) == []
    res = pb(root, "fsck")
    assert res.returncode == 0 and "error" not in res.stdout, res.stdout
    # the same archive without unpacking goes in (the blobs are sound); the failure then comes at FROM
    pb(root, "load", "--no-unpack", "-i", archive)
    assert [name for name, _ in Store(root).list_refs()] == ["evil:1"]


@needs_root
def test_import_whose_unpack_fails_tags_nothing(tmp_path):
    src = str(tmp_path / "evil.tar")
    with open(src, "wb") as fh:
        fh.write(_tar(("dir", None), ("dir/big", BIG), ("dir/.wh..", b"")))
    root = str(tmp_path / "store")
    res = pb(root, "import", src, "-t", "evil", check=False)
    lines = res.stderr.strip().splitlines()
    assert res.returncode != 0 and len(lines) == 1, res.stderr
    assert lines[0].startswith(f"pybuild: import {src}: unpacking layer 1 of 1") and "invalid whiteout name" in lines[0]
    assert Store(root).list_refs() == [] and layer_entries(root) == []



@needs_root
def test_pull_whose_unpack_fails_tags_nothing_and_leaves_no_half_layer(tmp_path, registry):
    """A registry image whose layer the unpacker refuses (pushed from a store that never unpacked
    it): the pull fails with one line naming the layer, tags nothing, keeps the verified blobs."""
    src = str(tmp_path / "evil.tar")
    with open(src, "wb") as fh:
        fh.write(_tar(("dir", None), ("dir/big", BIG), ("dir/.wh...", b"")))
    maker = str(tmp_path / "maker")
    pb(maker, "import", src, "-t", "evil", "--no-unpack")
    ref = f"{registry.url}/entry/evil:1"
    pb(maker, "push", "evil", ref)
    root = str(tmp_path / "store")
    res = pb(root, "pull", "-q", ref, check=False)
    lines = res.stderr.strip().splitlines()
    assert res.returncode != 0 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith(f"pybuild: pull {ref}: unpacking layer 1 of 1") and "invalid whiteout name" in lines[0]
    assert Store(root).list_refs() == [] and layer_entries(root) == []
    pb(root, "pull", "-q", "--no-unpack", ref)  # the blobs were sound: moving them works
    assert [name for name, _ in Store(root).list_refs()] == [ref]
