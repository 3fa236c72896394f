"""NAT for the bridge: masquerade to the outside and DNAT for published ports.

Two backends, the same rules: nftables (`nft`, preferred) or iptables, whichever
the host has (`detect`); with neither, set-up stops before creating anything and
names what to install. The rule text is planned by pure functions
(`nft_*_script`, `iptables_*_argv`) and applied by one thin executor each.

What the rules are (docker's and netavark's kernel path, no userland proxy):
- bridge-wide (table/chains `pybuild-<bridge>`): masquerade what leaves the
  bridge's range for another interface; masquerade what reaches the bridge
  from 127.0.0.0/8 (localhost clients of published ports, see below);
- per container (table `pybuild-<hash of ID>`, iptables chain `PYBUILD-<hash>`):
  DNAT of `HOST_PORT` to `address:CONTAINER_PORT` in PREROUTING (other hosts,
  other containers) and OUTPUT (this host, its own addresses and 127.0.0.1),
  for local destination addresses only, or `-d IP` when the mapping names one.

Localhost: the kernel path with `route_localnet=1` on the bridge (set by
links.py) rather than a userland proxy, because a proxy is a process that must
live as long as the container, and pybuild runs no daemon; the kernel path also
keeps the client's address for remote clients. A packet from 127.0.0.1 DNATed to
the bridge would carry a source the container cannot answer, hence the masquerade.
`route_localnet` also stops the kernel from dropping packets that *arrive* on
the bridge for 127.0.0.0/8, so a container with CAP_NET_RAW (docker's default)
could reach services bound to the host's loopback (CVE-2020-8558, kube-proxy's
bug): a raw-priority prerouting rule drops them before conntrack, where replies
to the masqueraded localhost clients still carry the bridge's own address.
Every object is named from the bridge or the container ID, so teardown needs no
record; deleting an absent object is not an error (idempotent).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Sequence

from pybuild.net.model import NetworkError, PortMapping, base_table, table_name

MISSING = ("NAT needs nftables or iptables: neither `nft` nor `iptables` is on PATH "
           "(apt-get install nftables)")


@dataclass(frozen=True, slots=True)
class Backend:
    name: str      # "nft" | "iptables"
    path: str


def detect() -> Backend:
    for name in ("nft", "iptables"):
        path = shutil.which(name)
        if path:
            return Backend(name, path)
    raise NetworkError(MISSING)


def _match(p: PortMapping) -> str:
    dest = f"ip daddr {p.host_ip}" if p.host_ip else "fib daddr type local"
    return f"{dest} {p.protocol} dport {p.host_port}"


def nft_base_script(bridge: str, subnet: str) -> str:
    t = base_table(bridge)
    return (f"add table ip {t}\ndelete table ip {t}\n"
            f"table ip {t} {{\n"
            f"  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n"
            f"    ip saddr {subnet} oifname != \"{bridge}\" masquerade\n"
            f"    oifname \"{bridge}\" ip saddr 127.0.0.0/8 masquerade\n  }}\n"
            f"  chain localnet {{\n    type filter hook prerouting priority raw; policy accept;\n"
            f"    iifname \"{bridge}\" ip daddr 127.0.0.0/8 drop\n  }}\n}}\n")


def nft_ports_script(container_id: str, address: str, ports: Sequence[PortMapping]) -> str:
    t = table_name(container_id)
    rules = "".join(f"    {_match(p)} dnat to {address}:{p.container_port}\n" for p in ports)
    chains = "".join(f"  chain {hook} {{\n    type nat hook {hook} priority {prio}; policy accept;\n{rules}  }}\n"
                     for hook, prio in (("prerouting", "dstnat"), ("output", "-100")))
    return f"add table ip {t}\ndelete table ip {t}\ntable ip {t} {{\n{chains}}}\n"


def nft_delete_script(table: str) -> str:
    return f"add table ip {table}\ndelete table ip {table}\n"


def _chain(container_id: str) -> str:
    return table_name(container_id).upper()


def iptables_base_rules(bridge: str, subnet: str) -> list[list[str]]:
    tag = ["-m", "comment", "--comment", base_table(bridge)]
    return [["-t", "nat", "POSTROUTING", "-s", subnet, "!", "-o", bridge, *tag, "-j", "MASQUERADE"],
            ["-t", "nat", "POSTROUTING", "-o", bridge, "-s", "127.0.0.0/8", *tag, "-j", "MASQUERADE"],
            ["-t", "raw", "PREROUTING", "-i", bridge, "-d", "127.0.0.0/8", *tag, "-j", "DROP"]]


def iptables_port_rules(container_id: str, address: str, ports: Sequence[PortMapping]) -> list[list[str]]:
    chain = _chain(container_id)
    out = []
    for p in ports:
        dest = ["-d", p.host_ip] if p.host_ip else []
        out.append(["-t", "nat", chain, *dest, "-p", p.protocol, "--dport", str(p.host_port),
                    "-j", "DNAT", "--to-destination", f"{address}:{p.container_port}"])
    return out


def forward_blocked(rules: str) -> bool:
    """Whether `iptables -S FORWARD` output drops forwarded traffic by default
    (dockerd sets the policy to DROP): then the bridge needs its own accepts."""
    return any(line.strip() in ("-P FORWARD DROP", "-A FORWARD -j DROP", "-A FORWARD -j REJECT")
               or line.startswith("-A FORWARD -j REJECT ") for line in rules.splitlines())


def iptables_forward_rules(bridge: str) -> list[list[str]]:
    tag = ["-m", "comment", "--comment", base_table(bridge)]
    return [["-t", "filter", "FORWARD", "-i", bridge, *tag, "-j", "ACCEPT"],
            ["-t", "filter", "FORWARD", "-o", bridge, *tag, "-j", "ACCEPT"]]


def iptables_jumps(container_id: str) -> list[list[str]]:
    chain = _chain(container_id)
    return [["-t", "nat", hook, "-m", "addrtype", "--dst-type", "LOCAL", "-j", chain]
            for hook in ("PREROUTING", "OUTPUT")]


class Firewall:
    """The executor: applies the planned rules with the detected backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def _run(self, args: list[str], stdin: str | None = None, check: bool = True) -> bool:
        proc = subprocess.run([self.backend.path, *args], input=stdin, text=True, capture_output=True)
        if proc.returncode != 0 and check:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise NetworkError(f"{self.backend.name} {' '.join(args[:3])}: "
                               f"{detail[0] if detail else f'exit status {proc.returncode}'}")
        return proc.returncode == 0

    def _ipt(self, op: str, rule: list[str], check: bool = True) -> bool:
        table, chain, rest = rule[1], rule[2], rule[3:]
        return self._run(["-w", "-t", table, op, chain, *rest], check=check)

    def _ipt_add(self, rule: list[str]) -> None:
        if not self._ipt("-C", rule, check=False):
            self._ipt("-A", rule)

    def _ipt_delete(self, rule: list[str]) -> None:
        while self._ipt("-C", rule, check=False):
            self._ipt("-D", rule)

    def apply(self, bridge: str, subnet: str, container_id: str, address: str,
              ports: Sequence[PortMapping], new_bridge: bool) -> None:
        """The bridge's masquerade and the container's DNAT. With nft, one
        transaction that also re-makes the bridge's table (atomically), so
        rules someone flushed come back; with iptables, the bridge's rules
        only when it is new (each rule is a check and an append)."""
        if self.backend.name == "nft":
            script = nft_base_script(bridge, subnet)
            if ports:
                script += nft_ports_script(container_id, address, ports)
            self._run(["-f", "-"], script)
            return
        if new_bridge:
            for rule in iptables_base_rules(bridge, subnet):
                self._ipt_add(rule)
        self._add_port_rules(container_id, address, ports)

    def remove(self, container_ids: Sequence[str], bridge: str | None = None, subnet: str | None = None) -> None:
        """The containers' DNAT and, with `bridge`, the bridge's masquerade;
        absent ones are not an error."""
        if self.backend.name == "nft":
            tables = [table_name(c) for c in container_ids] + ([base_table(bridge)] if bridge else [])
            if tables:
                self._run(["-f", "-"], "".join(nft_delete_script(t) for t in tables))
            return
        for cid in container_ids:
            self._remove_port_rules(cid)
        if bridge and subnet:
            for rule in iptables_base_rules(bridge, subnet):
                self._ipt_delete(rule)

    def open_forwarding(self, bridge: str) -> bool:
        """On a host whose iptables FORWARD chain drops by default, insert
        accepts for the bridge in front (whatever the NAT backend: that chain
        is iptables'). Returns whether it did (the caller records it)."""
        ipt = shutil.which("iptables")
        if ipt is None:
            return False
        filt = Firewall(Backend("iptables", ipt))
        res = subprocess.run([ipt, "-w", "-S", "FORWARD"], capture_output=True, text=True)
        if res.returncode != 0 or not forward_blocked(res.stdout):
            return False
        for rule in iptables_forward_rules(bridge):
            if not filt._ipt("-C", rule, check=False):
                filt._ipt("-I", rule)
        return True

    def close_forwarding(self, bridge: str) -> None:
        ipt = shutil.which("iptables")
        if ipt is not None:
            filt = Firewall(Backend("iptables", ipt))
            for rule in iptables_forward_rules(bridge):
                filt._ipt_delete(rule)

    def _add_port_rules(self, container_id: str, address: str, ports: Sequence[PortMapping]) -> None:
        if not ports:
            return
        chain = _chain(container_id)
        self._run(["-w", "-t", "nat", "-N", chain], check=False)
        self._run(["-w", "-t", "nat", "-F", chain])
        for rule in iptables_port_rules(container_id, address, ports):
            self._ipt("-A", rule)
        for jump in iptables_jumps(container_id):
            self._ipt_add(jump)

    def _remove_port_rules(self, container_id: str) -> None:
        chain = _chain(container_id)
        for jump in iptables_jumps(container_id):
            self._ipt_delete(jump)
        if self._run(["-w", "-t", "nat", "-F", chain], check=False):
            self._run(["-w", "-t", "nat", "-X", chain])


def list_objects() -> set[str]:
    """Every nft table and iptables chain or rule of pybuild on this host (the
    tests' leak guard); nothing when a tool is absent."""
    found: set[str] = set()
    nft = shutil.which("nft")
    if nft:
        out = subprocess.run([nft, "list", "tables"], capture_output=True, text=True).stdout
        found |= {f"nft:{line.split()[-1]}" for line in out.splitlines() if "pybuild" in line}
    ipt = shutil.which("iptables")
    if ipt:
        out = subprocess.run([ipt, "-w", "-t", "nat", "-S"], capture_output=True, text=True).stdout
        found |= {f"iptables:{line}" for line in out.splitlines() if "pybuild" in line.lower()}
    return found
