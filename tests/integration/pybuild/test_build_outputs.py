"""--output exporters, ADD from a URL with --checksum, the docker-style CLI form, and
other tools reading what pybuild wrote (skopeo on the store, podman load on a docker archive)."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading

import pytest

from test_build_common import base_image_tar, pb, write_context  # noqa: F401

DF = "FROM busybox\nRUN echo out > /out.txt && rm /bin/vi\nCMD [\"cat\", \"/out.txt\"]\n"


def test_output_local_and_tar(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": DF})
    local = tmp_path / "local"
    tar_path = tmp_path / "fs.tar"
    pb.build(ctx, "-t", "outs", "--output", f"type=local,dest={local}", "--output", f"type=tar,dest={tar_path}")
    assert (local / "out.txt").read_text() == "out\n"
    assert not os.path.lexists(local / "bin" / "vi") and (local / "bin" / "busybox").exists()
    with tarfile.open(tar_path) as tar:
        names = {m.name.lstrip("./").rstrip("/") for m in tar.getmembers()}
    assert "out.txt" in names and "bin/vi" not in names and not any(".wh." in n for n in names)


def test_output_oci_archive_is_readable_by_skopeo(pb, tmp_path):
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": DF})
    archive = tmp_path / "img.tar"
    pb.build(ctx, "-t", "ociout", "--output", f"type=oci,dest={archive}")
    res = subprocess.run(["skopeo", "inspect", "--config", f"oci-archive:{archive}"], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["config"]["Cmd"] == ["cat", "/out.txt"]
    # the store itself is an OCI layout
    res = subprocess.run(["skopeo", "inspect", "--config", f"oci:{pb.root}:ociout"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["rootfs"]["diff_ids"] == pb.config("ociout")["rootfs"]["diff_ids"]


def test_docker_archive_output_loads_in_podman(pb, tmp_path):
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": DF})
    archive = tmp_path / "docker.tar"
    pb.build(ctx, "-t", "dockerout", "--output", f"type=docker,dest={archive}")
    import tempfile

    storage = tmp_path / "podman"
    runroot = tempfile.mkdtemp(prefix="pbr-", dir="/tmp")   # podman wants a runroot under 50 chars
    base = ["podman", "--root", str(storage / "root"), "--runroot", runroot, "--storage-driver", "vfs"]
    try:
        res = subprocess.run([*base, "load", "-i", str(archive)], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        res = subprocess.run([*base, "image", "inspect", "dockerout"], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)[0]["Config"]["Cmd"] == ["cat", "/out.txt"]
    finally:
        subprocess.run([*base, "rmi", "--all", "--force"], capture_output=True)
        shutil.rmtree(runroot, ignore_errors=True)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # type: ignore[no-untyped-def]
        pass


@pytest.fixture
def http_dir(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = lambda *a, **kw: _Quiet(*a, directory=str(served), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_add_url_with_checksum(pb, tmp_path, http_dir):
    served, url = http_dir
    payload = b"downloaded payload\n"
    (served / "file.txt").write_bytes(payload)
    good = "sha256:" + hashlib.sha256(payload).hexdigest()
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": f"FROM busybox\nADD {url}/file.txt /dl/\n"
                                                         f"ADD --checksum={good} {url}/file.txt /checked\n"})
    pb.build(ctx, "-t", "urls")
    files = pb.flatten("urls")
    assert files["dl/file.txt"][1] == payload and files["dl/file.txt"][0].mode & 0o777 == 0o600
    assert files["checked"][1] == payload
    bad = write_context(tmp_path / "bad", {"Dockerfile": f"FROM busybox\nADD --checksum=sha256:{'0' * 64} "
                                                         f"{url}/file.txt /x\n"})
    res = pb.build(bad, check=False)
    assert res.returncode != 0 and "checksum mismatch" in res.stderr and "Traceback" not in res.stderr


def test_docker_style_command_line(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": DF})
    res = subprocess.run([sys.executable, "-m", "pybuild", "--root", pb.root, "--runtime", pb.runtime,
                          "-t", "cli-form", "-q", "."], cwd=ctx, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == pb.manifest("cli-form")["config"]["digest"]
