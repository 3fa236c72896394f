"""The five capability sets of `process.capabilities`, planned in the parent and
applied in the container's init.

Plan pure (`prepare_caps`, in the parent, before any fork): names become
numbers; names this module does not know, or that the running kernel does not
have (above /proc/sys/kernel/cap_last_cap), are dropped with a warning, as runc
does ("ignoring unknown or unavailable capabilities"). An absent
`capabilities` object means *all five sets empty* (runc `capabilities.New(nil)`),
and an absent `inheritable` or `ambient` set is empty: a full inheritable set
let file capabilities raise an unprivileged user's caps (CVE-2022-29162,
crun CVE-2022-27650). Ambient caps are raised only if they are also in
permitted and inheritable (the kernel refuses the rest); the others are
dropped with a warning, as runc warns.

Execute thin (in init, with python-prctl's `_prctl` extension, imported here at
module load so nothing is imported after pivot_root). The call order init uses:

    1. drop_bounding(plan)       PR_CAPBSET_DROP for every cap not in bounding;
                                 needs CAP_SETPCAP, so it runs while init still
                                 has every capability.
    2. set_keepcaps()            PR_SET_KEEPCAPS=1 and ambient cleared, so the
                                 uid change below keeps the permitted set.
    3. setgroups/setgid/setuid   (init's user step, not this module)
    4. clear_keepcaps()          PR_SET_KEEPCAPS=0 (not inherited across exec
                                 anyway, but nothing should run with it set)
    5. apply_sets(plan)          capset of effective/permitted/inheritable,
                                 exactly the planned bits (setuid to non-zero
                                 cleared effective; capset sets it back from
                                 the kept permitted set)
    6. raise_ambient(plan)       PR_CAP_AMBIENT_RAISE, last, because lowering
                                 P or I in step 5 clears ambient bits.

`apply_caps(plan)` does 1, 5 and 6 for the case without a uid change.
"""

from __future__ import annotations

import os

import _prctl  # python-prctl's C extension; the `prctl` wrapper costs 4 ms more to import

from pyrunc import syscalls
from pyrunc.errors import KernelError

# linux/capability.h; the index is the capability number.
CAP_NAMES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBERS: dict[str, int] = {name: i for i, name in enumerate(CAP_NAMES)}
SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any


class CapPlan:
    """Capability numbers per set, all within 0..last_cap. Immutable.

    A plain slotted class, not a dataclass: `dataclasses` costs ~9 ms of import
    on the `pyrunc run` path.
    """

    __slots__ = ("bounding", "effective", "permitted", "inheritable", "ambient", "last_cap", "warnings")
    bounding: frozenset[int]
    effective: frozenset[int]
    permitted: frozenset[int]
    inheritable: frozenset[int]
    ambient: frozenset[int]
    last_cap: int
    warnings: tuple[str, ...]

    def __init__(self, bounding: frozenset[int], effective: frozenset[int], permitted: frozenset[int],
                 inheritable: frozenset[int], ambient: frozenset[int], last_cap: int,
                 warnings: tuple[str, ...] = ()) -> None:
        put = object.__setattr__
        for name, value in zip(self.__slots__, (bounding, effective, permitted, inheritable, ambient,
                                                 last_cap, warnings)):
            put(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"CapPlan is immutable: {name}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CapPlan) and all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in self.__slots__))

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"CapPlan({fields})"

    def mask(self, which: str) -> int:
        """The set as the hex mask /proc/PID/status shows (CapBnd etc.)."""
        bits = 0
        for cap in getattr(self, which):
            bits |= 1 << cap
        return bits


def kernel_last_cap() -> int:
    """The highest capability number the running kernel knows."""
    with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
        return int(f.read())


def _field(caps: Any, name: str) -> Iterable[str] | None:
    if isinstance(caps, dict):  # (not collections.abc.Mapping: that import costs ms per run)
        return caps.get(name)  # type: ignore[no-any-return]
    return getattr(caps, name, None)  # type: ignore[no-any-return]


def prepare_caps(caps: Any, last_cap: int | None = None) -> CapPlan:
    """Turn `process.capabilities` (a spec.Capabilities, a dict or None) into numbers.

    Pure apart from reading cap_last_cap when `last_cap` is not given.
    """
    if last_cap is None:
        last_cap = kernel_last_cap()
    ignored: list[str] = []
    sets: dict[str, frozenset[int]] = {}
    for which in SETS:
        names = _field(caps, which) if caps is not None else None
        numbers = set()
        for name in names or ():
            number = CAP_NUMBERS.get(name)  # exact, case-sensitive names, as runc
            if number is None or number > last_cap:
                if name not in ignored:
                    ignored.append(name)
                continue
            numbers.add(number)
        sets[which] = frozenset(numbers)
    warnings = []
    if ignored:
        warnings.append(f"ignoring unknown or unavailable capabilities: {ignored}")
    ambient = sets["ambient"] & sets["permitted"] & sets["inheritable"]
    for cap in sorted(sets["ambient"] - ambient):
        warnings.append(f"can't raise ambient capability {CAP_NAMES[cap]}: not in permitted and inheritable")
    return CapPlan(sets["bounding"], sets["effective"], sets["permitted"], sets["inheritable"],
                   ambient, last_cap, tuple(warnings))


def with_held(plan: CapPlan, cap: int) -> CapPlan:
    """The plan with `cap` also in effective and permitted (not in bounding,
    inheritable or ambient, which alone decide the sets after execve)."""
    return CapPlan(plan.bounding, plan.effective | {cap}, plan.permitted | {cap}, plan.inheritable,
                   plan.ambient, plan.last_cap, plan.warnings)


def drop_bounding(plan: CapPlan) -> None:
    """Step 1: remove every capability outside `plan.bounding` from the bounding set."""
    for cap in range(plan.last_cap + 1):
        if cap in plan.bounding:
            continue
        try:
            _prctl.prctl(_prctl.PR_CAPBSET_DROP, cap)
        except OSError as err:
            raise KernelError("prctl(PR_CAPBSET_DROP)", err.errno or 1, None, CAP_NAMES[cap]) from None


def set_keepcaps() -> None:
    """Step 2: keep the permitted set across setuid; start from an empty ambient set."""
    syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 1)
    syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)


