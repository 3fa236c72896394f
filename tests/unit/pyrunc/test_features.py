"""`pyrunc features`: the report matches what the implementing modules accept and refuse."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from pyrunc import features, spec
from pyrunc.errors import MissingFeature, PyruncError
from pyrunc.config.checks import NAMESPACE_TYPES

REPORT = features.collect()


def test_shape_and_versions():
    assert list(REPORT) == ["ociVersionMin", "ociVersionMax", "hooks", "mountOptions", "linux", "annotations"]
    assert REPORT["ociVersionMax"] == spec.OCI_VERSION
    assert REPORT["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer",
                               "poststart", "poststop"]
    assert set(REPORT["linux"]) >= {"namespaces", "capabilities", "cgroup", "seccomp", "apparmor",
                                    "selinux", "intelRdt", "mountExtensions"}


def test_every_namespace_type_of_the_spec_is_supported():
    assert sorted(REPORT["linux"]["namespaces"]) == sorted(NAMESPACE_TYPES)


@pytest.mark.parametrize("option", REPORT["mountOptions"])
def test_advertised_mount_options_are_accepted(option):
    from pyrunc import mountopts

    mountopts.parse((option,), "tmpfs", ".mounts[0]")


def test_idmap_is_advertised_where_the_kernel_has_it():
    """The probe, not a constant: runs a container with it in test_features_live.py."""
    on = features.idmap_supported()
    assert REPORT["linux"]["mountExtensions"]["idmap"]["enabled"] is on
    assert ("idmap" in REPORT["mountOptions"]) is on and ("ridmap" in REPORT["mountOptions"]) is on


def test_lsm_is_advertised_where_the_host_has_it():
    from pyrunc import lsm

    assert REPORT["linux"]["apparmor"]["enabled"] is lsm.apparmor_enabled()
    assert REPORT["linux"]["selinux"]["enabled"] is lsm.selinux_enabled()


def test_seccomp_tables_are_the_ones_the_compiler_accepts():
    from pyrunc.seccomp import rules

    sc = REPORT["linux"]["seccomp"]
    for action in sc["actions"]:
        rule = {"names": ["getpid"], "action": action}
        rules.parse({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule], "listenerPath": "/l"})
    for op in sc["operators"]:
        rule = {"names": ["getpid"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "valueTwo": 1, "op": op}]}
        rules.parse({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})
    for arch in sc["archs"]:
        rules.parse({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]})
    rules.parse({"defaultAction": "SCMP_ACT_ALLOW", "flags": sc["knownFlags"]})
    assert set(sc["supportedFlags"]) <= set(sc["knownFlags"])
    assert "SECCOMP_FILTER_FLAG_TSYNC" in sc["supportedFlags"]  # in every kernel since 3.17
    with pytest.raises(PyruncError):
        rules.parse({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_MIPS"]})
    assert "SCMP_ARCH_MIPS" not in sc["archs"]


def test_systemd_cgroup_driver_is_not_advertised_and_refuses():
    from pyrunc.cgroups import systemd

    assert REPORT["linux"]["cgroup"]["systemd"] is False
    with pytest.raises(PyruncError):
        systemd.new_manager("system.slice:pyrunc:x", "x")


def test_capabilities_are_the_capability_modules_names():
    from pyrunc import capabilities

    caps = REPORT["linux"]["capabilities"]
    assert caps[0] == "CAP_CHOWN" and "CAP_SYS_ADMIN" in caps
    assert caps == list(capabilities.CAP_NAMES)


def test_cli_prints_the_report(capsys):
    from pyrunc.cli import main

    assert main(["features"]) == 0
    assert json.loads(capsys.readouterr().out) == REPORT


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_same_vocabulary_as_runc_features():
    runc = json.loads(subprocess.run(["runc", "features"], capture_output=True, check=True).stdout)
    assert set(runc) <= set(REPORT)
    assert set(runc["linux"]) <= set(REPORT["linux"])
    assert runc["hooks"] == REPORT["hooks"]
    assert runc["linux"]["capabilities"] == REPORT["linux"]["capabilities"]
    assert set(runc["linux"]["seccomp"]["actions"]) == set(REPORT["linux"]["seccomp"]["actions"])
    assert set(runc["linux"]["seccomp"]["operators"]) == set(REPORT["linux"]["seccomp"]["operators"])
