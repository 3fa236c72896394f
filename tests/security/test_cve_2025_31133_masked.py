"""SECURITY-ANCHORS §8, CVE-2025-31133: maskedPaths with a hostile /dev/null, and
the readonlyPaths that go with them (RUNTIME-DEFAULTS).

Without a tmpfs on /dev the image's own /dev is used. A /dev/null that is a
symlink to core_pattern, or no /dev/null at all, must never turn masking into
a read-write bind of a procfs file or into a silent skip.
"""

from __future__ import annotations

import os

import pytest

MASKED_FILE = "/proc/timer_list"  # this kernel has no /proc/kcore


def _no_dev_mounts(b) -> None:
    b.config["mounts"] = [m for m in b.config["mounts"] if not m["destination"].startswith("/dev")]


def test_dev_null_symlink_to_core_pattern(rt, make_bundle, host) -> None:
    rt.oracle_gap("CVE-2025-31133: it bind-mounts core_pattern read-write over the masked path", dangerous=True)
    b = make_bundle()
    _no_dev_mounts(b)
    os.symlink("/proc/sys/kernel/core_pattern", os.path.join(b.rootfs, "dev", "null"))
    b.config["linux"]["maskedPaths"] = [MASKED_FILE, "/proc/keys"]
    b.sh(f"stat -c '%F %t:%T' {MASKED_FILE}; echo '|/tmp/pwn' > {MASKED_FILE}; echo rc=$?")
    out = rt.run(b)
    if out.returncode == 0:
        assert out.stdout.splitlines()[0] == "character special file 1:3", out.stdout
    # H2 (core_pattern unchanged) is checked by `host`


def test_dev_null_missing(rt, make_bundle, host) -> None:
    b = make_bundle()
    _no_dev_mounts(b)
    b.config["linux"]["maskedPaths"] = [MASKED_FILE]
    b.sh(f"cat {MASKED_FILE} | wc -c")
    out = rt.run(b)
    if out.returncode == 0:
        assert out.stdout.strip() == "0", f"{rt.name} left {MASKED_FILE} readable: {out.stdout}"


def test_masked_file_and_dir(rt, make_bundle, host) -> None:
    b = make_bundle()
    b.config["linux"]["maskedPaths"] = [MASKED_FILE, "/proc/acpi", "/proc/does-not-exist"]
    b.sh(f"stat -c '%F %t:%T' {MASKED_FILE}; cat {MASKED_FILE} | wc -c; ls -A /proc/acpi | wc -l; "
         "touch /proc/acpi/x 2>&1; echo touch=$?")
    out = rt.run(b)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "character special file 1:3"
    assert lines[1].strip() == "0" and lines[2].strip() == "0"
    assert "Read-only file system" in out.stdout and "touch=1" in out.stdout


@pytest.mark.parametrize("path", ["/proc/sys/kernel/domainname", "/proc/sys/kernel/hostname"])
def test_readonly_paths(rt, make_bundle, host, path: str) -> None:
    b = make_bundle()
    b.sh(f"( echo x > {path} ) 2>&1; echo rc=$?")
    out = rt.run(b)
    assert out.returncode == 0, out.stderr
    assert "Read-only file system" in out.stdout and "rc=1" in out.stdout
