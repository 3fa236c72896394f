"""pybuild.net's pure parts: -p parsing, names, subnet choice, /etc files, rule plans, IPAM leases."""

from __future__ import annotations

import ipaddress
import os

import pytest

from pybuild.net import firewall
from pybuild.net.ipam import Ipam
from pybuild.net.model import (CANDIDATE_SUBNETS, NetworkError, PortMapping, check_ifname, check_ports,
                               choose_subnet, hosts_file, link_name, parse_port, resolv_conf, table_name)


@pytest.mark.parametrize("text, expected", [
    ("8088:1234", PortMapping(8088, 1234, "tcp", "")),
    ("8088:1234/udp", PortMapping(8088, 1234, "udp", "")),
    ("127.0.0.1:8088:1234", PortMapping(8088, 1234, "tcp", "127.0.0.1")),
    ("0.0.0.0:80:8080/tcp", PortMapping(80, 8080, "tcp", "")),
])
def test_parse_port(text, expected):
    assert parse_port(text) == expected
    assert parse_port(expected.text()) == expected


@pytest.mark.parametrize("text, message", [
    ("1234", "expected \\[IP:\\]HOST:CONTAINER"),
    ("0:1234", "host port '0'"),
    ("8088:70000", "container port '70000'"),
    ("8088:1234/sctp", "protocol 'sctp'"),
    ("300.1.1.1:80:80", "not an IPv4 address"),
    ("8000-8010:80", "ranges"),
    ("[::1]:80:80", "IPv6"),
    ("a:b:c:d", "expected"),
])
def test_parse_port_rejects(text, message):
    with pytest.raises(NetworkError, match=message):
        parse_port(text)


def test_check_ports_collisions():
    check_ports([parse_port("80:80"), parse_port("80:80/udp"), parse_port("127.0.0.1:81:80"),
                 parse_port("192.0.2.9:81:80")])
    with pytest.raises(NetworkError, match="given twice"):
        check_ports([parse_port("80:80"), parse_port("127.0.0.1:80:81")])
    with pytest.raises(NetworkError, match="given twice"):
        check_ports([parse_port("127.0.0.1:80:80"), parse_port("80:81")])


def test_names_fit_ifnamsiz_and_the_leak_guard():
    for cid in ("a", "x" * 64, "pybuild-123-abcd"):
        assert len(link_name(cid)) == 15 and link_name(cid).startswith("vpb")
        assert table_name(cid).startswith("pybuild-")
    assert link_name("a") != link_name("b")
    check_ifname("pybuild0")
    for bad in ("", "x" * 16, "a b", "a/b"):
        with pytest.raises(NetworkError):
            check_ifname(bad)


def _nets(*texts):
    return [ipaddress.IPv4Network(t) for t in texts]


def test_choose_subnet_skips_host_routes_not_the_default_route():
    assert str(choose_subnet(_nets("0.0.0.0/0", "192.0.2.0/24"))) == CANDIDATE_SUBNETS[0]
    assert str(choose_subnet(_nets("172.29.5.0/24"))) == CANDIDATE_SUBNETS[1]
    assert str(choose_subnet(_nets("172.16.0.0/12"))) == "10.201.0.0/16"
    with pytest.raises(NetworkError, match="no free private /16"):
        choose_subnet(_nets("172.16.0.0/12", "10.0.0.0/8"))


def test_choose_subnet_wanted():
    assert str(choose_subnet(_nets("192.0.2.0/24"), "10.77.0.0/16")) == "10.77.0.0/16"
    with pytest.raises(NetworkError, match="collides with the host route 10.77.1.0/24"):
        choose_subnet(_nets("10.77.1.0/24"), "10.77.0.0/16")
    for bad in ("8.8.0.0/16", "10.0.0.1/16", "10.0.0.0/30", "nonsense"):
        with pytest.raises(NetworkError, match="--subnet"):
            choose_subnet([], bad)


def test_resolv_conf_drops_loopback_servers():
    host = "# comment\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\nsearch example.org\noptions edns0\n"
    out = resolv_conf(host)
    assert "127.0.0.53" not in out and "::1" not in out
    assert "nameserver 10.0.0.2" in out and "search example.org" in out and "options edns0" in out


def test_hosts_file_names_the_container():
    text = hosts_file("abc123", "172.29.0.2")
    assert "127.0.0.1\tlocalhost" in text and text.endswith("172.29.0.2\tabc123\n")
    assert hosts_file("abc123", None).endswith("127.0.1.1\tabc123\n")


