"""Published ports on 127.0.0.1 need `route_localnet=1` on pybuild's bridge; that must not open the
host's loopback services to the containers on it (CVE-2020-8558, kube-proxy's version of the bug).

A container has CAP_NET_RAW by default (docker's set), so it can put any frame on its eth0: here a
UDP datagram to 127.0.0.1 sent to the bridge's MAC. It must not reach a socket bound to the host's
127.0.0.1, while the same datagram to the bridge's own address does (the control), and with
pybuild's raw-prerouting drop taken away it does too (so the test sees the attack, not a fluke).
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import uuid

import pytest

pytestmark = pytest.mark.skipif(shutil.which("nft") is None, reason="nft is not installed")


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(dst_mac: bytes, src_mac: bytes, src: str, dst: str, port: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + udp


def _send_from(netns_fd: int, frames: list[bytes]) -> None:
    """In a child that joined the container's netns: send the frames on eth0."""
    from pyrunc import syscalls

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            syscalls.setns(netns_fd, syscalls.CLONE_NEWNET)
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
                s.bind(("eth0", 0))
                src_mac = s.getsockname()[4]
                for f in frames:
                    s.send(f[:6] + src_mac + f[12:])
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _received(sock: socket.socket) -> bytes | None:
    try:
        return sock.recv(100)
    except socket.timeout:
        return None


def test_bridge_containers_cannot_reach_host_loopback(tmp_path):
    from pybuild.net import plumbing
    from pybuild.net.model import base_table

    bridge = f"pbl{uuid.uuid4().hex[:6]}"
    req = plumbing.NetRequest(f"sec-localnet-{uuid.uuid4().hex[:8]}", bridge, state_dir=str(tmp_path / "net"))
    fd = plumbing.new_netns()
    socks = []
    try:
        att = plumbing.setup(req, fd)
        with open(f"/sys/class/net/{bridge}/address") as fh:
            gw_mac = bytes.fromhex(fh.read().strip().replace(":", ""))
        me = str(att.address)

        def listener(addr: str) -> socket.socket:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((addr, 0))
            s.settimeout(1.0)
            socks.append(s)
            return s

        control, loopback = listener("0.0.0.0"), listener("127.0.0.1")
        _send_from(fd, [_frame(gw_mac, b"\0" * 6, me, str(att.gateway), control.getsockname()[1], b"control"),
                        _frame(gw_mac, b"\0" * 6, me, "127.0.0.1", loopback.getsockname()[1], b"attack")])
        assert _received(control) == b"control"
        assert _received(loopback) is None, "a container reached a socket bound to the host's 127.0.0.1"
        # without pybuild's drop the same frame gets through: the rule is what stops it
        os.system(f"nft delete chain ip {base_table(bridge)} localnet")
        _send_from(fd, [_frame(gw_mac, b"\0" * 6, me, "127.0.0.1", loopback.getsockname()[1], b"attack")])
        assert _received(loopback) == b"attack"
    finally:
        for s in socks:
            s.close()
        os.close(fd)
        plumbing.teardown(req)
