"""Set-up and teardown of one container's bridge network, under the IPAM lock.

set-up:   NAT backend found (else nothing is made) → ports checked → lock →
          stale leases reclaimed → bridge found or made (range checked against
          the host routes) → lease → veth pair → NAT rules. A failure at any
          step undoes the steps before it, so nothing is left half-configured.
teardown: lock → the container's rules, veth and lease removed → the bridge and
          its masquerade removed with the last lease. Idempotent: every step
          tolerates its object being gone, so teardown after a crash, twice, or
          of a container that never got a network is fine.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
from dataclasses import dataclass, field
from typing import Iterator

from pybuild.net import firewall
from pybuild.net.ipam import Ipam, Lease
from pybuild.net.model import (DEFAULT_BRIDGE, DEFAULT_STATE_DIR, NetSettings, NetworkError, PortMapping,
                               check_ports, choose_subnet, gateway, link_name, parse_subnet)


@dataclass(frozen=True, slots=True)
class NetRequest:
    container_id: str
    bridge: str = DEFAULT_BRIDGE
    subnet: str | None = None
    ports: tuple[PortMapping, ...] = ()
    state_dir: str = DEFAULT_STATE_DIR


@dataclass(frozen=True, slots=True)
class Attachment:
    address: ipaddress.IPv4Address
    network: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address = field(default=ipaddress.IPv4Address("0.0.0.0"))


def check_host_ports(ports: tuple[PortMapping, ...], leases: list[Lease]) -> None:
    """A host port already published by another container, or bound by a host
    process, is refused before anything is made."""
    for p in ports:
        for lease in leases:
            for q in lease.ports:
                if q.host_port == p.host_port and q.protocol == p.protocol and \
                        (not q.host_ip or not p.host_ip or q.host_ip == p.host_ip):
                    raise NetworkError(f"-p {p.text()}: host port {p.host_port}/{p.protocol} is already "
                                       f"published by container {lease.container_id}")
        kind = socket.SOCK_STREAM if p.protocol == "tcp" else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((p.host_ip or "0.0.0.0", p.host_port))
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    raise NetworkError(f"-p {p.text()}: host port {p.host_port}/{p.protocol} is already "
                                       "in use") from None
                if err.errno == errno.EADDRNOTAVAIL:
                    raise NetworkError(f"-p {p.text()}: {p.host_ip} is not an address of this host") from None
                raise NetworkError(f"-p {p.text()}: {err.strerror}") from None


def _stale(ipam: Ipam, links) -> list[Lease]:  # type: ignore[no-untyped-def]
    """Leases whose veth is gone: the container's netns died without a teardown."""
    stale = []
    for lease in ipam.leases():
        name = link_name(lease.container_id) if lease.container_id else lease.link
        if not name or not links.exists(name):  # a torn lease names nothing: stale too
            stale.append(lease)
    return stale


def _reclaim(ipam: Ipam, fw: firewall.Firewall, leases: list[Lease]) -> None:
    fw.remove([lease.container_id for lease in leases if lease.container_id])
    for lease in leases:
        ipam.release(lease)


def setup(req: NetRequest, netns_fd: int) -> Attachment:
    from pybuild.net.links import kernel_errors

    with kernel_errors(f"network set-up on {req.bridge}"):
        return _setup(req, netns_fd)


def _setup(req: NetRequest, netns_fd: int) -> Attachment:
    from pybuild.net.links import Links, enable_forwarding

    check_ports(list(req.ports))
    fw = firewall.Firewall(firewall.detect())
    wanted = parse_subnet(req.subnet) if req.subnet else None
    ipam = Ipam(req.state_dir, req.bridge)
    with ipam.locked(), contextlib.ExitStack() as undo:
        links = Links()
        undo.callback(links.close)
        _reclaim(ipam, fw, _stale(ipam, links))
        if ipam.find(req.container_id) is not None:
            raise NetworkError(f"container {req.container_id}: already has an address on {req.bridge}")
        check_host_ports(req.ports, ipam.leases())
        net = links.bridge_subnet(req.bridge)
        new_bridge = net is None
        if net is None:
            net = choose_subnet(links.host_routes(), req.subnet)
            links.create_bridge(req.bridge, net)
            with _undo_on_error(lambda: _drop_bridge_if_unused(ipam, links, fw, req.bridge, net)):
                if fw.open_forwarding(req.bridge):
                    ipam.mark_forwarding(True)
        elif wanted is not None and wanted != net:
            raise NetworkError(f"--subnet {wanted}: bridge {req.bridge} already uses {net}")
        else:
            # found, not made: its maker may have died half-way, or the host changed since (a
            # dockerd started later sets FORWARD's policy to DROP): make it whole again
            links.ensure_ready(req.bridge, net)
            if fw.open_forwarding(req.bridge) and not ipam.forwarding_marked():
                ipam.mark_forwarding(True)
        with _undo_on_error(lambda: _drop_bridge_if_unused(ipam, links, fw, req.bridge, net)):
            enable_forwarding()
            host = link_name(req.container_id)
            lease = ipam.allocate(net, req.container_id, host, req.ports)
            with _undo_on_error(lambda: ipam.release(lease)):
                with _undo_on_error(lambda: links.delete(host)):
                    links.add_veth(host, req.bridge, netns_fd, lease.address, net)
                    with _undo_on_error(lambda: fw.remove([req.container_id])):
                        fw.apply(req.bridge, str(net), req.container_id, str(lease.address), req.ports, new_bridge)
        return Attachment(lease.address, net, gateway(net))


