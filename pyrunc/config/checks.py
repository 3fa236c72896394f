"""The primitives of config.json checking: JSON types, integer ranges, enums.

Each reader takes a value and its JSON path (".linux.devices[2].major") and
either returns the value (tuples for arrays) or raises Invalid(path, message).
No jsonschema and no re here: this runs on every `pyrunc run`. The closed
value sets of the runtime spec (config.md, config-linux.md) live here too, so
that config.parse, config.resources and `pyrunc features` share one copy.
"""

from __future__ import annotations

from pyrunc import jsonfast as json  # json without its re import (hot path)

# integer kinds: (minimum, maximum or None, name for messages)
U16 = (0, 0xFFFF, "uint16")
U32 = (0, 0xFFFFFFFF, "uint32")
U64 = (0, 0xFFFFFFFFFFFFFFFF, "uint64")
I32 = (-(2**31), 2**31 - 1, "int32")
I64 = (-(2**63), 2**63 - 1, "int64")

NAMESPACE_TYPES = ("mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time")
RLIMIT_TYPES = (
    "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
    "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
)
# The spec's four, and runc's recursive forms (runc maps the value through its
# mount-option table, so "rprivate" & co. work there and clients send them).
ROOTFS_PROPAGATIONS = ("private", "shared", "slave", "unbindable",
                       "rprivate", "rshared", "rslave", "runbindable")
DEVICE_TYPES = ("c", "b", "u", "p")
CGROUP_DEVICE_TYPES = ("a", "c", "b")
# every ordering of a subset of "rwm": JSON Schema states this as an enum too
CGROUP_DEVICE_ACCESS = (
    "", "r", "w", "m", "rw", "wr", "rm", "mr", "wm", "mw",
    "rwm", "rmw", "wrm", "wmr", "mrw", "mwr",
)
SCHEDULER_POLICIES = (
    "SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO", "SCHED_IDLE",
    "SCHED_DEADLINE",
)
SCHEDULER_FLAGS = (
    "SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN",
    "SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_UTIL_CLAMP_MIN",
    "SCHED_FLAG_UTIL_CLAMP_MAX",
)
IOPRIO_CLASSES = ("IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE")
PERSONALITY_DOMAINS = ("LINUX", "LINUX32")
MEMORY_POLICY_MODES = (
    "MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
    "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL",
)
MEMORY_POLICY_FLAGS = ("MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES")
TIME_CLOCKS = ("boottime", "monotonic")
SECCOMP_ACTIONS = (
    "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY",
)
SECCOMP_FLAGS = (
    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
)
SECCOMP_OPERATORS = (
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
)
SECCOMP_ARCHES = (
    "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH", "SCMP_ARCH_SHEB", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
)