def test_nft_plans():
    base = firewall.nft_base_script("pybuild0", "172.29.0.0/16")
    assert base.startswith("add table ip pybuild-pybuild0\ndelete table ip pybuild-pybuild0\n")
    assert 'ip saddr 172.29.0.0/16 oifname != "pybuild0" masquerade' in base
    assert 'oifname "pybuild0" ip saddr 127.0.0.0/8 masquerade' in base
    ports = firewall.nft_ports_script("cid", "172.29.0.2",
                                      [parse_port("8088:1234"), parse_port("127.0.0.1:53:53/udp")])
    t = table_name("cid")
    assert ports.startswith(f"add table ip {t}\ndelete table ip {t}\n")
    assert "fib daddr type local tcp dport 8088 dnat to 172.29.0.2:1234" in ports
    assert "ip daddr 127.0.0.1 udp dport 53 dnat to 172.29.0.2:53" in ports
    assert "hook prerouting" in ports and "hook output" in ports


def test_iptables_plans():
    rules = firewall.iptables_port_rules("cid", "172.29.0.2", [parse_port("127.0.0.1:8088:1234")])
    chain = table_name("cid").upper()
    assert rules == [["-t", "nat", chain, "-d", "127.0.0.1", "-p", "tcp", "--dport", "8088", "-j", "DNAT",
                      "--to-destination", "172.29.0.2:1234"]]
    jumps = firewall.iptables_jumps("cid")
    assert [j[2] for j in jumps] == ["PREROUTING", "OUTPUT"] and all(j[-1] == chain for j in jumps)
    base = firewall.iptables_base_rules("pybuild0", "172.29.0.0/16")
    assert base[0][3:9] == ["-s", "172.29.0.0/16", "!", "-o", "pybuild0", "-m"]


def test_detect_names_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NetworkError, match="neither `nft` nor `iptables`"):
        firewall.detect()
    fake = tmp_path / "iptables"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert firewall.detect().name == "iptables"


def test_ipam_leases(tmp_path):
    ipam = Ipam(str(tmp_path), "pybuild0")
    net = ipaddress.IPv4Network("10.99.0.0/29")
    with ipam.locked():
        a = ipam.allocate(net, "one", "vpbone", (parse_port("80:80"),))
        b = ipam.allocate(net, "two", "vpbtwo", ())
    assert str(a.address) == "10.99.0.2" and str(b.address) == "10.99.0.3"  # .1 is the gateway
    assert ipam.find("one").ports == (parse_port("80:80"),)
    ipam.release(a)
    ipam.release(a)  # idempotent
    assert ipam.find("one") is None
    c = ipam.allocate(net, "three", "vpb3", ())
    assert str(c.address) == "10.99.0.2"  # reused after release
    for n in ("four", "five", "six"):
        ipam.allocate(net, n, "x", ())
    with pytest.raises(NetworkError, match="no free address"):
        ipam.allocate(net, "seven", "x", ())
    # a torn lease (crash mid-write) is still a lease: its address is not handed out twice
    (tmp_path / "pybuild0" / "10.99.0.3").write_text("{")
    assert any(str(lease.address) == "10.99.0.3" for lease in ipam.leases())
    assert oct(os.stat(tmp_path / "pybuild0").st_mode & 0o777) == "0o700"


def test_torn_leases_are_stale(tmp_path):
    from pybuild.net.plumbing import _stale

    ipam = Ipam(str(tmp_path), "pybuild0")
    net = ipaddress.IPv4Network("10.99.0.0/29")
    live = ipam.allocate(net, "live", "vpblive", ())
    ipam.allocate(net, "dead", "vpbdead", ())
    (tmp_path / "pybuild0" / "10.99.0.4").write_text('{"ports": ["nonsense"], "pid": "x"}')

    class Links:
        def exists(self, name):
            return name == link_name("live")

    stale = {str(lease.address) for lease in _stale(ipam, Links())}
    assert stale == {"10.99.0.3", "10.99.0.4"} and str(live.address) not in stale


def test_forward_blocked():
    assert firewall.forward_blocked("-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n")
    assert firewall.forward_blocked("-P FORWARD ACCEPT\n-A FORWARD -j REJECT --reject-with icmp-host-prohibited\n")
    assert not firewall.forward_blocked("-P FORWARD ACCEPT\n-A FORWARD -m comment --comment x -j CNI-FORWARD\n")
    rules = firewall.iptables_forward_rules("pybuild0")
    assert [r[3:5] for r in rules] == [["-i", "pybuild0"], ["-o", "pybuild0"]]
