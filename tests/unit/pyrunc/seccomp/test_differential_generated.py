"""Generated profiles: random defaults, actions, names (including socket and IPC
calls, which x86/s390x/ppc64 multiplex), several rules per syscall and several
checks per rule, every operator on full 64-bit values. libseccomp (as runc
drives it) and pyrunc must agree on every decision, and must refuse the same
profiles (EEXIST for identical checks with different actions)."""

from __future__ import annotations

import pytest

pyseccomp = pytest.importorskip("pyseccomp")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pyrunc.errors import ConfigError  # noqa: E402
from pyrunc.seccomp import codegen, ruledb, rules  # noqa: E402
from pyrunc.seccomp.arches import ARCHES  # noqa: E402
from pyrunc.seccomp.reference import LibseccompHang  # noqa: E402

from .oracle import disagreements, libseccomp_insns  # noqa: E402

NAMES = ["read", "clone", "personality", "socket", "connect", "recv", "semop", "shmat",
         "open", "openat", "ioctl", "mmap", "kill"]
VALUES = [0, 1, 2, 5, 0x7F, 0x80000000, 0xFFFFFFFF, 1 << 32, (1 << 32) + 1, (1 << 32) + 5,
          0xFFFFFFFF00000000, 0xFFFFFFFFFFFFFFFF]
ACTIONS = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP",
           "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_KILL", "SCMP_ACT_NOTIFY"]
OPS = ["SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
       "SCMP_CMP_MASKED_EQ"]
ARCH_SETS = {
    "x86_64": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"], "x86_64-only": [], "x86_64+x32": ["SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_ARM"], "s390x": ["SCMP_ARCH_S390"], "ppc64le": [], "riscv64": [],
    "x86": [], "arm": [],
}
# 30 more names: with them a profile has more than 32 syscall entries, so runc
# asks libseccomp for its binary-tree layout (which changes its accumulator walk)
PADDING = ["getpid", "getppid", "getuid", "geteuid", "getgid", "getegid", "gettid", "uname",
           "close", "dup", "dup3", "pipe2", "fstat", "lseek", "pread64", "pwrite64", "readv",
           "writev", "madvise", "mprotect", "munmap", "brk", "rt_sigaction", "rt_sigprocmask",
           "rt_sigreturn", "sched_yield", "nanosleep", "exit", "exit_group", "futex"]

arg_st = st.fixed_dictionaries({
    "index": st.sampled_from([0, 0, 1, 1, 2, 5]), "op": st.sampled_from(OPS),
    "value": st.sampled_from(VALUES), "valueTwo": st.sampled_from(VALUES)})
rule_st = st.fixed_dictionaries({
    "names": st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True),
    "action": st.sampled_from(ACTIONS),
    "errnoRet": st.sampled_from([1, 13, 38]),
    "args": st.lists(arg_st, max_size=3)})
profile_st = st.fixed_dictionaries({
    "defaultAction": st.sampled_from(["SCMP_ACT_ERRNO", "SCMP_ACT_ALLOW", "SCMP_ACT_KILL_THREAD"]),
    "defaultErrnoRet": st.sampled_from([1, 38]),
    "listenerPath": st.just("/run/agent.sock"),
    "syscalls": st.lists(rule_st, min_size=1, max_size=7)})


def _arg_sets() -> list[tuple[int, ...]]:
    sets = [()]
    for v in VALUES:
        for d in (-1, 0, 1):
            x = (v + d) & 0xFFFFFFFFFFFFFFFF
            sets += [(x,), (0, x), (0, 0, x), (x, x, x), (0, 0, 0, 0, 0, x)]
    return sets


ARG_SETS = _arg_sets()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profile=profile_st, arch_set=st.sampled_from(sorted(ARCH_SETS)),
       padding=st.sampled_from([None, "SCMP_ACT_ALLOW", "SCMP_ACT_LOG"]))
def test_generated_profiles_agree(profile: dict, arch_set: str, padding: str | None) -> None:
    native = ARCHES[arch_set.split("-")[0].split("+")[0]]
    syscalls = list(profile["syscalls"])
    if padding:
        syscalls.insert(0, {"names": PADDING, "action": padding})
    oci = {**profile, "syscalls": syscalls, "architectures": ARCH_SETS[arch_set]}
    parsed = rules.parse(oci, ".linux.seccomp", native)
    try:
        theirs = libseccomp_insns(parsed, native)
    except (OSError, LibseccompHang):  # refused (EEXIST), or looped forever
        theirs = None
    try:
        mine = codegen.generate(ruledb.build(parsed), parsed.default_action,
                                libseccomp_tree=ruledb.libseccomp_tree_layout(parsed))
    except ConfigError:
        mine = None
    assert (mine is None) == (theirs is None), "only one compiler refused the profile"
    if mine is None or theirs is None:
        return
    nrs = {}
    for arch in parsed.arches:
        wanted = {arch.number(n) for n in NAMES + PADDING[:4]} | {arch.socketcall, arch.ipc, 0xFFFFFFFF}
        nrs[arch.name] = sorted(n for n in wanted if n is not None)
    bad = disagreements(parsed, mine, theirs, ARG_SETS, nrs)
    assert bad == [], f"{len(bad)} disagreements, first: {bad[:3]}"
