"""Decisions of compiled filters, run in the interpreter: the libseccomp
precedence rules, 64-bit comparisons, the x32 bit, bad arches and multiplexed
socket calls."""

from __future__ import annotations

import pytest

from pyrunc.seccomp import bpf, codegen, ruledb, rules
from pyrunc.seccomp.arches import ARCHES, X32_SYSCALL_BIT

X86_64 = ARCHES["x86_64"]


def decide(obj: dict, name: str | int, *args: int, arch: str = "x86_64", native: str = "x86_64") -> str:
    profile = rules.parse(obj, ".linux.seccomp", ARCHES[native])
    program = codegen.generate(ruledb.build(profile), profile.default_action)
    a = ARCHES[arch]
    nr = name if isinstance(name, int) else a.number(name)
    assert nr is not None
    data = bpf.seccomp_data(nr, a.audit, args, big_endian=a.big_endian)
    return bpf.action_name(bpf.run(program, data, big_endian=a.big_endian)[0])


def prof(*rules_: dict, default: str = "SCMP_ACT_ALLOW", arches: list[str] | None = None) -> dict:
    out: dict = {"defaultAction": default, "syscalls": list(rules_)}
    if arches:
        out["architectures"] = arches
    return out


def r(action: str, *names: str, args: list | None = None, errno: int | None = None) -> dict:
    out: dict = {"names": list(names), "action": action}
    if args:
        out["args"] = args
    if errno is not None:
        out["errnoRet"] = errno
    return out


def arg(index: int, op: str, value: int, two: int = 0) -> dict:
    return {"index": index, "op": f"SCMP_CMP_{op}", "value": value, "valueTwo": two}


def test_errno_and_default() -> None:
    p = prof(r("SCMP_ACT_ERRNO", "mkdir", errno=13))
    assert decide(p, "mkdir") == "ERRNO(13)"
    assert decide(p, "read") == "ALLOW"


def test_first_unconditional_rule_wins() -> None:
    p = prof(r("SCMP_ACT_ERRNO", "setns"), r("SCMP_ACT_LOG", "setns"), default="SCMP_ACT_KILL")
    assert decide(p, "setns") == "ERRNO(1)"


def test_unconditional_beats_conditional_in_any_order() -> None:
    cond = r("SCMP_ACT_ERRNO", "kill", args=[arg(0, "EQ", 1)])
    plain = r("SCMP_ACT_LOG", "kill")
    for order in ([cond, plain], [plain, cond]):
        assert decide(prof(*order), "kill", 1) == "LOG"


@pytest.mark.parametrize("op, value, yes, no", [
    ("EQ", 1 << 32, [1 << 32], [0, 1, (1 << 32) + 1]),
    ("NE", 5, [4, 5 + (1 << 32)], [5]),
    ("GT", (1 << 32) + 1, [(1 << 32) + 2, 2 << 32], [(1 << 32) + 1, 0xFFFFFFFF]),
    ("GE", 1 << 32, [1 << 32, 0xFFFFFFFFFFFFFFFF], [0xFFFFFFFF]),
    ("LT", 1 << 32, [0xFFFFFFFF, 0], [1 << 32, (1 << 32) + 1]),
    ("LE", 1 << 32, [1 << 32, 7], [(1 << 32) + 1]),
])
def test_64_bit_comparisons(op: str, value: int, yes: list[int], no: list[int]) -> None:
    p = prof(r("SCMP_ACT_ERRNO", "personality", args=[arg(0, op, value)]))
    for v in yes:
        assert decide(p, "personality", v) == "ERRNO(1)", hex(v)
    for v in no:
        assert decide(p, "personality", v) == "ALLOW", hex(v)


def test_masked_eq_and_and_of_args() -> None:
    p = prof(r("SCMP_ACT_ERRNO", "clone", args=[arg(0, "MASKED_EQ", 0x7E020000, 0),
                                               arg(1, "EQ", 0)]), default="SCMP_ACT_ALLOW")
    assert decide(p, "clone", 0x11, 0) == "ERRNO(1)"
    assert decide(p, "clone", 0x10000000, 0) == "ALLOW"
    assert decide(p, "clone", 0x11, 1) == "ALLOW"


def test_same_index_twice_is_or_like_runc() -> None:
    p = prof(r("SCMP_ACT_ERRNO", "kill", args=[arg(1, "EQ", 9), arg(1, "EQ", 15)]))
    assert decide(p, "kill", 0, 9) == "ERRNO(1)"
    assert decide(p, "kill", 0, 15) == "ERRNO(1)"
    assert decide(p, "kill", 0, 1) == "ALLOW"


def test_32_bit_abi_compares_low_words_only() -> None:
    p = prof(r("SCMP_ACT_ERRNO", "personality", args=[arg(0, "EQ", 8)]), arches=["SCMP_ARCH_X86"])
    assert decide(p, "personality", (1 << 32) + 8, arch="x86") == "ERRNO(1)"
    assert decide(p, "personality", (1 << 32) + 8) == "ALLOW"


def test_bad_arch_and_x32() -> None:
    p = prof(r("SCMP_ACT_ERRNO", "mkdir"))
    assert decide(p, "mkdirat", arch="aarch64") == "KILL_THREAD"
    assert decide(p, X32_SYSCALL_BIT + 83) == "KILL_THREAD"
    assert decide(p, 0xFFFFFFFF) == "ALLOW"
    with_x32 = prof(r("SCMP_ACT_ERRNO", "mkdir"), arches=["SCMP_ARCH_X32"])
    assert decide(with_x32, "mkdir", arch="x32") == "ERRNO(1)"
    assert decide(with_x32, X32_SYSCALL_BIT + 5000) == "ALLOW"


def test_socket_rules_cover_socketcall_on_x86() -> None:
    p = prof(r("SCMP_ACT_ERRNO", "socket", args=[arg(0, "EQ", 40)]), arches=["SCMP_ARCH_X86"])
    assert decide(p, "socket", 40, arch="x86") == "ERRNO(1)"
    assert decide(p, "socketcall", 1, arch="x86") == "ERRNO(1)"   # arg0 is the call number
    assert decide(p, "socketcall", 2, arch="x86") == "ALLOW"
