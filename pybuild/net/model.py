"""The pure half of pybuild's networking: names, port mappings, subnet choice, /etc files.

Nothing here touches the kernel, so all of it is unit-tested without root.

Invariants:
- Every kernel object a container gets is named from its container ID alone
  (`link_name`, `table_name`), so teardown finds it with nothing but the ID,
  even after a crash lost every other record.
- Names fit IFNAMSIZ (15 characters) and start with the prefixes the tests'
  leak guard watches (`vpb`, `pybuild`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass

from pybuild.errors import PybuildError

DEFAULT_BRIDGE = "pybuild0"
DEFAULT_STATE_DIR = "/run/pybuild/net"
NETWORK_MODES = ("bridge", "host", "none")
# Private /16s tried in order when no --subnet is given; the first that no host
# route overlaps wins (docker's default pool is 172.17-31.0.0/16, podman's 10.88/16).
CANDIDATE_SUBNETS = tuple(f"172.{n}.0.0/16" for n in range(29, 15, -1)) + \
    tuple(f"10.{n}.0.0/16" for n in range(201, 211))
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


class NetworkError(PybuildError):
    """A network that cannot be set up or torn down, with the reason."""


@dataclass(frozen=True, slots=True)
class NetSettings:
    """Where bridge networks live: the bridge's name, its range (None: the first
    free candidate), the IPAM state dir. `from_env` reads PYBUILD_BRIDGE,
    PYBUILD_SUBNET and PYBUILD_NET_STATE, the daemon-less stand-in for dockerd's
    `--bridge`/`--bip` (the pybuild CLI's --bridge/--subnet set them)."""

    bridge: str = DEFAULT_BRIDGE
    subnet: str | None = None
    state_dir: str = DEFAULT_STATE_DIR

    @classmethod
    def from_env(cls) -> "NetSettings":
        import os

        return cls(bridge=check_ifname(os.environ.get("PYBUILD_BRIDGE") or DEFAULT_BRIDGE),
                   subnet=os.environ.get("PYBUILD_SUBNET") or None,
                   state_dir=os.environ.get("PYBUILD_NET_STATE") or DEFAULT_STATE_DIR)


@dataclass(frozen=True, slots=True)
class PortMapping:
    """`[IP:]HOST:CONTAINER[/tcp|udp]` of `-p`."""

    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""

    def text(self) -> str:
        ip = f"{self.host_ip}:" if self.host_ip else ""
        return f"{ip}{self.host_port}:{self.container_port}/{self.protocol}"

    def docker_text(self) -> str:
        """As `docker ps` shows it: 0.0.0.0:8088->1234/tcp."""
        return f"{self.host_ip or '0.0.0.0'}:{self.host_port}->{self.container_port}/{self.protocol}"


def _port(text: str, what: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise NetworkError(f"-p {spec}: {what} port {text!r} is not a number from 1 to 65535")
    return int(text)


def parse_port(spec: str) -> PortMapping:
    """`-p` value → PortMapping. Ranges and a bare CONTAINER port (random host
    port) are refused with a message: a daemonless tool cannot promise a
    random port stays free."""
    body, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise NetworkError(f"-p {spec}: protocol {proto!r} is not tcp or udp")
    if body.startswith("["):
        raise NetworkError(f"-p {spec}: IPv6 host addresses are not supported")
    parts = body.split(":")
    if len(parts) == 2:
        host_ip, host, container = "", parts[0], parts[1]
    elif len(parts) == 3:
        host_ip, host, container = parts
    else:
        raise NetworkError(f"-p {spec}: expected [IP:]HOST:CONTAINER[/tcp|udp]")
    if host_ip:
        try:
            addr = ipaddress.IPv4Address(host_ip)
        except ValueError:
            raise NetworkError(f"-p {spec}: {host_ip!r} is not an IPv4 address") from None
        host_ip = "" if addr.is_unspecified else str(addr)
    if "-" in host or "-" in container:
        raise NetworkError(f"-p {spec}: port ranges are not supported")
    return PortMapping(_port(host, "host", spec), _port(container, "container", spec), proto, host_ip)


def check_ports(ports: list[PortMapping]) -> None:
    """Two mappings of one host port and protocol on overlapping addresses collide."""
    seen: dict[tuple[int, str], list[str]] = {}
    for p in ports:
        ips = seen.setdefault((p.host_port, p.protocol), [])
        if "" in ips or (p.host_ip in ips) or (p.host_ip == "" and ips):
            raise NetworkError(f"-p {p.text()}: host port {p.host_port}/{p.protocol} is given twice")
        ips.append(p.host_ip)


def check_ifname(name: str, what: str = "bridge") -> str:
    if not _IFNAME.match(name):
        raise NetworkError(f"{what} name {name!r}: 1 to 15 characters of [A-Za-z0-9_.-]")
    return name


def _digest(container_id: str) -> str:
    return hashlib.sha256(container_id.encode()).hexdigest()


def link_name(container_id: str) -> str:
    """Host end of the container's veth pair: `vpb` + 12 hex digits (15 characters)."""
    return "vpb" + _digest(container_id)[:12]


def table_name(container_id: str) -> str:
    """nftables table / iptables chain holding the container's port rules."""
    return "pybuild-" + _digest(container_id)[:12]


def base_table(bridge: str) -> str:
    """nftables table / iptables chain prefix of the bridge's masquerade rules."""
    return f"pybuild-{bridge}"


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as err:
        raise NetworkError(f"--subnet {text}: {err}") from None
    if not net.is_private or net.prefixlen > 28 or net.prefixlen < 8:
        raise NetworkError(f"--subnet {text}: expected a private IPv4 range from /8 to /28")
    return net


def choose_subnet(routes: list[ipaddress.IPv4Network], wanted: str | None = None) -> ipaddress.IPv4Network:
    """The bridge's range: `wanted` if given and free, else the first candidate
    that overlaps no host route. The default route (0.0.0.0/0) overlaps
    everything and is not counted."""
    taken = [r for r in routes if r.prefixlen > 0]
    if wanted:
        net = parse_subnet(wanted)
        for r in taken:
            if net.overlaps(r):
                raise NetworkError(f"--subnet {net}: collides with the host route {r}")
        return net
    for text in CANDIDATE_SUBNETS:
        net = ipaddress.IPv4Network(text)
        if not any(net.overlaps(r) for r in taken):
            return net
    raise NetworkError("no free private /16 for the bridge: every candidate collides with a host route "
                       "(give one with --subnet)")


def gateway(net: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    return net.network_address + 1


def resolv_conf(host_text: str) -> str:
    """The container's /etc/resolv.conf from the host's, as docker makes it:
    loopback name servers (a local stub resolver) cannot be reached from a
    network namespace and are dropped; search and options are kept. With no
    usable server left, the container gets none rather than a guess."""
    out = []
    for line in host_text.splitlines():
        words = line.split()
        if words and words[0] == "nameserver" and len(words) > 1:
            try:
                addr = ipaddress.ip_address(words[1].split("%")[0])
            except ValueError:
                continue
            if addr.is_loopback:
                continue
        out.append(line)
    return "\n".join(out).strip() + "\n"


def hosts_file(hostname: str, address: str | None) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters"]
    lines.append(f"{address}\t{hostname}" if address else f"127.0.1.1\t{hostname}")
    return "\n".join(lines) + "\n"
