"""Validation of `linux.seccomp`: one error naming the field, as runc refuses."""

from __future__ import annotations

import pytest

from pyrunc.errors import ConfigError, MissingFeature
from pyrunc.seccomp import bpf, ruledb, rules
from pyrunc.seccomp.arches import ARCHES
from pyrunc.spec import Seccomp

X86_64 = ARCHES["x86_64"]


def parse(obj: dict) -> rules.Profile:
    return rules.parse(obj, ".linux.seccomp", X86_64)


def rule(**kw) -> dict:  # type: ignore[no-untyped-def]
    return {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", **kw}


@pytest.mark.parametrize("obj, field, text", [
    ({"defaultAction": "SCMP_ACT_NOPE"}, ".linux.seccomp.defaultAction", "unknown action"),
    ({}, ".linux.seccomp.defaultAction", "required"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, ".linux.seccomp.defaultAction", "default"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]},
     ".linux.seccomp.architectures[0]", "unknown architecture"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_S390X"]},
     ".linux.seccomp.architectures[0]", "byte order"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]},
     ".linux.seccomp.flags[0]", "unknown seccomp flag"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(), rule(action="SCMP_ACT_KILLL")]},
     ".linux.seccomp.syscalls[1].action", "unknown action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(names=[])]},
     ".linux.seccomp.syscalls[0].names", "non-empty"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [rule(args=[{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}])]},
     ".linux.seccomp.syscalls[0].args[0].op", "unknown operator"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [rule(args=[{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}])]},
     ".linux.seccomp.syscalls[0].args[0].index", "0..5"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [rule(args=[{"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}])]},
     ".linux.seccomp.syscalls[0].args[0].value", "64-bit"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(errnoRet=70000)]},
     ".linux.seccomp.syscalls[0].errnoRet", "0..65535"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(action="SCMP_ACT_NOTIFY")]},
     ".linux.seccomp.listenerPath", "listenerPath"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
      "syscalls": [rule(names=["write"], action="SCMP_ACT_NOTIFY")]},
     ".linux.seccomp.syscalls[0].names", "write"),
])
def test_bad_input_names_the_field(obj: dict, field: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(obj)
    assert info.value.field == field
    assert text in str(info.value)
    assert str(info.value).startswith(f"config.json: {field}: ")


def test_known_but_unsupported_arch_is_missing_feature() -> None:
    with pytest.raises(MissingFeature, match="SCMP_ARCH_MIPS"):
        parse({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_MIPS"]})


def test_defaults_follow_runc() -> None:
    p = parse({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        rule(action="SCMP_ACT_TRACE"), rule(action="SCMP_ACT_KILL"), rule(errnoRet=13)]})
    assert p.default_action == bpf.RET_ERRNO | 1
    assert [r.action for r in p.rules] == [bpf.RET_TRACE | 1, bpf.RET_KILL_THREAD, bpf.RET_ERRNO | 13]
    assert p.arches == (X86_64,) and p.flags is None


def test_masked_eq_takes_mask_from_value() -> None:
    p = parse({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(args=[
        {"index": 1, "value": 0xF0, "valueTwo": 0x30, "op": "SCMP_CMP_MASKED_EQ"}])]})
    assert p.rules[0].args[0] == rules.ArgCheck(1, 7, 0xF0, 0x30)


def test_identical_checks_with_different_actions_conflict() -> None:
    args = [{"index": 0, "value": 5, "op": "SCMP_CMP_EQ"}]
    p = parse({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        rule(args=args), {"names": ["mkdir"], "action": "SCMP_ACT_KILL", "args": args}]})
    with pytest.raises(ConfigError) as info:
        ruledb.build(p)
    assert info.value.field == ".linux.seccomp.syscalls[1]"
    assert "EEXIST" in str(info.value)


def test_unknown_names_are_skipped() -> None:
    p = parse({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule(names=["no_such_call", "mkdir"])]})
    dbs = ruledb.build(p)
    assert list(dbs[0].db.syscalls) == [X86_64.number("mkdir")]


def test_rule_set_that_hangs_libseccomp_is_refused() -> None:
    """libseccomp 2.5.4 loops forever in seccomp_rule_add on this pair (runc would
    hang); pyrunc names the rule instead."""
    def a(i: int, op: str, v: int, two: int = 0) -> dict:
        return {"index": i, "op": f"SCMP_CMP_{op}", "value": v, "valueTwo": two}

    p = parse({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_LOG",
         "args": [a(0, "MASKED_EQ", 1, 2), a(2, "GT", 0x80000000), a(1, "GT", 0)]},
        {"names": ["read"], "action": "SCMP_ACT_LOG",
         "args": [a(0, "MASKED_EQ", 1, 2), a(5, "GT", 0x80000000), a(1, "GT", 0)]}]})
    with pytest.raises(ConfigError) as info:
        ruledb.build(p)
    assert info.value.field == ".linux.seccomp.syscalls[1]"
    assert "never finishes" in str(info.value)


def test_empty_seccomp_object_means_no_filter_as_runc() -> None:
    from pyrunc import seccomp

    prepared = seccomp.prepare(Seccomp(default_action=""))  # runc's rule; config.json requires defaultAction
    assert prepared.program == b"" and not prepared.needs_notify
    assert seccomp.load(prepared) is None  # nothing loaded into this process
