"""SECURITY-ANCHORS §9, CVE-2025-52565: the /dev/console bind redirected by symlinks
of the image (`dev/console` or `dev/pts/0` pointing into /proc).

With `terminal: true` and a console-socket receiver, /dev/console must end up
the pty slave (char, major 136) or the runtime must refuse; H2 holds.
"""

from __future__ import annotations

import array
import os
import socket
import threading

import pytest


class ConsoleReceiver:
    """A --console-socket listener that takes the pty master and drains it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.output = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(30)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        fds = array.array("i")
        _msg, anc, _flags, _addr = conn.recvmsg(1024, socket.CMSG_LEN(4 * fds.itemsize))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
        conn.close()
        for fd in fds:
            try:
                while chunk := os.read(fd, 4096):
                    self.output += chunk
            except OSError:
                pass
            os.close(fd)

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


def _no_dev_mounts(b) -> None:
    b.config["mounts"] = [m for m in b.config["mounts"] if not m["destination"].startswith("/dev")]


@pytest.mark.parametrize("variant", ["console-link", "pts-link"])
def test_console_redirect(rt, make_bundle, host, tmp_path, variant: str) -> None:
    b = make_bundle()
    b.process["terminal"] = True
    _no_dev_mounts(b)
    if variant == "console-link":
        os.symlink("/proc/sys/kernel/core_pattern", os.path.join(b.rootfs, "dev", "console"))
    else:
        os.makedirs(os.path.join(b.rootfs, "dev", "pts"))
        os.symlink("/proc/sys/kernel/core_pattern", os.path.join(b.rootfs, "dev", "pts", "0"))
        open(os.path.join(b.rootfs, "dev", "pts", "ptmx"), "w").close()
    b.sh("stat -L -c '%F %t' /dev/console; echo x > /dev/console; echo done")
    recv = ConsoleReceiver(str(tmp_path / "console.sock"))
    try:
        out = rt("run", "--console-socket", recv.path, "-b", b.path, rt.new_id())
    finally:
        recv.close()
    if out.returncode == 0:
        text = recv.output.decode(errors="replace")
        assert "character special file 88" in text, text
