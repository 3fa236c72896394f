"""capabilities.prepare_caps: names -> numbers, runc's defaults (CVE-2022-29162)."""

from __future__ import annotations

import pytest

from pyrunc import capabilities as caps
from pyrunc.capabilities import CapPlan, prepare_caps

DOCKER_DEFAULT = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                  "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                  "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def test_absent_capabilities_means_every_set_empty() -> None:
    plan = prepare_caps(None, last_cap=40)
    for which in caps.SETS:
        assert getattr(plan, which) == frozenset()
    assert plan.warnings == ()


def test_absent_inheritable_and_ambient_are_empty() -> None:
    plan = prepare_caps({"bounding": DOCKER_DEFAULT, "effective": DOCKER_DEFAULT,
                         "permitted": DOCKER_DEFAULT}, last_cap=40)
    assert plan.inheritable == frozenset()
    assert plan.ambient == frozenset()
    assert len(plan.bounding) == len(DOCKER_DEFAULT)


def test_numbers_follow_linux_capability_h() -> None:
    plan = prepare_caps({"bounding": ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE"]},
                        last_cap=40)
    assert plan.bounding == frozenset({0, 12, 21, 40})
    assert plan.mask("bounding") == (1 << 0) | (1 << 12) | (1 << 21) | (1 << 40)


def test_unknown_and_unavailable_names_are_ignored_with_a_warning() -> None:
    plan = prepare_caps({"bounding": ["CAP_CHOWN", "CAP_BOGUS", "cap_kill", "CAP_BPF"]}, last_cap=38)
    assert plan.bounding == frozenset({0})  # CAP_BPF (39) is above this kernel's last cap
    assert len(plan.warnings) == 1
    assert "CAP_BOGUS" in plan.warnings[0] and "cap_kill" in plan.warnings[0] and "CAP_BPF" in plan.warnings[0]


def test_ambient_needs_permitted_and_inheritable() -> None:
    plan = prepare_caps({"permitted": ["CAP_NET_RAW", "CAP_KILL"], "inheritable": ["CAP_NET_RAW"],
                         "ambient": ["CAP_NET_RAW", "CAP_KILL"]}, last_cap=40)
    assert plan.ambient == frozenset({13})
    assert any("CAP_KILL" in w for w in plan.warnings)


def test_accepts_spec_record_and_mapping_alike() -> None:
    from pyrunc import spec

    record = spec.Capabilities(bounding=("CAP_KILL",), effective=("CAP_KILL",), permitted=("CAP_KILL",))
    assert prepare_caps(record, last_cap=40) == prepare_caps(
        {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]}, last_cap=40)


def test_plan_is_immutable() -> None:
    plan = prepare_caps(None, last_cap=40)
    with pytest.raises(AttributeError):
        plan.bounding = frozenset({1})  # type: ignore[misc]
    assert isinstance(plan, CapPlan) and hash(plan) == hash(prepare_caps(None, last_cap=40))


def test_name_table_matches_python_prctl() -> None:
    import _prctl

    for number, name in enumerate(caps.CAP_NAMES):
        if hasattr(_prctl, name):
            assert getattr(_prctl, name) == number, name


def test_kernel_last_cap_reads_proc() -> None:
    assert 36 <= caps.kernel_last_cap() < 64
