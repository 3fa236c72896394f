"""SECURITY-ANCHORS §5 and §15, CVE-2026-41579 / CVE-2026-47766 / crun 88264-88265 /
CVE-2025-24965: /dev and the files the runtime makes in the rootfs, planted as
symlinks to the host.

The runtime creates device nodes, the fd/stdin/stdout/stderr/core/ptmx links
and (for terminals) /dev/console. None of that may follow a symlink of the
image out to the host: the host directory's `ptmx` canary stays, no link or
node appears there, and the container's stdio is never a planted host file.
"""

from __future__ import annotations

import os

import pytest

DEV_NAMES = ("fd", "stdin", "stdout", "stderr", "core", "console", "null", "zero", "full", "tty", "random",
             "urandom", "pts", "shm", "mqueue")


def _no_dev_mounts(b) -> None:
    b.config["mounts"] = [m for m in b.config["mounts"] if not m["destination"].startswith("/dev")]


@pytest.mark.parametrize("dev_mount", [True, False], ids=["tmpfs-dev", "no-dev-mount"])
def test_dev_symlink_to_host_dir(rt, make_bundle, host, host_dir, dev_mount: bool) -> None:
    rt.oracle_gap("CVE-2026-41579: it follows the /dev symlink and makes fd/stdin/stdout/stderr/ptmx there")
    devtarget = os.path.join(host_dir, "devtarget")
    host.canary(os.path.join(devtarget, "ptmx"), "ptmx canary\n")
    b = make_bundle()
    b.replace("dev")
    os.symlink(devtarget, os.path.join(b.rootfs, "dev"))
    if not dev_mount:
        _no_dev_mounts(b)
    b.sh("ls -la /dev/ 2>&1; echo done")
    out = rt.run(b)
    assert sorted(os.listdir(devtarget)) == ["ptmx"], f"{rt.name}: {os.listdir(devtarget)} rc={out.returncode}"


def test_dev_null_planted_as_host_file(rt, make_bundle, host, host_dir) -> None:
    canary = host.canary(os.path.join(host_dir, "pyrunc-canary"), "do not touch\n")
    b = make_bundle()
    _no_dev_mounts(b)
    for name in ("null", "zero", "console", "tty", "full"):
        os.symlink(canary, os.path.join(b.rootfs, "dev", name))
    b.sh("echo hello-stdout; echo x > /dev/null; ls -l /proc/self/fd/ 2>&1")
    out = rt.run(b)
    if out.returncode == 0:
        assert "hello-stdout" in out.stdout
    # the host canary (mode, owner, inode, content) is checked by `host` at teardown


@pytest.mark.parametrize("name", ["etc/hostname", "etc/resolv.conf", "etc/hosts", ".dockerenv",
                                  "dev/ptmx", "dev/fd"])
def test_runtime_made_files_do_not_follow_links(rt, make_bundle, host, host_dir, name: str) -> None:
    canary = host.canary(os.path.join(host_dir, "pyrunc-canary"), "canary\n")
    b = make_bundle()
    if name.startswith("dev/"):
        _no_dev_mounts(b)
    path = b.replace(name)
    os.symlink(canary, path)
    b.sh("cat /etc/hostname 2>/dev/null; true")
    rt.run(b)