@contextlib.contextmanager
def _undo_on_error(undo):  # type: ignore[no-untyped-def]
    """Run `undo` if the block fails, then let the error through; an error of
    the undo itself is dropped, never hides the first."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            undo()
        raise


def _drop_bridge_if_unused(ipam: Ipam, links, fw: firewall.Firewall, bridge: str, net) -> None:  # type: ignore[no-untyped-def]
    if not ipam.leases():
        fw.remove([], bridge, str(net))
        _remove_bridge(ipam, links, fw, bridge, net)


def _remove_bridge(ipam: Ipam, links, fw: firewall.Firewall, bridge: str, net) -> None:  # type: ignore[no-untyped-def]
    if net is not None:
        links.delete(bridge)
    if ipam.forwarding_marked():
        fw.close_forwarding(bridge)
        ipam.mark_forwarding(False)
    ipam.remove_dir_if_empty()


def teardown(req: NetRequest) -> None:
    """Remove what set-up made for `req.container_id` (see the module docstring)."""
    from pybuild.net.links import kernel_errors

    with kernel_errors(f"network teardown on {req.bridge}"):
        _teardown(req)


def _teardown(req: NetRequest) -> None:
    from pybuild.net.links import Links

    fw = firewall.Firewall(firewall.detect())
    ipam = Ipam(req.state_dir, req.bridge)
    with ipam.locked():
        links = Links()
        try:
            lease = ipam.find(req.container_id)
            if lease is not None:
                ipam.release(lease)
            host = link_name(req.container_id)
            stale = [s for s in _stale(ipam, links) if s.container_id != req.container_id]
            for s in stale:
                ipam.release(s)
            last = not ipam.leases()
            net = links.bridge_subnet(req.bridge) if last else None
            fw.remove([req.container_id] + [s.container_id for s in stale if s.container_id],
                      req.bridge if last else None, str(net) if net else None)
            if last:
                _remove_bridge(ipam, links, fw, req.bridge, net)
            links.delete(host)
        finally:
            links.close()


def teardown_owned(prefix: str, settings: NetSettings | None = None) -> None:
    """Tear down the network of every container whose ID starts with `prefix`: the RUN steps of a
    build that died (`pybuild-<pid>-`), whose in-process teardown never ran. Reads the leases only
    (no pyroute2) when there is nothing to do."""
    s = settings or NetSettings.from_env()
    for lease in Ipam(s.state_dir, s.bridge).leases():
        if lease.container_id.startswith(prefix):
            teardown(NetRequest(lease.container_id, s.bridge, s.subnet, (), s.state_dir))


def new_netns() -> int:
    """A fresh network namespace, held by the returned fd only (no bind mount
    under /run/netns that a crash could leak): this thread unshares into it,
    opens it and returns to its own. A runtime joins it by the path
    /proc/<our pid>/fd/<fd>; it lives as long as the fd or a process in it."""
    from pyrunc import syscalls

    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.unshare(syscalls.CLONE_NEWNET)
        try:
            return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        finally:
            syscalls.setns(home, syscalls.CLONE_NEWNET)
    except OSError as err:
        raise NetworkError(f"new network namespace: {err.strerror}") from None
    finally:
        os.close(home)


@contextlib.contextmanager
def attached(req: NetRequest) -> Iterator[tuple[str, Attachment]]:
    """In-process set-up for containers pybuild runs itself (RUN steps,
    `pybuild run`): a new netns on the bridge, torn down on exit. Yields the
    path the runtime joins and the attachment. One pyroute2 import per
    process instead of two hook processes per container."""
    fd = new_netns()
    try:
        att = setup(req, fd)
    except BaseException:
        os.close(fd)
        raise
    try:
        yield f"/proc/{os.getpid()}/fd/{fd}", att
    finally:
        # Our fd goes first: when the container is gone the namespace dies now,
        # and the kernel removes its veth while teardown removes the bridge
        # (each removal waits for an RCU grace period; this way they overlap).
        os.close(fd)
        teardown(req)


def netns_of(pid: int) -> int:
    try:
        return os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise NetworkError(f"network namespace of pid {pid}: {err.strerror}") from None
