"""podman drives pyrunc as its OCI runtime (`podman --runtime pyrunc`): run, exec, rm."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import uuid

import pytest

from testlib import PYRUNC, install_applets

pytestmark = pytest.mark.peer
ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]  # no CAP_SYS_RESOURCE here


@pytest.fixture
def podman_image(tmp_path):
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    root = tmp_path / "img"
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    install_applets(str(root / "bin"))
    tar = tmp_path / "img.tar"
    with tarfile.open(tar, "w") as tf:
        tf.add(root, arcname=".")
    name = f"localhost/pyrunc-test-{uuid.uuid4().hex[:8]}:latest"
    subprocess.run(["podman", "import", str(tar), name], check=True, capture_output=True)
    yield name
    subprocess.run(["podman", "rmi", "-f", name], capture_output=True)


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["podman", "--runtime", PYRUNC, *args], capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {proc.returncode}\n{proc.stderr}")
    return proc


def test_podman_run_with_pyrunc(podman_image):
    out = podman("run", "--rm", "--network", "none", *ULIMITS, podman_image, "sh", "-c",
                 "echo hi; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; echo $$").stdout.split()
    assert out[0] == "hi" and out[-1] == "1"
    assert out[out.index("Seccomp:") + 1] == "2"  # podman's default profile is loaded
    assert podman("run", "--rm", "--network", "none", *ULIMITS, podman_image, "sh", "-c", "exit 4",
                  check=False).returncode == 4


def test_podman_exec_and_rm(podman_image):
    name = f"pyrunc-test-{uuid.uuid4().hex[:8]}"
    podman("run", "-d", "--name", name, "--network", "none", *ULIMITS, podman_image, "sleep", "60")
    try:
        out = podman("exec", name, "sh", "-c", "echo $$; cat /proc/1/cmdline | tr '\\0' ' '").stdout.split()
        assert int(out[0]) > 1 and out[1:] == ["sleep", "60"]
    finally:
        podman("rm", "-f", name)
    assert name not in podman("ps", "-a", "--format", "{{.Names}}").stdout
