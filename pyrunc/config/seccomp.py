"""Field checks of `linux.seccomp` (config-linux.md "Seccomp"), building the `Seccomp`
record the seccomp compiler takes: the one validator of a seccomp profile, whether it
comes in config.json or as a `pyrunc seccomp` PROFILE (spec.parse_seccomp).

Besides the OCI fields it reads those of a Docker/containers-common profile that clients
put into config.json as they are (`archMap`, `defaultErrno`, a rule's `errno`,
`includes`, `excludes`): their shape is checked here, their meaning for this host
(arch, bounding set, kernel, errno names) in seccomp.profiles.resolve. What only the
kernel or runc limit (errno values above 65535, argument indexes above 5, NOTIFY rules)
is the compiler's (seccomp.rules). schemas/config.schema.json states the same rules.
"""

from __future__ import annotations

from pyrunc.config.checks import (
    _ABSENT, SECCOMP_ACTIONS, SECCOMP_ARCHES, SECCOMP_FLAGS, SECCOMP_OPERATORS, U32, U64, Invalid,
    _enum, _enums, _int, _o_int, _o_items, _o_str, _o_strs, _obj, _required, _str, _strs,
)
from pyrunc.spec import ArchMap, Seccomp, Syscall, SyscallArg, SyscallFilter

ARG_VALUE = (U64[0], U64[1], "uint64, unsigned 64-bit")


def parse_seccomp(v: object, p: str) -> Seccomp:
    d = _obj(v, p)
    default = _enum(_required(d, "defaultAction", p), f"{p}.defaultAction", SECCOMP_ACTIONS, "action")
    arches = d.get("architectures", _ABSENT)
    flags = d.get("flags", _ABSENT)
    if "listenerMetadata" in d and "listenerPath" not in d:
        raise Invalid(f"{p}.listenerMetadata", "must not be set without listenerPath")
    return Seccomp(
        default_action=default,
        default_errno_ret=_o_int(d, "defaultErrnoRet", p, U32),
        architectures=() if arches is _ABSENT else _enums(arches, f"{p}.architectures", SECCOMP_ARCHES,
                                                          "architecture"),
        flags=None if flags is _ABSENT else _enums(flags, f"{p}.flags", SECCOMP_FLAGS, "seccomp flag"),
        listener_path=_o_str(d, "listenerPath", p),
        listener_metadata=_o_str(d, "listenerMetadata", p),
        syscalls=_o_items(d, "syscalls", p, _syscall),
        default_errno=_o_str(d, "defaultErrno", p),
        arch_map=_o_items(d, "archMap", p, _arch_map),
    )


def _syscall(v: object, p: str) -> Syscall:
    d = _obj(v, p)
    names = _required(d, "names", p)
    if type(names) is not list or not names:
        raise Invalid(f"{p}.names", "must be a non-empty array of strings")
    return Syscall(_strs(names, f"{p}.names"),
                   _enum(_required(d, "action", p), f"{p}.action", SECCOMP_ACTIONS, "action"),
                   _o_int(d, "errnoRet", p, U32), _o_items(d, "args", p, _syscall_arg),
                   _o_str(d, "errno", p), _filter(d, "includes", p), _filter(d, "excludes", p))


def _syscall_arg(v: object, p: str) -> SyscallArg:
    d = _obj(v, p)
    return SyscallArg(_int(_required(d, "index", p), f"{p}.index", U32),
                      _int(_required(d, "value", p), f"{p}.value", ARG_VALUE),
                      _enum(_required(d, "op", p), f"{p}.op", SECCOMP_OPERATORS, "operator"),
                      _o_int(d, "valueTwo", p, ARG_VALUE))


def _filter(d: dict, key: str, p: str) -> SyscallFilter | None:
    v = d.get(key, _ABSENT)
    if v is _ABSENT:
        return None
    kp = f"{p}.{key}"
    f = _obj(v, kp)
    return SyscallFilter(_o_strs(f, "arches", kp) or (), _o_strs(f, "caps", kp) or (),
                         _o_str(f, "minKernel", kp))


def _arch_map(v: object, p: str) -> ArchMap:
    d = _obj(v, p)
    subs = d.get("subArchitectures")  # null in Docker's own default profile: none
    return ArchMap(_str(_required(d, "architecture", p), f"{p}.architecture"),
                   () if subs is None else _enums(subs, f"{p}.subArchitectures", SECCOMP_ARCHES,
                                                  "architecture"))
