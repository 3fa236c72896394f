"""A checked `spec.Seccomp` → the compiler's `Profile`: action numbers, `Arch` objects.

config.seccomp is the one validator of a profile's fields (names, enums, ranges of
JSON); this module keeps only what a well-formed profile can still break here, as
runc's conversion (specconv.SetupSeccomp, seccomp.InitSeccomp) refuses it, each a
ConfigError naming the field (".linux.seccomp.syscalls[3].args[0].index", ...):
an errno above 65535 (SECCOMP_RET_DATA), an argument index above 5, NOTIFY as the
default action or for `write` (init must still write its notify fd to the parent)
or without a listenerPath, and architectures this host cannot filter (another byte
order; no syscall table: MissingFeature). Semantics kept from runc: an absent
`errnoRet`/`defaultErrnoRet` means EPERM for ERRNO and TRACE; KILL is KILL_THREAD.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from pyrunc.errors import ConfigError, MissingFeature
from pyrunc.seccomp import bpf
from pyrunc.seccomp.arches import BY_SCMP, UNSUPPORTED_SCMP, Arch, native
from pyrunc.seccomp.ruletree import EQ, GE, GT, LE, LT, MASKED_EQ, NE
from pyrunc.spec import Seccomp, Syscall, SyscallArg

ACTIONS = {
    "SCMP_ACT_KILL": bpf.RET_KILL_THREAD, "SCMP_ACT_KILL_THREAD": bpf.RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": bpf.RET_KILL_PROCESS, "SCMP_ACT_TRAP": bpf.RET_TRAP,
    "SCMP_ACT_ERRNO": bpf.RET_ERRNO, "SCMP_ACT_TRACE": bpf.RET_TRACE,
    "SCMP_ACT_ALLOW": bpf.RET_ALLOW, "SCMP_ACT_LOG": bpf.RET_LOG,
    "SCMP_ACT_NOTIFY": bpf.RET_USER_NOTIF,
}
OPERATORS = {"SCMP_CMP_NE": NE, "SCMP_CMP_LT": LT, "SCMP_CMP_LE": LE, "SCMP_CMP_EQ": EQ,
             "SCMP_CMP_GE": GE, "SCMP_CMP_GT": GT, "SCMP_CMP_MASKED_EQ": MASKED_EQ}
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2,
         "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32}
FLAG_NEW_LISTENER = 8
FLAG_TSYNC_ESRCH = 16
U64 = 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True, slots=True)
class ArgCheck:
    index: int
    op: int
    mask: int     # libseccomp datum_a for MASKED_EQ, all ones otherwise
    datum: int


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of `syscalls[]`; `field` names it in error messages."""
    names: tuple[str, ...]
    action: int
    args: tuple[ArgCheck, ...]
    field: str


@dataclass(frozen=True, slots=True)
class Profile:
    default_action: int
    arches: tuple[Arch, ...]            # native first, no duplicates
    flags: tuple[str, ...] | None       # None: absent (runc then uses SPEC_ALLOW)
    rules: tuple[Rule, ...]
    listener_path: str | None
    listener_metadata: str | None


def resolve(seccomp: Seccomp, field: str = ".linux.seccomp", arch: Arch | None = None) -> Profile:
    """The compiler's view of a plain OCI profile (profiles.resolve has applied any
    Docker fields); `arch` overrides the native one (tools)."""
    default = _action(seccomp.default_action, seccomp.default_errno_ret, f"{field}.defaultErrnoRet")
    if default == bpf.RET_USER_NOTIF:
        raise ConfigError(f"{field}.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    arches = _arches(seccomp.architectures, f"{field}.architectures", arch or native())
    rules = tuple(_rule(entry, f"{field}.syscalls[{i}]") for i, entry in enumerate(seccomp.syscalls))
    listener_path = seccomp.listener_path or None
    if any(r.action == bpf.RET_USER_NOTIF for r in rules) and not listener_path:
        raise ConfigError(f"{field}.listenerPath", "SCMP_ACT_NOTIFY rules need a listenerPath")
    return Profile(default, arches, seccomp.flags, rules, listener_path, seccomp.listener_metadata or None)


def parse(obj: Any, field: str = ".linux.seccomp", arch: Arch | None = None) -> Profile:
    """`resolve` of a `linux.seccomp` JSON object, checked as config.json's is (tests, bench)."""
    from pyrunc.spec import parse_seccomp

    return resolve(parse_seccomp(obj, field), field, arch)


def _action(name: str, errno_ret: int | None, errno_field: str) -> int:
    base = ACTIONS[name]
    if errno_ret is not None and errno_ret > 0xFFFF:
        raise ConfigError(errno_field, f"must be an integer in 0..65535, not {errno_ret!r}")
    if base in (bpf.RET_ERRNO, bpf.RET_TRACE):
        return base | (errno.EPERM if errno_ret is None else errno_ret)
    return base


def _arches(names: tuple[str, ...], field: str, host: Arch) -> tuple[Arch, ...]:
    out = [host]
    for i, name in enumerate(names):
        if name in UNSUPPORTED_SCMP:
            raise MissingFeature(f"{field}[{i}]: {name}", "pyrunc has no syscall table for it")
        arch = BY_SCMP[name]
        if arch.big_endian != host.big_endian:
            raise ConfigError(f"{field}[{i}]", f"{name} has a different byte order than {host.scmp}")
        if arch not in out:
            out.append(arch)
    return tuple(out)


def _rule(entry: Syscall, field: str) -> Rule:
    action = _action(entry.action, entry.errno_ret, f"{field}.errnoRet")
    if action == bpf.RET_USER_NOTIF and "write" in entry.names:
        raise ConfigError(f"{field}.names", "SCMP_ACT_NOTIFY cannot be used for write")
    return Rule(entry.names, action, tuple(_arg(a, f"{field}.args[{i}]") for i, a in enumerate(entry.args)),
                field)


def _arg(arg: SyscallArg, field: str) -> ArgCheck:
    if arg.index > 5:
        raise ConfigError(f"{field}.index", f"must be an argument index 0..5, not {arg.index!r}")
    two = arg.value_two or 0
    if OPERATORS[arg.op] == MASKED_EQ:
        return ArgCheck(arg.index, MASKED_EQ, arg.value, two)
    return ArgCheck(arg.index, OPERATORS[arg.op], U64, arg.value)
