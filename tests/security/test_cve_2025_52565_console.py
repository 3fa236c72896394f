"""SECURITY-ANCHORS §9, CVE-2025-52565: the /dev/console bind redirected by symlinks
of the image (`dev/console` or `dev/pts/0` pointing into /proc).

With `terminal: true` and a console-socket receiver, /dev/console must end up
the pty slave (char, major 136) or the runtime must refuse; H2 holds.
"""

from __future__ import annotations

import os

import pytest
from ttylib import ConsoleListener


def _no_dev_mounts(b, keep_devpts: bool = False) -> None:
    b.config["mounts"] = [m for m in b.config["mounts"] if not m["destination"].startswith("/dev")
                          or (keep_devpts and m["destination"] == "/dev/pts")]


@pytest.mark.parametrize("variant", ["console-link", "console-link-devpts", "pts-link"])
def test_console_redirect(rt, make_bundle, host, tmp_path, variant: str) -> None:
    """Variant A: the image's /dev (no tmpfs) with dev/console a link into /proc, with
    and without a devpts; variant B: no devpts, dev/pts/0 a link, dev/pts/ptmx a file."""
    if variant.startswith("console-link"):
        # runc 1.1.5 opens /dev/console with O_CREAT|O_TRUNC, following the link: it
        # would truncate the host's core_pattern before masking /proc/sys
        rt.oracle_gap("follows a /dev/console symlink", dangerous=True)
    b = make_bundle()
    b.process["terminal"] = True
    _no_dev_mounts(b, keep_devpts=variant == "console-link-devpts")
    if variant.startswith("console-link"):
        os.makedirs(os.path.join(b.rootfs, "dev", "pts"), exist_ok=True)
        os.symlink("/proc/sys/kernel/core_pattern", os.path.join(b.rootfs, "dev", "console"))
    else:
        os.makedirs(os.path.join(b.rootfs, "dev", "pts"))
        os.symlink("/proc/sys/kernel/core_pattern", os.path.join(b.rootfs, "dev", "pts", "0"))
        open(os.path.join(b.rootfs, "dev", "pts", "ptmx"), "w").close()
    b.sh("stat -L -c '%F %t' /dev/console; echo x > /dev/console; echo done")
    recv = ConsoleListener(str(tmp_path / "console.sock"))
    try:
        out = rt("run", "-d", "--console-socket", recv.path, "-b", b.path, rt.new_id())
        text = recv.wait(20).decode(errors="replace") if out.returncode == 0 else ""
    finally:
        recv.close()
    if out.returncode == 0:
        assert "character special file 88" in text and "done" in text, text
    else:
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    if rt.name == "pyrunc":  # pyrunc refuses each of these, naming what it found
        assert out.returncode != 0
        assert ("/dev/console" in out.stderr if variant == "console-link-devpts" else "/dev/pts" in out.stderr), \
            out.stderr
