"""IPAM: which container holds which address of a bridge, on disk, under one lock.

Layout under the network state dir (default /run/pybuild/net: kernel state does
not survive a reboot, so neither does this):

    lock                      flock held by every set-up and teardown, all bridges
    <bridge>/<a.b.c.d>        one file per address in use: {"id", "link", "ports", "pid"}

Invariants:
- An address file is created with O_EXCL under the lock: no two containers ever
  get one address, even across processes.
- A lease is stale when the host end of its veth is gone (the container's netns
  died with it) and the process that made it is not still setting it up; stale
  leases are reclaimed (their rules removed, the file unlinked) by the next
  set-up, so a crash never leaks an address for good.
- Release is idempotent: releasing an ID with no lease does nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
from dataclasses import dataclass
from typing import Iterator

from pybuild.net.model import DEFAULT_STATE_DIR, NetworkError, PortMapping  # noqa: F401 (re-exported)


@dataclass(frozen=True, slots=True)
class Lease:
    address: ipaddress.IPv4Address
    container_id: str
    link: str
    ports: tuple[PortMapping, ...]
    pid: int

    def to_json(self) -> bytes:
        return json.dumps({"id": self.container_id, "link": self.link, "pid": self.pid,
                           "ports": [p.text() for p in self.ports]}).encode()


class Ipam:
    def __init__(self, state_dir: str, bridge: str) -> None:
        self.state_dir = state_dir
        self.bridge = bridge
        self.dir = os.path.join(state_dir, bridge)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The one lock of all network state (links, rules, leases)."""
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.state_dir, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def leases(self) -> list[Lease]:
        from pybuild.net.model import parse_port

        out = []
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        for name in names:
            try:
                addr = ipaddress.IPv4Address(name)
            except ValueError:
                continue  # a temp file of an interrupted write
            try:
                with open(os.path.join(self.dir, name), "rb") as fh:
                    doc = json.loads(fh.read() or b"{}")
            except FileNotFoundError:
                continue
            except ValueError:
                doc = {}  # torn by a crash: stale, reclaimed by address
            try:
                ports = tuple(parse_port(str(p)) for p in doc.get("ports", []))
            except NetworkError:
                ports = ()
            out.append(Lease(addr, str(doc.get("id", "")), str(doc.get("link", "")), ports,
                             int(doc.get("pid", 0)) if str(doc.get("pid", 0)).isdigit() else 0))
        return sorted(out, key=lambda lease: lease.address)

    def find(self, container_id: str) -> Lease | None:
        for lease in self.leases():
            if lease.container_id == container_id:
                return lease
        return None

    def allocate(self, net: ipaddress.IPv4Network, container_id: str, link: str,
                 ports: tuple[PortMapping, ...]) -> Lease:
        """The lowest free address after the gateway; call with the lock held."""
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        used = {lease.address for lease in self.leases()}
        gateway = net.network_address + 1
        for addr in net.hosts():
            if addr == gateway or addr in used:
                continue
            lease = Lease(addr, container_id, link, ports, os.getpid())
            path = os.path.join(self.dir, str(addr))
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as fh:
                fh.write(lease.to_json())
            return lease
        raise NetworkError(f"bridge {self.bridge}: no free address left in {net}")

    def release(self, lease: Lease) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.dir, str(lease.address)))

    def mark_forwarding(self, on: bool) -> None:
        """Record that set-up inserted FORWARD accepts for the bridge (firewall.open_forwarding)."""
        path = os.path.join(self.dir, "forwarding")
        if on:
            os.makedirs(self.dir, mode=0o700, exist_ok=True)
            with open(path, "w"):
                pass
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def forwarding_marked(self) -> bool:
        return os.path.exists(os.path.join(self.dir, "forwarding"))

    def remove_dir_if_empty(self) -> None:
        with contextlib.suppress(FileNotFoundError, OSError):
            os.rmdir(self.dir)
