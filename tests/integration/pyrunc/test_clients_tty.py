"""The clients' terminal scenarios, each with pyrunc and with runc as the runtime:
`podman run -t`, `podman exec -t`, `ctr run -t`, `ctr task exec -t`, `docker run -t`,
`docker exec -t`. The client sits on a pty pair that plays the user's terminal
(ttylib.drive); the container reports its tty and size, reads a line typed at the
terminal, and exits with a status; pyrunc's session must read the same as runc's.

The clients are private to this module and stopped at its end (clientlib.py).
"""

from __future__ import annotations

import shutil
import subprocess
import uuid

import pytest

from clientlib import IMAGE, ULIMITS, Containerd, Podman
from testlib import unmount_under
from ttylib import drive

pytestmark = pytest.mark.peer
RUNTIMES = ["pyrunc", "runc"]
# sleep: the clients resize the pty to the user's terminal once the process runs (they all
# do it after start); the size is read after that. The user types "hello" + Enter.
SCRIPT = "sleep 0.5; tty; stty size; echo READY; read x; echo GOT $x; exit 3"
STEPS = ((b"READY", b"hello\r"),)
EXPECTED = ["/dev/pts/0", "40 120", "READY", "hello", "GOT hello"]


def _session(res) -> list[str]:
    """The lines of a session, without the clients' own chatter."""
    return [line.strip() for line in res.text.replace("\r", "").split("\n") if line.strip()]


def _check(res) -> None:
    assert res.status == 3, (res.status, res.text)
    lines = _session(res)
    assert lines[-len(EXPECTED):] == EXPECTED, res.text
    assert res.restored, "the user's terminal settings are restored"


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed")
    import tempfile

    work = tempfile.mkdtemp(prefix="ptty-", dir="/tmp")  # podman wants a runroot under 50 characters
    try:
        p = Podman(work)
        yield p
        p.close()
    finally:
        unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory):
    for tool in ("containerd", "ctr", "containerd-shim-runc-v2"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    c = Containerd(str(tmp_path_factory.mktemp("containerd-tty")))
    yield c
    c.close()


@pytest.fixture(scope="module")
def docker(containerd):
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        pytest.skip("docker.io is not installed")
    return containerd.start_docker()


def _name() -> str:
    return f"tty-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_podman_run_t(podman, runtime):
    res = drive(podman.cmd(runtime, "run", "--rm", "-it", "--network", "none", *ULIMITS,
                           "pyrunc-tty-busybox", "sh", "-c", SCRIPT), steps=STEPS, timeout=120)
    _check(res)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_podman_exec_t(podman, runtime):
    name = _name()
    subprocess.run(podman.cmd(runtime, "run", "-d", "--name", name, "--network", "none", *ULIMITS,
                              "pyrunc-tty-busybox", "sleep", "120"), check=True, capture_output=True, timeout=120)
    try:
        res = drive(podman.cmd(runtime, "exec", "-it", name, "sh", "-c", SCRIPT), steps=STEPS, timeout=120)
    finally:
        subprocess.run(podman.cmd(runtime, "rm", "-f", "-t", "0", name), capture_output=True, timeout=120)
    _check(res)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_ctr_run_t(containerd, runtime):
    res = drive(containerd.ctr(runtime, "run", "--rm", "-t", IMAGE, _name(), "sh", "-c", SCRIPT),
                steps=STEPS, timeout=120)
    _check(res)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_ctr_task_exec_t(containerd, runtime):
    name = _name()
    subprocess.run(containerd.ctr(runtime, "run", "-d", IMAGE, name, "sleep", "120"), check=True,
                   capture_output=True, timeout=120)
    try:
        res = drive([*containerd.ctr_base(), "task", "exec", "-t", "--exec-id", "e1", name, "sh", "-c", SCRIPT],
                    steps=STEPS, timeout=120)
    finally:
        subprocess.run([*containerd.ctr_base(), "task", "kill", "-s", "KILL", name], capture_output=True, timeout=60)
        subprocess.run([*containerd.ctr_base(), "task", "delete", "-f", name], capture_output=True, timeout=60)
        subprocess.run([*containerd.ctr_base(), "containers", "delete", name], capture_output=True, timeout=60)
    _check(res)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_docker_run_t(docker, runtime):
    res = drive([*docker, "run", "--rm", "-it", "--network", "none", "--runtime", f"tty-{runtime}", IMAGE,
                 "sh", "-c", SCRIPT], steps=STEPS, timeout=120)
    _check(res)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_docker_exec_t(docker, runtime):
    name = _name()
    subprocess.run([*docker, "run", "-d", "--name", name, "--network", "none", "--runtime", f"tty-{runtime}",
                    IMAGE, "sleep", "120"], check=True, capture_output=True, timeout=120)
    try:
        res = drive([*docker, "exec", "-it", name, "sh", "-c", SCRIPT], steps=STEPS, timeout=120)
    finally:
        subprocess.run([*docker, "rm", "-f", name], capture_output=True, timeout=120)
    _check(res)
