"""The container clients with pyrunc or runc as their OCI runtime, each private to the test
that uses it and stopped at teardown (the approach of bench/clients.sh): podman with its
own --root/--runroot; a containerd of its own (root, state, socket) for ctr, with
--runc-root in the test's dir; a dockerd of its own (data-root, exec-root, socket, no
bridge, no iptables) on that containerd, with `--add-runtime` for each runtime.

The image is busybox-static as a docker-archive (one layer), made here."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time

from testlib import BUSYBOX, PYRUNC, unmount_under

IMAGE = "docker.io/library/pyrunc-tty-busybox:latest"
ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]  # no CAP_SYS_RESOURCE here
RUNTIMES = {"pyrunc": PYRUNC, "runc": shutil.which("runc") or "/usr/sbin/runc"}


def _layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add_dir(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for d in ("bin", "dev", "etc", "proc", "sys", "tmp"):
            add_dir(d)
        with open(BUSYBOX, "rb") as f:
            data = f.read()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
        for name in applets:
            if name != "busybox":
                link = tarfile.TarInfo(f"bin/{name}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        tar.addfile(info, io.BytesIO(passwd))
    return buf.getvalue()


def docker_archive(path: str) -> str:
    """A docker-archive (docker save's format) of busybox-static, tagged IMAGE."""
    layer = _layer()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                                    "Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [IMAGE.split("/", 1)[1].replace("library/", "")],
                            "Layers": ["layer/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in ((config_name, config), ("layer/layer.tar", layer), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _wait_socket(path: str, proc: subprocess.Popen, log: str, what: str) -> None:
    for _ in range(400):
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with open(log) as f:
        raise RuntimeError(f"{what} did not start: {f.read()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Podman:
    def __init__(self, work: str) -> None:
        self.base = ["podman", "--root", f"{work}/podman", "--runroot", f"{work}/podman-run",
                     "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
        out = subprocess.run([*self.base, "load", "-q", "-i", docker_archive(f"{work}/image.tar")],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"podman load: {out.stderr.strip()}")

    def cmd(self, runtime: str, *args: str) -> list[str]:
        return [*self.base, "--runtime", RUNTIMES[runtime], *args]

    def close(self) -> None:
        subprocess.run([*self.base, "rm", "-af"], capture_output=True, timeout=120)
        subprocess.run([*self.base, "system", "reset", "-f"], capture_output=True, timeout=120)


class Containerd:
    """A private containerd for ctr (namespace "pyrunc-tty"), and a private dockerd on it."""

    def __init__(self, work: str) -> None:
        self.work = work
        self.sock = f"{work}/containerd.sock"
        with open(f"{work}/containerd.toml", "w") as f:
            f.write(f'version = 2\nroot = "{work}/containerd/root"\nstate = "{work}/containerd/state"\n'
                    f'[grpc]\n  address = "{self.sock}"\n[ttrpc]\n  address = "{self.sock}.ttrpc"\n'
                    '[plugins."io.containerd.grpc.v1.cri"]\n  disable_cgroup = true\n')
        self.log = f"{work}/containerd.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(["containerd", "--config", f"{work}/containerd.toml"], stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.docker_proc: subprocess.Popen | None = None
        try:
            _wait_socket(self.sock, self.proc, self.log, "containerd")
            subprocess.run(self.ctr_base() + ["images", "import", docker_archive(f"{work}/image.tar")],
                           check=True, capture_output=True, timeout=120)
        except BaseException:
            self.close()
            raise

    def ctr_base(self) -> list[str]:
        return ["ctr", "-a", self.sock, "-n", "pyrunc-tty"]

    def ctr(self, runtime: str, verb: str, *args: str) -> list[str]:
        """`ctr run` with the runtime's binary and a private runtime root."""
        return [*self.ctr_base(), verb, "--runc-binary", RUNTIMES[runtime],
                "--runc-root", f"{self.work}/ctr-{runtime}-root", *args]

    def start_docker(self) -> list[str]:
        if self.docker_proc is None:
            adds = [x for name, path in RUNTIMES.items() for x in ("--add-runtime", f"tty-{name}={path}")]
            log = f"{self.work}/docker.log"
            with open(log, "w") as f:
                self.docker_proc = subprocess.Popen(
                    ["dockerd", "--data-root", f"{self.work}/docker", "--exec-root", f"{self.work}/docker-exec",
                     "--pidfile", f"{self.work}/docker.pid", "-H", f"unix://{self.work}/docker.sock",
                     "--containerd", self.sock, "--bridge", "none", "--iptables=false", "--ip-masq=false",
                     "--storage-driver", "overlay2", *adds], stdout=f, stderr=subprocess.STDOUT,
                    start_new_session=True)
            _wait_socket(f"{self.work}/docker.sock", self.docker_proc, log, "dockerd")
            subprocess.run(self.docker() + ["load", "-q", "-i", f"{self.work}/image.tar"], check=True,
                           capture_output=True, timeout=120)
        return self.docker()

    def docker(self) -> list[str]:
        return ["docker", "-H", f"unix://{self.work}/docker.sock"]

    def close(self) -> None:
        if self.docker_proc is not None:
            subprocess.run(self.docker() + ["rm", "-f"] + subprocess.run(
                self.docker() + ["ps", "-aq"], capture_output=True, text=True, timeout=60).stdout.split(),
                capture_output=True, timeout=120)
            stop(self.docker_proc)
        out = subprocess.run(self.ctr_base() + ["containers", "ls", "-q"], capture_output=True, text=True,
                             timeout=60).stdout.split()
        for cid in out:
            subprocess.run(self.ctr_base() + ["task", "kill", "-s", "KILL", cid], capture_output=True, timeout=60)
            subprocess.run(self.ctr_base() + ["task", "delete", "-f", cid], capture_output=True, timeout=60)
            subprocess.run(self.ctr_base() + ["containers", "delete", cid], capture_output=True, timeout=60)
        stop(self.proc)
        unmount_under(self.work)
        _remove_empty_cgroups("pyrunc-tty")  # the parent cgroup containerd made for the namespace


def _remove_empty_cgroups(name: str) -> None:
    """rmdir /sys/fs/cgroup/*/NAME and its sub-dirs, deepest first; a non-empty one stays (EBUSY)."""
    for ctl in os.listdir("/sys/fs/cgroup"):
        top = os.path.join("/sys/fs/cgroup", ctl, name)
        if not os.path.isdir(top):
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(dirpath)
            except OSError:
                pass
