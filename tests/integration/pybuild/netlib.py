"""Helpers of the network and `pybuild run` tests (imported as `netlib`).

Each test gets its own store and its own bridge (PYBUILD_BRIDGE=pbt<random>,
range chosen by pybuild among the free ones), so tests neither see each
other's containers nor the `pybuild0` of builds running beside them.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time

from test_build_common import make_busybox_rootfs


def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def nft_tables() -> set[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if "pybuild" in line}


class Pb:
    """The pybuild CLI on one store and one bridge."""

    def __init__(self, root: str, bridge: str | None = None, env: dict | None = None) -> None:
        self.root = root
        self.bridge = bridge or f"pbt{secrets.token_hex(3)}"
        self.env = dict(os.environ, PYBUILD_BRIDGE=self.bridge, **(env or {}))
        self.env.pop("PYBUILD_SUBNET", None)

    def __call__(self, *args: str, check: bool = True, timeout: float = 120, env: dict | None = None,
                 input: str | None = None) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "pybuild", "--root", self.root, *args]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                             env={**self.env, **(env or {})})
        if check and res.returncode != 0:
            raise AssertionError(f"pybuild {' '.join(args)} -> {res.returncode}\n{res.stdout}\n{res.stderr}")
        return res

    def popen(self, *args: str, env: dict | None = None) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "pybuild", "--root", self.root, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**self.env, **(env or {})})

    def cleanup(self) -> None:
        ids = self("ps", "-aq", "--no-trunc", check=False).stdout.split()
        if ids:
            self("rm", "-f", *ids, check=False)


def make_store(tmp_path) -> Pb:
    root = str(tmp_path / "store")
    rootfs = make_busybox_rootfs(str(tmp_path / "bbroot"))
    pb = Pb(root)
    pb("import", rootfs, "-t", "busybox")
    return pb


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def host_address() -> str:
    """This host's own address on its default route (not 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        out = subprocess.run(["ip", "-o", "-4", "route", "get", "192.0.2.123"], capture_output=True,
                             text=True).stdout.split()
        if "src" in out:
            return out[out.index("src") + 1]
        s.connect(("10.255.255.1", 9))
        return s.getsockname()[0]


def fetch(host: str, port: int, timeout: float = 15) -> bytes:
    """Connect until the server in the container answers; return what it says."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                data = s.recv(4096)
                if data:
                    return data
        except OSError as err:
            last = err
        time.sleep(0.1)
    raise AssertionError(f"{host}:{port} did not answer: {last}")


# A server that answers every connection with a fixed line (busybox nc serves one per run).
def serve(text: str, port: int = 1234) -> list[str]:
    return ["sh", "-c", f"while true; do echo {text} | nc -l -p {port}; done"]
