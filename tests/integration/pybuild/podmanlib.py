"""podman as the oracle of the container verbs' tests (imported as `podmanlib`).

One busybox image per module, imported into podman's store under a random name (with the
same /data content and VOLUME the pybuild tests use), and every container and volume a test
makes removed at teardown. Root lacks CAP_SYS_RESOURCE here, so `podman run` gets rlimits that
fit under the hard limits it has (ULIMITS).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tarfile

import pytest

ULIMITS = ("--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768")
SLEEP = ("sleep", "600")


def add_data(rootfs: str) -> str:
    """The image content the volume tests copy up: /data/f and /data/sub/g."""
    os.makedirs(os.path.join(rootfs, "data", "sub"), exist_ok=True)
    with open(os.path.join(rootfs, "data", "f"), "w") as fh:
        fh.write("from-image\n")
    with open(os.path.join(rootfs, "data", "sub", "g"), "w") as fh:
        fh.write("deep\n")
    return rootfs


def tar_of(rootfs: str, path: str) -> str:
    with tarfile.open(path, "w") as tar:
        tar.add(rootfs, arcname=".")
    return path


class Podman:
    def __init__(self, image: str, volume_image: str) -> None:
        self.image = image
        self.volume_image = volume_image
        self.containers: list[str] = []
        self.volumes: list[str] = []

    def __call__(self, *args: str, check: bool = False, input: str | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess:
        res = subprocess.run(["podman", *args], capture_output=True, text=True, input=input, timeout=timeout,
                             stdin=None if input is not None else subprocess.DEVNULL)
        if check and res.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} -> {res.returncode}\n{res.stderr}")
        return res

    def run_d(self, *args: str, image: str | None = None) -> str:
        name = f"pbt16-{secrets.token_hex(4)}"
        self.containers.append(name)
        self("run", "-d", "--name", name, *ULIMITS, *args, image or self.image, "sleep", "600", check=True)
        return name

    def volume(self, *args: str) -> str:
        name = f"pbt16v-{secrets.token_hex(4)}"
        self.volumes.append(name)
        self("volume", "create", *args, name, check=True)
        return name

    def cleanup(self) -> None:
        if self.containers:
            self("rm", "-f", "-v", "-t", "0", *self.containers)
        if self.volumes:
            self("volume", "rm", "-f", *self.volumes)


@pytest.fixture(scope="module")
def podman_images(tmp_path_factory):
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    from test_build_common import make_busybox_rootfs

    d = tmp_path_factory.mktemp("podman-bb")
    tar = tar_of(add_data(make_busybox_rootfs(str(d / "rootfs"))), str(d / "bb.tar"))
    tag = secrets.token_hex(4)
    plain, withvol = f"localhost/pbt16-bb-{tag}", f"localhost/pbt16-bbvol-{tag}"
    for name, changes in ((plain, ()), (withvol, ("-c", "VOLUME /data"))):
        res = subprocess.run(["podman", "import", "-c", 'CMD ["sh"]', *changes, tar, name], capture_output=True,
                             text=True)
        if res.returncode != 0:
            pytest.skip(f"podman import failed: {res.stderr.strip()}")
    # A container that lives as long as the module: podman's storage keeps its own mount
    # (/var/lib/containers/storage/overlay) while a container exists and drops it with the last
    # one, which the leak guard would otherwise see come and go inside a test.
    anchor = f"pbt16-anchor-{tag}"
    probe = subprocess.run(["podman", "run", "-d", "--name", anchor, "--network", "none", *ULIMITS, plain, "sleep",
                            "100000"], capture_output=True, text=True)
    if probe.returncode != 0:
        subprocess.run(["podman", "rm", "-f", "-t", "0", anchor], capture_output=True)
        subprocess.run(["podman", "rmi", "-f", plain, withvol], capture_output=True)
        pytest.skip(f"podman cannot run containers here: {probe.stderr.strip()[-300:]}")
    yield plain, withvol
    subprocess.run(["podman", "rm", "-f", "-t", "0", anchor], capture_output=True)
    subprocess.run(["podman", "rmi", "-f", plain, withvol], capture_output=True)


@pytest.fixture
def podman(podman_images):
    p = Podman(*podman_images)
    yield p
    p.cleanup()


def one_line(res: subprocess.CompletedProcess) -> str:
    """The refusal as the guide wants it: no traceback, a single `pybuild: …` line."""
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pybuild: "), res.stderr
    return lines[0]


@pytest.fixture(name="pb")
def busybox_pb(tmp_path):
    """pybuild on a store of its own holding the busybox image (+ /data) as `busybox`; the
    containers a test left are removed at teardown. A test module imports it; tests ask for `pb`."""
    from netlib import Pb
    from test_build_common import make_busybox_rootfs

    p = Pb(str(tmp_path / "store"))
    tar = tar_of(add_data(make_busybox_rootfs(str(tmp_path / "rootfs"))), str(tmp_path / "bb.tar"))
    p("import", tar, "-t", "busybox", "-c", 'CMD ["sh"]')
    yield p
    p.cleanup()


def container_id(pb, name: str) -> str:
    return pb("inspect", "--type", "container", "-f", "{{.Id}}", name).stdout.strip()
