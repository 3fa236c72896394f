"""`pyrunc explain` reads a hostile image's rootfs: nothing it resolves or reads leaves the rootfs,
and nothing planted there can make it block. (docs/SECURITY.md §3)"""

from __future__ import annotations

import os

from pyrunc import explain_plan, spec as specmod


def _plan(tmp_path, **changes) -> dict:
    config = specmod.default_config()
    config.update(changes)
    return explain_plan.build(specmod.parse(config), str(tmp_path))


def _etc(tmp_path):
    etc = tmp_path / "rootfs" / "etc"
    os.makedirs(etc)
    return etc


def test_passwd_symlink_to_a_host_path_stays_in_the_rootfs(tmp_path):
    etc = _etc(tmp_path)
    (etc / "shadow-home").write_text("root:x:0:0:root:/inside:/bin/sh\n")
    os.symlink("/etc/shadow-home", etc / "passwd")  # absolute: on the host it would be the host's file
    assert _plan(tmp_path)["process"]["env"][-1] == "HOME=/inside"
    os.unlink(etc / "passwd")
    os.symlink("../../../../../../../etc/passwd", etc / "passwd")  # .. clamped at the rootfs: missing there
    assert _plan(tmp_path)["process"]["env"][-1] == "HOME=/"


def test_fifo_or_device_as_passwd_does_not_block(tmp_path):
    etc = _etc(tmp_path)
    os.mkfifo(etc / "passwd")
    assert _plan(tmp_path)["process"]["env"][-1] == "HOME=/"
    os.unlink(etc / "passwd")
    os.mknod(etc / "passwd", 0o20644, os.makedev(1, 5))  # /dev/zero: reading would never end
    assert _plan(tmp_path)["process"]["env"][-1] == "HOME=/"


def test_mount_targets_resolve_inside_the_rootfs(tmp_path):
    _etc(tmp_path)
    os.symlink("/", tmp_path / "rootfs" / "up")
    os.symlink("../../../../..", tmp_path / "rootfs" / "dots")
    mounts = [{"destination": "/up/etc/x", "type": "tmpfs", "source": "tmpfs"},
              {"destination": "/dots/tmp/y", "type": "tmpfs", "source": "tmpfs"}]
    ops = {op["destination"]: op["target"] for op in _plan(tmp_path, mounts=mounts)["rootfs"]["ops"]
           if op["kind"] == "mount"}
    assert ops == {"/up/etc/x": "/etc/x", "/dots/tmp/y": "/tmp/y"}  # inside paths, never the host's
