"""`linux.seccomp` (OCI runtime spec) → typed, validated rules.

Validation follows runc's conversion (specconv.SetupSeccomp, seccomp.InitSeccomp)
and reports the first bad field as ConfigError(".linux.seccomp.syscalls[3].args[0].op",
...). Semantics kept from runc: an absent `errnoRet`/`defaultErrnoRet` means EPERM
for ERRNO and TRACE; KILL is KILL_THREAD; NOTIFY is refused as the default action
and for `write` (init must still write its notify fd to the parent).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from pyrunc.errors import ConfigError, MissingFeature
from pyrunc.seccomp import bpf
from pyrunc.seccomp.arches import BY_SCMP, UNSUPPORTED_SCMP, Arch, native
from pyrunc.seccomp.ruletree import EQ, GE, GT, LE, LT, MASKED_EQ, NE

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


def parse(seccomp: Any, field: str = ".linux.seccomp", arch: Arch | None = None) -> Profile:
    """Validate a `linux.seccomp` object; `arch` overrides the native one (tools)."""
    if not isinstance(seccomp, dict):
        raise ConfigError(field, "must be an object")
    default = _action(seccomp.get("defaultAction"), seccomp.get("defaultErrnoRet"),
                      f"{field}.defaultAction", f"{field}.defaultErrnoRet")
    if default == bpf.RET_USER_NOTIF:
        raise ConfigError(f"{field}.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    arches = _arches(seccomp.get("architectures"), f"{field}.architectures", arch or native())
    flags = seccomp.get("flags")
    if flags is not None:
        if not isinstance(flags, list):
            raise ConfigError(f"{field}.flags", "must be an array")
        for i, flag in enumerate(flags):
            if flag not in FLAGS:
                raise ConfigError(f"{field}.flags[{i}]", f"unknown seccomp flag {flag!r}")
        flags = tuple(flags)
    syscalls = seccomp.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise ConfigError(f"{field}.syscalls", "must be an array")
    rules = tuple(_rule(entry, f"{field}.syscalls[{i}]") for i, entry in enumerate(syscalls))
    listener_path = _opt_str(seccomp, "listenerPath", field)
    metadata = _opt_str(seccomp, "listenerMetadata", field)
    if any(r.action == bpf.RET_USER_NOTIF for r in rules) and not listener_path:
        raise ConfigError(f"{field}.listenerPath", "SCMP_ACT_NOTIFY rules need a listenerPath")
    return Profile(default, arches, flags, rules, listener_path, metadata)


def _opt_str(obj: dict[str, Any], key: str, field: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{field}.{key}", "must be a string")
    return value or None


def _action(name: Any, errno_ret: Any, field: str, errno_field: str) -> int:
    if name not in ACTIONS:
        raise ConfigError(field, f"unknown action {name!r}" if name else "required")
    base = ACTIONS[name]
    if errno_ret is not None:
        if not isinstance(errno_ret, int) or isinstance(errno_ret, bool) or not 0 <= errno_ret <= 0xFFFF:
            raise ConfigError(errno_field, f"must be an integer in 0..65535, not {errno_ret!r}")
    if base in (bpf.RET_ERRNO, bpf.RET_TRACE):
        return base | (errno.EPERM if errno_ret is None else errno_ret)
    return base


def _arches(names: Any, field: str, host: Arch) -> tuple[Arch, ...]:
    out = [host]
    if names is None:
        return tuple(out)
    if not isinstance(names, list):
        raise ConfigError(field, "must be an array")
    for i, name in enumerate(names):
        if name in UNSUPPORTED_SCMP:
            raise MissingFeature(f"{field}[{i}]: {name}", "pyrunc has no syscall table for it")
        if name not in BY_SCMP:
            raise ConfigError(f"{field}[{i}]", f"unknown architecture {name!r}")
        arch = BY_SCMP[name]
        if arch.big_endian != host.big_endian:
            raise ConfigError(f"{field}[{i}]", f"{name} has a different byte order than {host.scmp}")
        if arch not in out:
            out.append(arch)
    return tuple(out)


def _rule(entry: Any, field: str) -> Rule:
    if not isinstance(entry, dict):
        raise ConfigError(field, "must be an object")
    names = entry.get("names")
    if not isinstance(names, list) or not names:
        raise ConfigError(f"{field}.names", "must be a non-empty array of syscall names")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{field}.names[{i}]", "must be a non-empty string")
    action = _action(entry.get("action"), entry.get("errnoRet"), f"{field}.action",
                     f"{field}.errnoRet")
    if action == bpf.RET_USER_NOTIF and "write" in names:
        raise ConfigError(f"{field}.names", "SCMP_ACT_NOTIFY cannot be used for write")
    args = entry.get("args") or []
    if not isinstance(args, list):
        raise ConfigError(f"{field}.args", "must be an array")
    return Rule(tuple(names), action, tuple(_arg(a, f"{field}.args[{i}]") for i, a in enumerate(args)),
                field)


def _arg(arg: Any, field: str) -> ArgCheck:
    if not isinstance(arg, dict):
        raise ConfigError(field, "must be an object")
    index = arg.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= 5:
        raise ConfigError(f"{field}.index", f"must be an argument index 0..5, not {index!r}")
    values = []
    for key in ("value", "valueTwo"):
        v = arg.get(key, 0)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= U64:
            raise ConfigError(f"{field}.{key}", f"must be an unsigned 64-bit integer, not {v!r}")
        values.append(v)
    op = arg.get("op")
    if op not in OPERATORS:
        raise ConfigError(f"{field}.op", f"unknown operator {op!r}")
    if OPERATORS[op] == MASKED_EQ:
        return ArgCheck(index, MASKED_EQ, values[0], values[1])
    return ArgCheck(index, OPERATORS[op], U64, values[0])