class Invalid(Exception):
    """The first bad field: spec.parse() turns it into a ConfigError carrying the source name."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message


_ABSENT = object()
_DIGITS = frozenset("0123456789")
_SEMVER_IDENT = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-")
_CPU_LIST = frozenset("0123456789, -")


def _obj(v: object, p: str) -> dict:
    if type(v) is not dict:
        raise Invalid(p, "must be an object")
    return v


def _str(v: object, p: str) -> str:
    if type(v) is not str:
        raise Invalid(p, "must be a string")
    return _c_string(v, p)


def _c_string(v: str, p: str) -> str:
    """Strings reach the kernel as C strings (paths, args, env, labels, cgroup
    files): a NUL would cut them short (Go's syscall layer refuses it with
    EINVAL), and a lone surrogate escape ("\\ud800") has no UTF-8 form."""
    if "\0" in v:
        raise Invalid(p, "must not contain a NUL byte")
    if not v.isascii():
        try:
            v.encode()
        except UnicodeEncodeError:
            raise Invalid(p, "is not valid UTF-8 (lone surrogate escape)") from None
    return v


def _bool(v: object, p: str) -> bool:
    if type(v) is not bool:
        raise Invalid(p, "must be a boolean")
    return v


Bounds = tuple[int, "int | None", str]


def _int(v: object, p: str, bounds: Bounds) -> int:
    """An integer within bounds; 3.0 counts as 3 (as in JSON Schema), True does not."""
    if type(v) is not int:
        if type(v) is float and v.is_integer():
            v = int(v)
        else:
            raise Invalid(p, _int_msg(bounds))
    lo, hi, _ = bounds
    if v < lo or (hi is not None and v > hi):
        raise Invalid(p, _int_msg(bounds))
    return v


def _int_msg(bounds: Bounds) -> str:
    lo, hi, name = bounds
    if name:
        return f"must be an integer ({name}, {lo} to {hi})"
    return f"must be an integer >= {lo}" if hi is None else f"must be an integer from {lo} to {hi}"


def _abs(v: object, p: str) -> str:
    if type(v) is not str or not v.startswith("/"):
        raise Invalid(p, "must be an absolute path")
    return _c_string(v, p)


def _enum(v: object, p: str, allowed: tuple[str, ...], what: str = "") -> str:
    """One of `allowed`; `what` names the kind in the message ("unknown action ...")."""
    if type(v) is not str or v not in allowed:
        head = f"unknown {what} {json.dumps(v)}: is" if what else f"{json.dumps(v)} is"
        raise Invalid(p, f"{head} not one of: {', '.join(allowed)}")
    return v


def _list(v: object, p: str) -> list:
    if type(v) is not list:
        raise Invalid(p, "must be an array")
    return v


def _strs(v: object, p: str) -> tuple[str, ...]:
    if type(v) is not list:
        raise Invalid(p, "must be an array of strings")
    for i, s in enumerate(v):
        if type(s) is not str:
            raise Invalid(f"{p}[{i}]", "must be a string")
        _c_string(s, f"{p}[{i}]")
    return tuple(v)


def _enums(v: object, p: str, allowed: tuple[str, ...], what: str = "") -> tuple[str, ...]:
    return tuple(_enum(s, f"{p}[{i}]", allowed, what) for i, s in enumerate(_list(v, p)))


def _key(k: str, p: str) -> str:
    if not k:
        raise Invalid(p, "keys must be non-empty strings")
    return f"{p}[{json.dumps(k)}]"


def _str_map(v: object, p: str, c_strings: bool = True) -> dict[str, str]:
    """A string → string object. `c_strings=False` (annotations, which only
    travel as JSON, as runc accepts them) skips the C-string rule."""
    for k, s in _obj(v, p).items():
        kp = _key(k, p)
        if type(s) is not str:
            raise Invalid(kp, "must be a string")
        if c_strings:
            _c_string(k, kp)
            _c_string(s, kp)
    return dict(v)  # type: ignore[call-overload]


def _no_newline(v: str, p: str) -> str:
    if "\n" in v:
        raise Invalid(p, "must not contain a newline")
    return v


def _required(d: dict, key: str, p: str) -> object:
    v = d.get(key, _ABSENT)
    if v is _ABSENT:
        raise Invalid(f"{p}.{key}", "is required")
    return v


# Small readers for "optional key of this kind": absent -> default, present -> checked.
def _o_str(d: dict, key: str, p: str) -> str | None:
    v = d.get(key, _ABSENT)
    return None if v is _ABSENT else _str(v, f"{p}.{key}")


def _o_bool(d: dict, key: str, p: str, default: bool | None = None) -> bool | None:
    v = d.get(key, _ABSENT)
    return default if v is _ABSENT else _bool(v, f"{p}.{key}")


def _o_int(d: dict, key: str, p: str, bounds: Bounds) -> int | None:
    v = d.get(key, _ABSENT)
    return None if v is _ABSENT else _int(v, f"{p}.{key}", bounds)


def _o_strs(d: dict, key: str, p: str) -> tuple[str, ...] | None:
    v = d.get(key, _ABSENT)
    return None if v is _ABSENT else _strs(v, f"{p}.{key}")


def _o_items(d: dict, key: str, p: str, item) -> tuple:  # type: ignore[no-untyped-def]
    v = d.get(key, _ABSENT)
    if v is _ABSENT:
        return ()
    kp = f"{p}.{key}"
    return tuple(item(x, f"{kp}[{i}]") for i, x in enumerate(_list(v, kp)))


def _is_semver(s: str) -> bool:
    core, plus, build = s.partition("+")
    if plus and not (build and _SEMVER_IDENT.issuperset(build)):
        return False
    core, dash, pre = core.partition("-")
    if dash and not (pre and _SEMVER_IDENT.issuperset(pre)):
        return False
    parts = core.split(".")
    return len(parts) == 3 and all(x and _DIGITS.issuperset(x) for x in parts)
