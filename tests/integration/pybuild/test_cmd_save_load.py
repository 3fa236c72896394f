"""`pybuild save` / `pybuild load`: multi-image docker-archive and oci-archive, read back by pybuild,
skopeo, podman and docker's own daemon (a private dockerd on a private containerd, clientlib)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import pytest

from pybuild.store import Store

PYBUILD = os.path.join(os.path.dirname(sys.executable), "pybuild")


def pb(root, *args, check=True, input=None):
    proc = subprocess.run([PYBUILD, "--root", root, *args], capture_output=True, timeout=120, input=input)
    if check:
        assert proc.returncode == 0, proc.stderr.decode()
    return proc


@pytest.fixture
def store_root(tmp_path, busybox_rootfs):
    root = str(tmp_path / "store")
    pb(root, "import", busybox_rootfs, "-t", "busybox", "-c", 'CMD ["sh"]')
    extra = tmp_path / "extra"
    (extra / "srv").mkdir(parents=True)
    (extra / "srv" / "hello").write_text("hello\n")
    from pybuild.layer import commit_layer
    from pybuild.mutate import Mutator
    store = Store(root)
    desc, digests = commit_layer(store, str(extra))
    mutator = Mutator(store, store.load_image("busybox"))
    mutator.add_layer(desc, digests.diff_id, "COPY srv /srv")
    store.tag("app:1", mutator.commit())
    pb(root, "tag", "app:1", "127.0.0.1:5000/team/app:1")
    return root


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_save_load_roundtrip_multi_image(store_root, tmp_path, fmt):
    archive = str(tmp_path / "images.tar")
    pb(store_root, "save", "--format", fmt, "-o", archive, "busybox", "app:1", "127.0.0.1:5000/team/app:1")
    fresh = str(tmp_path / "fresh")
    out = pb(fresh, "load", "-i", archive).stdout.decode()
    assert {"Loaded image: busybox:latest", "Loaded image: app:1", "Loaded image: 127.0.0.1:5000/team/app:1"} <= \
        set(out.splitlines())
    src, dst = Store(store_root), Store(fresh)
    for name in ("busybox", "app:1", "127.0.0.1:5000/team/app:1"):
        a, b = src.load_image(name), dst.load_image(name)
        assert a.id == b.id  # the image ID (config digest) survives both formats
        if fmt == "oci-archive":
            assert a.descriptor.digest == b.descriptor.digest  # blobs as they are: same manifest
    with tarfile.open(archive) as tar:  # the shared base layer is in the archive once
        names = tar.getnames()
    assert len([n for n in names if n.endswith(".tar") or n.startswith("blobs/sha256/")]) == \
        (2 if fmt == "docker-archive" else 2 + 2 + 2)  # layers; or layers + configs + manifests
    again = pb(fresh, "load", input=open(archive, "rb").read())  # from stdin too
    assert b"Loaded image: app:1" in again.stdout


def test_skopeo_reads_both_archives(store_root, tmp_path):
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    docker, oci = str(tmp_path / "d.tar"), str(tmp_path / "o.tar")
    pb(store_root, "save", "-o", docker, "busybox", "app:1")
    pb(store_root, "save", "--format", "oci-archive", "-o", oci, "busybox", "app:1")
    app = Store(store_root).load_image("app:1")
    for ref in (f"docker-archive:{docker}:app:1", f"oci-archive:{oci}:app:1"):
        info = json.loads(subprocess.run(["skopeo", "inspect", "--config", ref], capture_output=True, text=True,
                                         check=True).stdout)
        assert info["rootfs"]["diff_ids"] == list(app.config.rootfs.diff_ids)
    info = json.loads(subprocess.run(["skopeo", "inspect", f"oci-archive:{oci}:app:1"], capture_output=True,
                                     text=True, check=True).stdout)
    assert info["Digest"] == app.descriptor.digest


def test_podman_loads_what_pybuild_saved(store_root, tmp_path):
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    docker, oci = str(tmp_path / "d.tar"), str(tmp_path / "o.tar")
    pb(store_root, "save", "-o", docker, "busybox", "127.0.0.1:5000/team/app:1")
    pb(store_root, "save", "--format", "oci-archive", "-o", oci, "app:1")  # podman 4.3 loads one per OCI archive
    runroot = tempfile.mkdtemp(prefix="pbarc", dir="/tmp")  # podman: runroot under 50 characters
    podman = ["podman", "--root", str(tmp_path / "podman"), "--runroot", runroot, "--storage-driver", "vfs"]
    try:
        for archive in (docker, oci):
            proc = subprocess.run([*podman, "load", "-i", archive], capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr
        listed = subprocess.run([*podman, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
                                capture_output=True, text=True, check=True).stdout
        app_id = Store(store_root).load_image("app:1").id[7:19]
        assert f"127.0.0.1:5000/team/app:1 {app_id}" in listed
        assert "localhost/busybox:latest" in listed and f"localhost/app:1 {app_id}" in listed
    finally:
        subprocess.run([*podman, "rmi", "-a", "-f"], capture_output=True)
        shutil.rmtree(runroot, ignore_errors=True)


def test_docker_loads_and_runs_what_pybuild_saved(store_root, tmp_path):
    """`docker load` of a multi-image docker-archive: every name comes back with pybuild's image ID,
    and the loaded image runs (under dockerd, through containerd, with pyrunc as the runtime)."""
    for tool in ("dockerd", "docker", "containerd", "ctr", "containerd-shim-runc-v2"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (docker.io, containerd)")
    from clientlib import Containerd

    archive = str(tmp_path / "d.tar")
    pb(store_root, "save", "-o", archive, "busybox", "app:1", "127.0.0.1:5000/team/app:1")
    work = tempfile.mkdtemp(prefix="pbdk", dir="/tmp")  # dockerd: socket paths under 108 characters
    daemon = None
    try:
        daemon = Containerd(work)
        docker = daemon.start_docker()
        proc = subprocess.run([*docker, "load", "-i", archive], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        listed = subprocess.run([*docker, "images", "--no-trunc", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
                                capture_output=True, text=True, check=True, timeout=60).stdout.splitlines()
        src = Store(store_root)
        for name in ("busybox:latest", "app:1", "127.0.0.1:5000/team/app:1"):
            assert f"{name} {src.load_image(name).id}" in listed, listed
        run = subprocess.run([*docker, "run", "--rm", "--network", "none", "--runtime", "tty-pyrunc", "app:1",
                              "cat", "/srv/hello"], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and run.stdout == "hello\n", run.stderr
    finally:
        if daemon is not None:
            daemon.close()
        shutil.rmtree(work, ignore_errors=True)


def test_load_bad_archives_tag_nothing(store_root, tmp_path):
    fresh = str(tmp_path / "fresh")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    proc = pb(fresh, "load", "-i", str(junk), check=False)
    assert proc.returncode == 1 and proc.stderr.decode().startswith("pybuild: ") and b"Traceback" not in proc.stderr
    # a layer whose bytes do not match the config's diffID: refused, nothing tagged
    archive = str(tmp_path / "d.tar")
    pb(store_root, "save", "-o", archive, "app:1")
    bad = str(tmp_path / "bad.tar")
    with tarfile.open(archive) as src, tarfile.open(bad, "w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read()
            if member.name.endswith(".tar") and len(data) > 2048:
                data = data[:1024] + bytes([data[1024] ^ 1]) + data[1025:]
            import io
            dst.addfile(member, io.BytesIO(data))
    proc = pb(fresh, "load", "-i", bad, check=False)
    assert proc.returncode == 1 and b"digest mismatch" in proc.stderr
    assert json.load(open(os.path.join(fresh, "index.json")))["manifests"] == []
