"""SECURITY-ANCHORS §12, CVE-2022-29162 / CVE-2022-27650: inheritable capabilities
default to empty.

A non-root process runs a copy of busybox carrying file capabilities
cap_net_admin,cap_dac_override+ei. Had the runtime filled the inheritable set,
the kernel would hand those caps over at exec (pP' = pI & fI). noNewPrivileges
is off, or file caps would be ignored and the test could not fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from seclib import DOCKER_CAPS, parse_status

SCRIPT = ("grep -E '^Cap(Inh|Prm|Eff|Amb)' /proc/self/status; echo ---; "
          "/capbin/busybox grep -E '^Cap(Inh|Prm|Eff|Amb)' /proc/self/status")


def capbb_bundle(make_bundle):
    setcap = shutil.which("setcap")
    if setcap is None:
        pytest.skip("setcap (libcap2-bin) is not installed")
    b = make_bundle()
    os.makedirs(os.path.join(b.rootfs, "capbin"))
    capbb = os.path.join(b.rootfs, "capbin", "busybox")  # busybox needs its own name in argv[0]
    shutil.copy2(os.path.join(b.rootfs, "bin", "busybox"), capbb)
    subprocess.run([setcap, "cap_net_admin,cap_dac_override+ei", capbb], check=True)
    b.process["user"] = {"uid": 1000, "gid": 1000}
    b.process["noNewPrivileges"] = False
    b.process["capabilities"] = {"bounding": DOCKER_CAPS + ["CAP_NET_ADMIN"], "effective": [], "permitted": []}
    return b


def check(text: str) -> None:
    first, _, second = text.partition("---")
    for part in (first, second):
        status = parse_status(part)
        for key in ("CapInh", "CapAmb", "CapEff", "CapPrm"):
            assert int(status[key], 16) == 0, f"{key} in {part!r}"


def test_run_inheritable_empty(rt, make_bundle, host) -> None:
    b = capbb_bundle(make_bundle).sh(SCRIPT)
    out = rt.run(b)
    assert out.returncode == 0, out.stderr
    check(out.stdout)


def test_control_listed_inheritable_is_granted(rt, make_bundle, host) -> None:
    """The same bundle with inheritable listed does gain the cap: the test above can fail."""
    b = capbb_bundle(make_bundle)
    b.process["capabilities"]["inheritable"] = ["CAP_NET_ADMIN"]
    b.sh("/capbin/busybox grep -E '^CapEff' /proc/self/status")
    out = rt.run(b)
    assert out.returncode == 0, out.stderr
    assert int(parse_status(out.stdout)["CapEff"], 16) == 1 << 12


def test_exec_inheritable_empty(rt, make_bundle, host) -> None:
    rt.require("exec")
    cid = rt.detach(capbb_bundle(make_bundle).args("sleep", "30"))
    out = rt("exec", cid, "sh", "-c", SCRIPT)
    assert out.returncode == 0, out.stderr
    check(out.stdout)