def clear_keepcaps() -> None:
    """Step 4."""
    syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 0)


def apply_sets(plan: CapPlan) -> None:
    """Step 5: effective, permitted and inheritable become exactly the plan."""
    every = range(plan.last_cap + 1)
    on = (sorted(plan.effective), sorted(plan.permitted), sorted(plan.inheritable))
    off = tuple([c for c in every if c not in s] for s in (plan.effective, plan.permitted, plan.inheritable))
    try:
        _prctl.set_caps(*on, *off)
    except OSError as err:
        missing = sorted((plan.permitted | plan.inheritable) - _current_permitted_and_bounding())
        detail = f"not held by the runtime: {[CAP_NAMES[c] for c in missing]}" if missing else ""
        raise KernelError("capset", err.errno or 1, None, detail) from None


def _current_permitted_and_bounding() -> set[int]:
    """Caps this process may still hand out (no file access: /proc may be gone)."""
    held = set()
    for cap in range(len(CAP_NAMES)):
        try:
            if _prctl.prctl(_prctl.PR_CAPBSET_READ, cap):
                held.add(cap)
        except OSError:
            continue
    return held


def raise_ambient(plan: CapPlan) -> None:
    """Step 6: raise the ambient caps (already filtered to permitted & inheritable)."""
    syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in sorted(plan.ambient):
        try:
            syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_RAISE, cap)
        except OSError as err:
            raise KernelError("prctl(PR_CAP_AMBIENT_RAISE)", err.errno or 1, None, CAP_NAMES[cap]) from None


def apply_caps(plan: CapPlan) -> None:
    """All of it for a process that does not change uid (steps 1, 5, 6)."""
    drop_bounding(plan)
    apply_sets(plan)
    raise_ambient(plan)


def after_execve(plan: CapPlan, uid: int, no_new_privs: bool) -> dict[str, frozenset[int]]:
    """The five sets the container's program has once execve ran (a binary
    without file capabilities; security/commoncap.c): uid 0 gets bounding |
    inheritable in permitted and effective, any other uid only its ambient
    set; no_new_privs caps permitted at what it held before execve. For
    `pyrunc explain`, which must show what the process gets, not what init set."""
    if uid == 0:
        permitted = plan.bounding | plan.inheritable
        if no_new_privs:
            permitted &= plan.permitted
        permitted |= plan.ambient
        effective = permitted
    else:
        permitted = effective = plan.ambient
    return {"bounding": plan.bounding, "effective": effective, "permitted": permitted,
            "inheritable": plan.inheritable, "ambient": plan.ambient}


def status_masks(pid: int | str = "self") -> dict[str, int]:
    """Cap{Inh,Prm,Eff,Bnd,Amb} of a process as ints (for checks and tests)."""
    masks = {}
    with open(os.path.join("/proc", str(pid), "status"), "rb") as f:
        for line in f:
            if line.startswith(b"Cap"):
                key, value = line.decode().split(":")
                masks[key] = int(value.strip(), 16)
    return masks
