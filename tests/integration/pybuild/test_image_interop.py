"""The store and the exports as other tools see them: skopeo, umoci, podman, runc/pyrunc.

The busybox base is made the way the demo makes it: `pybuild import` of a folder holding Debian's
busybox-static. A second layer is committed from a real overlay upper dir (a deleted file, an opaque
directory), so the whiteouts checked here are the kernel's, not hand-made ones. ChainIDs are recomputed
from the layer tars that skopeo copies out, independently of pybuild.image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from pybuild.layer import commit_layer
from pybuild.mutate import Mutator
from pybuild.store import Store

PYBUILD = os.path.join(os.path.dirname(os.path.realpath(__import__("sys").executable)), "pybuild")
PYBUILD = PYBUILD if os.path.exists(PYBUILD) else os.path.join(os.path.dirname(__import__("sys").executable),
                                                                "pybuild")


def _pybuild(root: str, *args: str) -> str:
    proc = subprocess.run([PYBUILD, "--root", root, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


@pytest.fixture
def store_root(tmp_path, busybox_rootfs):
    """A store holding `busybox`: the busybox-static rootfs plus /tmp/lower-only (for the opaque-dir checks)."""
    rootfs = tmp_path / "base-rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    (rootfs / "tmp" / "lower-only").write_text("from the base\n")
    root = str(tmp_path / "store")
    _pybuild(root, "import", str(rootfs), "-t", "busybox", "-c", 'CMD ["sh"]')
    return root


def _overlay_child(root: str, tmp_path) -> str:
    """busybox + one layer from an overlay upper dir: rm /etc/group, an opaque /tmp, a new file."""
    store = Store(root)
    base = store.load_image("busybox")
    [lower] = store.ensure_layers(base.manifest, base.config)
    upper, work, merged = (tmp_path / n for n in ("upper", "work", "merged"))
    for d in (upper, work, merged):
        d.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={upper},workdir={work},redirect_dir=off,metacopy=off",
                    str(merged)], check=True)
    try:
        os.unlink(merged / "etc" / "group")
        shutil.rmtree(merged / "tmp")
        os.mkdir(merged / "tmp")
        (merged / "tmp" / "fresh").write_text("fresh\n")
        (merged / "hello.txt").write_text("hello from layer 2\n")
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    desc, digests = commit_layer(store, str(upper))
    mutator = Mutator(store, base)
    mutator.add_layer(desc, digests.diff_id, "/bin/sh -c rm /etc/group && ...")
    mutator.update(cmd=("cat", "/hello.txt"))
    store.tag("child", mutator.commit())
    return digests.diff_id


def test_skopeo_reads_the_store_and_chain_ids_recomputed(store_root, tmp_path):
    _need("skopeo")
    _overlay_child(store_root, tmp_path)
    store = Store(store_root)
    image = store.load_image("child")
    info = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{store_root}:child"], capture_output=True,
                                     text=True, check=True).stdout)
    assert info["Digest"] == image.descriptor.digest
    assert info["Layers"] == [l.digest for l in image.manifest.layers]
    out = tmp_path / "copied"
    subprocess.run(["skopeo", "copy", "--quiet", f"oci:{store_root}:child", f"dir:{out}"], check=True,
                   capture_output=True)
    manifest = json.loads((out / "manifest.json").read_text())
    diff_ids = []
    for layer in manifest["layers"]:
        blob = (out / layer["digest"][7:]).read_bytes()
        raw = subprocess.run(["gzip", "-dc"], input=blob, capture_output=True, check=True).stdout
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    assert diff_ids == list(image.config.rootfs.diff_ids)
    chain = [diff_ids[0], "sha256:" + hashlib.sha256(f"{diff_ids[0]} {diff_ids[1]}".encode()).hexdigest()]
    store.ensure_layers(image.manifest, image.config)
    assert sorted(os.listdir(os.path.join(store_root, "layers"))) == sorted(c[7:] for c in chain)
    with tarfile.open(fileobj=__import__("io").BytesIO(raw)) as tf:
        names = tf.getnames()
    assert "etc/.wh.group" in names and "tmp/.wh..wh..opq" in names and "hello.txt" in names


def test_umoci_unpacks_the_store(store_root, tmp_path):
    _need("umoci")
    _overlay_child(store_root, tmp_path)
    listed = subprocess.run(["umoci", "ls", "--layout", store_root], capture_output=True, text=True, check=True)
    assert set(listed.stdout.split()) == {"busybox", "child"}
    bundle = tmp_path / "umoci-bundle"
    subprocess.run(["umoci", "unpack", "--image", f"{store_root}:child", str(bundle)], check=True,
                   capture_output=True)
    rootfs = bundle / "rootfs"
    assert (rootfs / "hello.txt").read_text() == "hello from layer 2\n"
    assert not (rootfs / "etc" / "group").exists() and (rootfs / "etc" / "passwd").exists()
    assert os.listdir(rootfs / "tmp") == ["fresh"]


def test_pybuild_bundle_matches_umoci_and_runs(store_root, tmp_path, runtime):
    _overlay_child(store_root, tmp_path)
    bundle = tmp_path / "bundle"
    _pybuild(store_root, "bundle", "child", str(bundle))
    rootfs = bundle / "rootfs"
    assert not (rootfs / "etc" / "group").exists()
    assert os.listdir(rootfs / "tmp") == ["fresh"]
    spec = json.loads((bundle / "config.json").read_text())
    assert spec["process"]["args"] == ["cat", "/hello.txt"]
    proc = runtime("run", "-b", str(bundle), f"t-{os.getpid()}-interop")
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode() == "hello from layer 2\n"


def test_podman_loads_docker_archive(store_root, tmp_path):
    _need("podman")
    _overlay_child(store_root, tmp_path)
    archive = tmp_path / "child.tar"
    _pybuild(store_root, "export", "child", "-o", str(archive), "--format", "docker")
    image_id = Store(store_root).load_image("child").id
    name = f"localhost/pybuild-interop-{os.getpid()}:latest"
    _pybuild(store_root, "tag", "child", name)
    _pybuild(store_root, "export", name, "-o", str(archive), "--format", "docker")
    try:
        loaded = subprocess.run(["podman", "load", "-i", str(archive)], capture_output=True, text=True)
        assert loaded.returncode == 0, loaded.stderr
        info = json.loads(subprocess.run(["podman", "image", "inspect", name], capture_output=True, text=True,
                                         check=True).stdout)
        assert "sha256:" + info[0]["Id"] == image_id
        assert info[0]["Config"]["Cmd"] == ["cat", "/hello.txt"]
    finally:
        subprocess.run(["podman", "rmi", "-f", name], capture_output=True)


def test_oci_archive_export_reads_back_with_skopeo(store_root, tmp_path):
    _need("skopeo")
    archive = tmp_path / "bb.tar"
    _pybuild(store_root, "export", "busybox", "-o", str(archive))
    info = json.loads(subprocess.run(["skopeo", "inspect", f"oci-archive:{archive}:busybox"], capture_output=True,
                                     text=True, check=True).stdout)
    assert info["Digest"] == Store(store_root).resolve("busybox").digest


def test_corrupt_blob_is_a_clear_error(store_root, tmp_path):
    store = Store(store_root)
    image = store.load_image("busybox")
    path = store.blob_path(image.manifest.layers[0].digest)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    proc = subprocess.run([PYBUILD, "--root", store_root, "bundle", "busybox", str(tmp_path / "b")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"pybuild: blob {image.manifest.layers[0].digest}: digest mismatch")


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_archives_written_by_podman_import_back(store_root, tmp_path, fmt):
    """podman save (containers/image's writers) -> FROM docker-archive:/oci-archive: in pybuild."""
    _need("podman")
    from pybuild.baseimage import resolve

    name = f"localhost/pybuild-save-{os.getpid()}:latest"
    _pybuild(store_root, "tag", "busybox", name)
    archive = tmp_path / "in.tar"
    _pybuild(store_root, "export", name, "-o", str(archive), "--format", "docker")
    saved = tmp_path / f"saved-{fmt}.tar"
    try:
        subprocess.run(["podman", "load", "-i", str(archive)], capture_output=True, check=True)
        subprocess.run(["podman", "save", "--format", fmt, "-o", str(saved), name], capture_output=True, check=True)
    finally:
        subprocess.run(["podman", "rmi", "-f", name], capture_output=True)
    other = Store(str(tmp_path / "other"))
    image = resolve(other, f"{fmt}:{saved}")
    original = Store(store_root).load_image("busybox")
    assert image.config.rootfs.diff_ids == original.config.rootfs.diff_ids
    [layer] = other.ensure_layers(image.manifest, image.config)
    assert os.path.isfile(os.path.join(layer, "bin", "busybox"))


def test_unpacked_layers_stack_as_overlay_lowerdirs(store_root, tmp_path):
    """Layers unpacked by chainID carry overlay-form whiteouts: stacked read-only, the kernel hides what
    the upper layer deleted, exactly as the image says."""
    _overlay_child(store_root, tmp_path)
    store = Store(store_root)
    child = store.load_image("child")
    bottom, top = store.ensure_layers(child.manifest, child.config)
    merged = tmp_path / "ro"
    merged.mkdir()
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={top}:{bottom}", str(merged)],
                   check=True)
    try:
        assert not (merged / "etc" / "group").exists()
        assert (merged / "etc" / "passwd").exists()
        assert os.listdir(merged / "tmp") == ["fresh"]
        assert (merged / "hello.txt").read_text() == "hello from layer 2\n"
    finally:
        subprocess.run(["umount", str(merged)], check=True)
