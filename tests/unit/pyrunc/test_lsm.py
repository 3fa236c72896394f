"""lsm.check_lsm: asking for a label the host cannot apply is an error, never a silent skip."""

from __future__ import annotations

import pytest

from pyrunc import lsm
from pyrunc.errors import MissingFeature


def test_no_labels_no_checks() -> None:
    lsm.check_lsm(None, None, apparmor=False, selinux=False)
    lsm.check_lsm("", "", apparmor=False, selinux=False)


def test_apparmor_profile_without_apparmor() -> None:
    with pytest.raises(MissingFeature, match="apparmorProfile.*AppArmor is not enabled"):
        lsm.check_lsm("docker-default", None, apparmor=False, selinux=True)
    lsm.check_lsm("docker-default", None, apparmor=True, selinux=False)


def test_selinux_label_without_selinux() -> None:
    with pytest.raises(MissingFeature, match="selinuxLabel.*selinux is disabled or not supported"):
        lsm.check_lsm(None, "system_u:system_r:container_t:s0", apparmor=True, selinux=False)
    lsm.check_lsm(None, "system_u:system_r:container_t:s0", apparmor=False, selinux=True)


def test_detection_reads_the_module_parameter() -> None:
    assert lsm.apparmor_enabled(lambda path: "Y\n") is True
    assert lsm.apparmor_enabled(lambda path: "N") is False
    assert lsm.apparmor_enabled(lambda path: None) is False
    assert lsm.selinux_enabled(lambda path: path == lsm.SELINUX_ENFORCE) is True
    assert lsm.selinux_enabled(lambda path: False) is False
