"""podman as an ordinary user with pyrunc as its runtime (issue 19), runc as the oracle:
`run --rm` and `exec`, with `--network none` (slirp4netns needs /dev/net/tun, root-only here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import uuid

import pytest

from testlib import PYRUNC, install_applets

pytestmark = pytest.mark.peer
RUNTIMES = ["pyrunc", "runc"]


@pytest.fixture(scope="module")
def user_image(rootless_user, tmp_path_factory):
    """A busybox image in the user's own podman storage (~/.local/share/containers)."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    u = rootless_user
    root = tmp_path_factory.mktemp("podimg") / "img"
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    install_applets(str(root / "bin"))
    tar = os.path.join(u.mkdir("images"), "img.tar")
    with tarfile.open(tar, "w") as tf:
        tf.add(root, arcname=".")
    os.chown(tar, u.uid, u.gid)
    name = f"localhost/pyrt-{uuid.uuid4().hex[:8]}:latest"
    p = u.run(["podman", "import", tar, name])
    if p.returncode != 0:
        pytest.skip(f"rootless podman cannot import an image here: {p.stderr.strip()}")
    yield name
    u.run(["podman", "rmi", "-f", name])


def podman(user, runtime: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    binary = PYRUNC if runtime == "pyrunc" else shutil.which(runtime)
    p = user.run(["podman", "--runtime", binary, *args])
    if check and p.returncode != 0:
        raise AssertionError(f"podman --runtime {runtime} {' '.join(args)}: {p.returncode}\n{p.stderr}")
    return p


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_podman_run_rm(rootless_user, user_image, runtime):
    u = rootless_user
    out = podman(u, runtime, "run", "--rm", "--network", "none", user_image, "sh", "-c",
                 "id -u; cat /proc/self/uid_map; grep -E '^Seccomp:' /proc/self/status; echo $$").stdout.split()
    assert out[0] == "0" and out[-1] == "1"
    assert out[1:4] == ["0", str(u.uid), "1"]
    assert out[4:7] == ["1", str(u.subuid[0]), str(u.subuid[1])]  # podman maps the user's ranges
    assert out[out.index("Seccomp:") + 1] == "2"
    assert podman(u, runtime, "run", "--rm", "--network", "none", user_image, "sh", "-c", "exit 4",
                  check=False).returncode == 4


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_podman_exec(rootless_user, user_image, runtime):
    u = rootless_user
    name = f"pyrt-{uuid.uuid4().hex[:8]}"
    podman(u, runtime, "run", "-d", "--name", name, "--network", "none", user_image, "sleep", "60")
    try:
        out = podman(u, runtime, "exec", name, "sh", "-c", "echo $$; id -u; cat /proc/1/cmdline | tr '\\0' ' '")
        pid, uid, *cmd = out.stdout.split()
        assert int(pid) > 1 and uid == "0" and cmd == ["sleep", "60"]
        assert podman(u, runtime, "exec", name, "sh", "-c", "exit 7", check=False).returncode == 7
    finally:
        podman(u, runtime, "rm", "-f", "-t", "0", name)
    assert name not in podman(u, runtime, "ps", "-a", "--format", "{{.Names}}").stdout


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_podman_run_host_network(rootless_user, user_image, runtime):
    """--network host: no network namespace, so /sys is the host's bound (sysfs needs its own netns)."""
    u = rootless_user
    out = podman(u, runtime, "run", "--rm", "--network", "host", user_image, "sh", "-c",
                 "ls /sys/class/net; id -u").stdout.split()
    assert "lo" in out and out[-1] == "0"
    host = set(os.listdir("/sys/class/net")) - {"lo"}  # other tests add and remove veths meanwhile
    assert not host or set(out[:-1]) & host, (out, host)
