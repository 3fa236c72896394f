"""The kernel half of the bridge network, through pyroute2: bridge, veth pairs, addresses, routes.

pyroute2 costs ~140 ms to import; this module is imported only by a set-up or a
teardown that needs links, never by `pybuild` itself.

The container's side is configured through a netlink socket opened *inside* its
network namespace: this thread setns()es into the namespace, opens the socket and
setns()es back; the socket stays bound to the namespace it was made in. That
costs ~1 ms, where pyroute2's own netns support forks a helper process.

A bridge is pybuild's when it is of kind bridge and carries the alias
`pybuild <subnet>`; a link of that name without it belongs to something else
and is never touched. The alias also records the bridge's range, so the range
survives the loss of every file.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import re
import socket
import time
from typing import Any, Iterator

from pybuild.net.model import NetworkError

ALIAS_PREFIX = "pybuild "
IFF_UP = 0x1  # <linux/if.h>
UNFINISHED_PREFIX = "pbn"   # a bridge being made: pbn<pid>-<4 hex>, renamed when marked as pybuild's


def _attr(msg: Any, name: str) -> Any:
    return msg.get_attr(name) if hasattr(msg, "get_attr") else msg.get(name)


def _kind(msg: Any) -> str | None:
    info = _attr(msg, "IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


def write_sysctl(path: str, value: str) -> None:
    with open(path, "r+") as fh:
        if fh.read().strip() != value:
            fh.seek(0)
            fh.write(value)


class Links:
    def __init__(self) -> None:
        from pyroute2 import IPRoute

        self._IPRoute = IPRoute
        self.ipr = IPRoute()

    def close(self) -> None:
        self.ipr.close()

    def _index(self, name: str) -> int | None:
        found = self.ipr.link_lookup(ifname=name)
        return found[0] if found else None

    def exists(self, name: str) -> bool:
        return os.path.exists(f"/sys/class/net/{name}")

    def host_routes(self) -> list[ipaddress.IPv4Network]:
        out = []
        for route in self.ipr.get_routes(family=socket.AF_INET):
            dst = _attr(route, "RTA_DST") or "0.0.0.0"
            table = _attr(route, "RTA_TABLE") or route.get("table")
            if table == 255:  # the local table: host addresses, broadcast
                continue
            out.append(ipaddress.IPv4Network(f"{dst}/{route.get('dst_len')}", strict=False))
        for addr in self.ipr.get_addr(family=socket.AF_INET):
            ip = _attr(addr, "IFA_ADDRESS")
            if ip and not ipaddress.IPv4Address(ip).is_loopback:
                out.append(ipaddress.IPv4Network(f"{ip}/{addr.get('prefixlen')}", strict=False))
        return out

    def sweep_unfinished(self) -> None:
        """Remove the bridges a set-up was making when it died: named pbn<pid>-<4 hex> (never a
        name of pybuild's networks: those are checked by check_ifname and chosen by the user), of
        kind bridge, and their pid is gone."""
        for link in self.ipr.get_links():
            match = re.fullmatch(UNFINISHED_PREFIX + r"(\d+)-[0-9a-f]{4}", _attr(link, "IFLA_IFNAME") or "")
            if match and _kind(link) == "bridge" and not os.path.exists(f"/proc/{match[1]}"):
                self.delete(_attr(link, "IFLA_IFNAME"))

    def bridge_subnet(self, name: str) -> ipaddress.IPv4Network | None:
        """The range of pybuild's bridge `name`, None when there is no such link;
        NetworkError when the name is held by something else."""
        idx = self._index(name)
        if idx is None:
            return None
        link = self.ipr.get_links(idx)[0]
        alias = _attr(link, "IFLA_IFALIAS") or ""
        kind = _kind(link)
        if kind != "bridge" or not alias.startswith(ALIAS_PREFIX):
            raise NetworkError(f"bridge {name}: the name is held by a link that is not pybuild's "
                               f"(kind {kind or 'unknown'}{', alias ' + repr(alias) if alias else ''})")
        try:
            return ipaddress.IPv4Network(alias[len(ALIAS_PREFIX):].strip())
        except ValueError:
            raise NetworkError(f"bridge {name}: unreadable alias {alias!r}") from None

    def create_bridge(self, name: str, net: ipaddress.IPv4Network) -> None:
        """Make pybuild's bridge `name` for `net`. The link is made and marked (alias, gateway
        address) under a temporary name, pbn<pid>-<hex>, and renamed only then: the kernel takes no
        alias in the message that adds a link, and a set-up SIGKILLed between the add and the alias
        once left a bridge under the real name without it, which every later set-up refused as 'not
        pybuild's' until someone removed it by hand. A temporary bridge whose maker is gone is
        removed by the next set-up (sweep_unfinished)."""
        from pybuild import fault_point

        self.sweep_unfinished()
        gw = net.network_address + 1
        tmp = f"{UNFINISHED_PREFIX}{os.getpid()}-{os.urandom(2).hex()}"
        self.ipr.link("add", ifname=tmp, kind="bridge")
        idx = self._index(tmp)
        try:
            fault_point("net.bridge-added")
            self.ipr.link("set", index=idx, ifalias=f"{ALIAS_PREFIX}{net}")
            self.ipr.addr("add", index=idx, address=str(gw), prefixlen=net.prefixlen)
            self.ipr.link("set", index=idx, ifname=name)  # only while down
        except BaseException:
            with contextlib.suppress(Exception):
                self.ipr.link("del", index=idx)
            raise
        self.ipr.link("set", index=idx, state="up")
        # Published ports answer on 127.0.0.1 through DNAT (firewall.py): the
        # kernel routes 127/8 sources out of this interface only with route_localnet.
        write_sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")

    def ensure_ready(self, name: str, net: ipaddress.IPv4Network) -> None:
        """Give pybuild's bridge `name`, found rather than made, what set-up gives a new one: its
        gateway address, up, route_localnet. A set-up killed between the rename and `up` left it
        down; someone may have flushed its address or set it down since. A container on it would
        get an address and no network, and nothing would say why (issue 18)."""
        idx = self._index(name)
        if idx is None:
            raise NetworkError(f"bridge {name}: vanished while being set up")
        gw = net.network_address + 1
        have = {(_attr(a, "IFA_ADDRESS"), a.get("prefixlen")) for a in self.ipr.get_addr(index=idx, family=socket.AF_INET)}
        if (str(gw), net.prefixlen) not in have:
            self.ipr.addr("add", index=idx, address=str(gw), prefixlen=net.prefixlen)
        if not self.ipr.get_links(idx)[0]["flags"] & IFF_UP:
            self.ipr.link("set", index=idx, state="up")
        write_sysctl(f"/proc/sys/net/ipv4/conf/{name}/route_localnet", "1")

    def delete(self, name: str) -> None:
        """Remove a link; an absent one is not an error (idempotent). Waits until
        the kernel no longer lists it: a veth whose namespace died is removed
        asynchronously, and the caller's 'nothing left' must hold on return."""
        from pyroute2.netlink.exceptions import NetlinkError

        idx = self._index(name)
        if idx is not None:
            try:
                self.ipr.link("del", index=idx)
            except NetlinkError as err:  # ENODEV: it vanished meanwhile (its netns died)
                if err.code != errno.ENODEV:
                    raise NetworkError(f"delete link {name}: {err}") from None
        deadline = time.monotonic() + 5
        while self.exists(name) and time.monotonic() < deadline:
            time.sleep(0.01)

    @contextlib.contextmanager
    def _inside(self, netns_fd: int) -> Iterator[Any]:
        from pyrunc import syscalls

        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(netns_fd, syscalls.CLONE_NEWNET)
            try:
                inner = self._IPRoute()
            finally:
                syscalls.setns(home, syscalls.CLONE_NEWNET)
        finally:
            os.close(home)
        try:
            yield inner
        finally:
            inner.close()

    def uplink_mtu(self) -> int:
        """The MTU of the interface the default route leaves by (1500 without
        one). Containers get it too: a veth larger than the uplink would send
        full-size segments that the path then drops (TLS downloads stall)."""
        for route in self.ipr.get_routes(family=socket.AF_INET):
            if route.get("dst_len") == 0 and _attr(route, "RTA_OIF"):
                links = self.ipr.get_links(_attr(route, "RTA_OIF"))
                if links:
                    return int(_attr(links[0], "IFLA_MTU") or 1500)
        return 1500

    def add_veth(self, host_name: str, bridge: str, netns_fd: int, address: ipaddress.IPv4Address,
                 net: ipaddress.IPv4Network) -> None:
        """A veth pair: `host_name` on the bridge, its peer `eth0` in the
        namespace with `address`, up, and the default route via the bridge."""
        from pyroute2.netlink.exceptions import NetlinkError

        mtu = self.uplink_mtu()
        try:
            self.ipr.link("add", ifname=host_name, kind="veth", mtu=mtu,
                          peer={"ifname": "eth0", "net_ns_fd": netns_fd, "mtu": mtu})
        except NetlinkError as err:
            if err.code == errno.EEXIST:
                raise NetworkError(f"veth {host_name}: exists (the container ID is in use, or the "
                                   "container already has eth0)") from None
            raise
        idx = self._index(host_name)
        self.ipr.link("set", index=idx, master=self._index(bridge), state="up")
        with self._inside(netns_fd) as inner:
            lo = inner.link_lookup(ifname="lo")
            if lo:
                inner.link("set", index=lo[0], state="up")
            eth0 = inner.link_lookup(ifname="eth0")[0]
            inner.addr("add", index=eth0, address=str(address), prefixlen=net.prefixlen)
            inner.link("set", index=eth0, state="up")
            inner.route("add", dst="0.0.0.0/0", gateway=str(net.network_address + 1))


@contextlib.contextmanager
def kernel_errors(what: str) -> Iterator[None]:
    """Netlink and sysctl failures as one-line NetworkErrors naming the operation."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        yield
    except NetlinkError as err:
        reason = err.args[1] if len(err.args) > 1 else os.strerror(err.code) if err.code else str(err)
        raise NetworkError(f"{what}: {reason}") from None
    except OSError as err:
        raise NetworkError(f"{what}: {err.strerror or err}{f' ({err.filename})' if err.filename else ''}") from None


def enable_forwarding() -> None:
    """Routing between the bridge and the outside needs IPv4 forwarding, as
    docker and podman set it; it is left on."""
    write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")
