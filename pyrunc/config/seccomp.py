"""Field checks of `linux.seccomp` (config-linux.md "Seccomp"), building the `Seccomp`
record the seccomp compiler takes.

schemas/config.schema.json states the same rules.
"""

from __future__ import annotations

from pyrunc.config.checks import (
    _ABSENT, SECCOMP_ACTIONS, SECCOMP_ARCHES, SECCOMP_FLAGS, SECCOMP_OPERATORS, U32, U64, Invalid,
    _enum, _enums, _int, _o_int, _o_items, _o_str, _obj, _required, _strs,
)
from pyrunc.spec import Seccomp, Syscall, SyscallArg


def parse_seccomp(v: object, p: str) -> Seccomp:
    d = _obj(v, p)
    default = _enum(_required(d, "defaultAction", p), f"{p}.defaultAction", SECCOMP_ACTIONS)
    arches = d.get("architectures", _ABSENT)
    flags = d.get("flags", _ABSENT)
    if "listenerMetadata" in d and "listenerPath" not in d:
        raise Invalid(f"{p}.listenerMetadata", "must not be set without listenerPath")
    return Seccomp(
        default_action=default,
        default_errno_ret=_o_int(d, "defaultErrnoRet", p, U32),
        architectures=() if arches is _ABSENT else _enums(arches, f"{p}.architectures", SECCOMP_ARCHES),
        flags=() if flags is _ABSENT else _enums(flags, f"{p}.flags", SECCOMP_FLAGS),
        listener_path=_o_str(d, "listenerPath", p),
        listener_metadata=_o_str(d, "listenerMetadata", p),
        syscalls=_o_items(d, "syscalls", p, _syscall),
    )


def _syscall(v: object, p: str) -> Syscall:
    d = _obj(v, p)
    names = _required(d, "names", p)
    if type(names) is not list or not names:
        raise Invalid(f"{p}.names", "must be a non-empty array of strings")
    return Syscall(_strs(names, f"{p}.names"),
                   _enum(_required(d, "action", p), f"{p}.action", SECCOMP_ACTIONS),
                   _o_int(d, "errnoRet", p, U32), _o_items(d, "args", p, _syscall_arg))


def _syscall_arg(v: object, p: str) -> SyscallArg:
    d = _obj(v, p)
    return SyscallArg(_int(_required(d, "index", p), f"{p}.index", U32),
                      _int(_required(d, "value", p), f"{p}.value", U64),
                      _enum(_required(d, "op", p), f"{p}.op", SECCOMP_OPERATORS),
                      _o_int(d, "valueTwo", p, U64))
