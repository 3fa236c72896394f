"""SECURITY-ANCHORS §10, CVE-2025-52881: runtime writes to /proc redirected.

sysctl keys with path tricks and host-wide keys are refused; a bind of
core_pattern over the namespaced domainname file must not turn the runtime's
sysctl write into a core_pattern write; a bind over attr/exec must not swallow
an LSM label. H2 (core_pattern unchanged) is checked by `host`.
"""

from __future__ import annotations

import os

import pytest


@pytest.mark.parametrize("key", ["kernel/../../sysrq-trigger", "../sysrq-trigger", "kernel.core_pattern",
                                 "kernel..core_pattern", "net/../kernel/core_pattern"])
def test_bad_sysctl_keys_are_refused(rt, make_bundle, host, key: str) -> None:
    b = make_bundle()
    b.config["linux"]["sysctl"] = {key: "|/tmp/pwn"}
    b.sh("echo ran")
    out = rt.run(b)
    assert out.returncode != 0 and "ran" not in out.stdout, f"{rt.name} accepted sysctl {key!r}"


def test_namespaced_sysctls_are_written(rt, make_bundle, host) -> None:
    b = make_bundle()
    b.config["linux"]["sysctl"] = {"kernel.domainname": "sec.example", "kernel.shmmax": "123456789",
                                   "net.ipv4.ip_forward": "1"}
    b.sh("cat /proc/sys/kernel/domainname /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward")
    out = rt.run(b)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["sec.example", "123456789", "1"]


def test_sysctl_without_its_namespace_is_refused(rt, make_bundle, host) -> None:
    b = make_bundle()
    b.config["linux"]["namespaces"] = [n for n in b.config["linux"]["namespaces"] if n["type"] != "network"]
    b.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    b.sh("echo ran")
    out = rt.run(b)
    assert out.returncode != 0, f"{rt.name} wrote a net sysctl in the host's network namespace"


def test_bind_over_sysctl_file(rt, make_bundle, host) -> None:
    b = make_bundle()
    b.config["mounts"].append({"destination": "/proc/sys/kernel/domainname", "type": "bind",
                               "source": "/proc/sys/kernel/core_pattern", "options": ["bind"]})
    b.config["linux"]["sysctl"] = {"kernel.domainname": "x"}
    b.sh("echo ran")
    out = rt.run(b)
    if out.returncode == 0:
        assert "ran" in out.stdout


def test_bind_over_attr_exec_with_label(rt, make_bundle, host) -> None:
    b = make_bundle()
    decoy = os.path.join(b.path, "decoy")
    with open(decoy, "w") as f:
        f.write("")
    b.config["mounts"].append({"destination": "/proc/self/attr/exec", "type": "bind", "source": decoy,
                               "options": ["bind"]})
    b.process["apparmorProfile"] = "pyrunc-test"
    b.sh("echo ran")
    out = rt.run(b)
    assert out.returncode != 0, f"{rt.name} ran without the label it was asked for"
    assert open(decoy).read() == ""
