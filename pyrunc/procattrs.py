"""process.scheduler, process.ioPriority, process.execCPUAffinity and
linux.memoryPolicy: planned in the parent (names -> numbers, errors naming the
field), applied in init before the privilege drop (a real-time policy needs
CAP_SYS_NICE), with `final` CPU affinity set right before execve.
"""

from __future__ import annotations

import os

from pyrunc import syscalls as s
from pyrunc.errors import ConfigError, KernelError
from pyrunc.record import Record

POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_ISO": 4,
            "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
               "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10,
               "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20, "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
IO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
MPOL_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3, "MPOL_LOCAL": 4,
              "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MPOL_FLAGS = {"MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14, "MPOL_F_STATIC_NODES": 1 << 15}


class ProcAttrs(Record):
    sched: object = None           # syscalls.SchedAttr or None
    ioprio: int | None = None
    cpus_initial: frozenset | None = None
    cpus_final: frozenset | None = None
    mempolicy: tuple | None = None  # (mode|flags, nodemask, maxnode)


def parse_cpus(text: str, field: str) -> frozenset:
    cpus: set[int] = set()
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ConfigError(field, f"{text!r} is not a CPU list like 0-3,7")
        cpus.update(range(int(lo), int(hi if sep else lo) + 1))
    return frozenset(cpus)


def plan(process, linux) -> ProcAttrs | None:
    sched = ioprio = initial = final = mpol = None
    if process.scheduler is not None:
        sc = process.scheduler
        if sc.policy not in POLICIES:
            raise ConfigError(".process.scheduler.policy", f"unknown policy {sc.policy!r}")
        flags = 0
        for i, name in enumerate(sc.flags):
            if name not in SCHED_FLAGS:
                raise ConfigError(f".process.scheduler.flags[{i}]", f"unknown flag {name!r}")
            flags |= SCHED_FLAGS[name]
        sched = s.SchedAttr(0, POLICIES[sc.policy], flags, sc.nice or 0, sc.priority or 0,
                            sc.runtime or 0, sc.deadline or 0, sc.period or 0)
    if process.io_priority is not None:
        io = process.io_priority
        if io.class_ not in IO_CLASSES:
            raise ConfigError(".process.ioPriority.class", f"unknown class {io.class_!r}")
        if not 0 <= io.priority <= 7:
            raise ConfigError(".process.ioPriority.priority", "must be 0..7")
        ioprio = IO_CLASSES[io.class_] << 13 | io.priority
    if process.exec_cpu_affinity is not None:
        aff = process.exec_cpu_affinity
        initial = parse_cpus(aff.initial, ".process.execCPUAffinity.initial") if aff.initial else None
        final = parse_cpus(aff.final, ".process.execCPUAffinity.final") if aff.final else None
    if linux is not None and linux.memory_policy is not None:
        mp = linux.memory_policy
        if mp.mode not in MPOL_MODES:
            raise ConfigError(".linux.memoryPolicy.mode", f"unknown mode {mp.mode!r}")
        mode = MPOL_MODES[mp.mode]
        for i, name in enumerate(mp.flags):
            if name not in MPOL_FLAGS:
                raise ConfigError(f".linux.memoryPolicy.flags[{i}]", f"unknown flag {name!r}")
            mode |= MPOL_FLAGS[name]
        nodes = parse_cpus(mp.nodes, ".linux.memoryPolicy.nodes") if mp.nodes else frozenset()
        mask = sum(1 << n for n in nodes)
        mpol = (mode, mask, max(nodes) + 1 if nodes else 0)
    if sched is None and ioprio is None and initial is None and final is None and mpol is None:
        return None
    return ProcAttrs(sched, ioprio, initial, final, mpol)


def apply(attrs: ProcAttrs) -> None:
    """In init (or the exec process) before the privilege drop."""
    try:
        if attrs.cpus_initial is not None:
            os.sched_setaffinity(0, attrs.cpus_initial)
        if attrs.mempolicy is not None:
            s.set_mempolicy(*attrs.mempolicy)
        if attrs.ioprio is not None:
            s.ioprio_set(1, 0, attrs.ioprio)  # IOPRIO_WHO_PROCESS, this process
        if attrs.sched is not None:
            s.sched_setattr(attrs.sched)
    except OSError as err:
        raise KernelError("set process attributes", err.errno or 1, None,
                          "scheduler, ioPriority, execCPUAffinity or memoryPolicy") from None


def apply_final(attrs: ProcAttrs) -> None:
    if attrs.cpus_final is not None:
        os.sched_setaffinity(0, attrs.cpus_final)
