"""cgroup v1: what create decides against the host, as pure functions of the
plan and a small probe, so `pyrunc explain` prints the very writes create makes.

`resources.plan_v1` turns the config into `{controller: {file: value}}`; four
decisions then depend on the host's hierarchy, not on the config:
  - bfq: CFQ's `blkio.weight`/`blkio.weight_device` are gone from modern
    kernels; where a cgroup offers only bfq's files the same values go there;
  - memory: memsw must stay >= the limit after every write, so the order of
    `memory.limit_in_bytes` and `memory.memsw.limit_in_bytes` depends on the
    current limit; an implied memsw (-1) is dropped where swap accounting is off;
  - realtime: a child may not get more rt runtime per period than its parent,
    and a new cgroup has 0, so each ancestor below the root is raised first;
  - cpuset: a new cpuset cgroup starts empty and refuses tasks, so each one
    create makes gets its parent's cpus and mems (runc's cpusetEnsureParent).

`probe` (I/O, reads only what the plan needs) answers these questions the same
way for the manager (its cgroup made: its own directory) and for explain (not
made yet: every non-root cgroup of a v1 hierarchy offers the same files, so an
existing one stands in; a cgroup create would make has a new cgroup's values).
`settle` and `seeds_from` are pure.
"""

from __future__ import annotations

import os

from pyrunc.cgroups import fileio
from pyrunc.errors import MissingFeature
from pyrunc.record import tuple_record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~4 ms on the run hot path
if TYPE_CHECKING:
    from pyrunc.cgroups.resources import Plan
    from pyrunc.spec import Resources

_MEMSW = "memory.memsw.limit_in_bytes"
_BFQ = (("blkio.weight", "blkio.bfq.weight"), ("blkio.weight_device", "blkio.bfq.weight_device"))
# Files a v1 hierarchy's root lacks while its other cgroups have them (the kernel's
# CFTYPE_NOT_ON_ROOT), each with a root file that shows the policy is there.
_BELOW_ROOT = {"blkio.bfq.weight": "blkio.bfq.io_service_bytes",
               "blkio.bfq.weight_device": "blkio.bfq.io_service_bytes",
               **{f"pids.{n}": "cgroup.procs" for n in ("max", "current", "events", "peak")},
               **{f"freezer.{n}": "cgroup.procs" for n in ("state", "self_freezing", "parent_freezing")}}


class Probe(tuple_record("Probe", "files memory_limit rt_period rt_ancestors")):
    """files: the names asked about that the container's cgroup offers;
    memory_limit: its memory.limit_in_bytes now (None: a new cgroup, unlimited);
    rt_period: its cpu.rt_period_us now (a new cgroup's: the kernel's default);
    rt_ancestors: ((dir, rt_runtime_us, rt_period_us), ...) top down, below the
    hierarchy's root; one create makes has runtime 0 and the default period."""

    __slots__ = ()


class Seed(tuple_record("Seed", "path file value")):
    """One write a new cpuset cgroup gets from its parent."""

    __slots__ = ()


def probe(paths: dict[str, str], plan: Plan) -> Probe:
    """What `settle` needs to know about the host for this plan, and nothing more."""
    files: frozenset[str] = frozenset()
    if "blkio" in plan and "blkio" in paths:
        files = offered(paths["blkio"], [n for pair in _BFQ for n in pair])
    mem = plan.get("memory", {})
    limit = None
    if _MEMSW in mem and "memory" in paths:
        files |= offered(paths["memory"], [_MEMSW])
        if mem.get("memory.limit_in_bytes") and _MEMSW in files and os.path.isdir(paths["memory"]):
            limit = fileio.read_int(f"{paths['memory']}/memory.limit_in_bytes")
    period, ancestors = None, ()
    cpu = plan.get("cpu", {})
    if int(cpu.get("cpu.rt_runtime_us") or 0) > 0 and "cpu" in paths:
        cpu_dir = paths["cpu"]
        if not cpu.get("cpu.rt_period_us"):
            period = _rt_value(cpu_dir, "cpu.rt_period_us")
        ancestors = tuple(_rt_ancestors(cpu_dir))
    return Probe(files, limit, period, ancestors)


def offered(path: str, names: list[str]) -> frozenset[str]:
    """Which of `names` the cgroup at `path` has, or will have once made:
    its own directory when it exists; else the deepest existing ancestor
    below the root, else any cgroup below the root (every non-root cgroup of a
    v1 hierarchy has the same files); else the root's files and those the
    kernel keeps off the root (_BELOW_ROOT) where their policy is there."""
    existing = path
    while not os.path.isdir(existing):
        existing = os.path.dirname(existing)
    probe_dir = existing if existing == path or _below_root(existing) else _any_child(existing)
    if probe_dir:
        return frozenset(n for n in names if os.path.exists(f"{probe_dir}/{n}"))
    root = existing
    return frozenset(n for n in names if os.path.exists(f"{root}/{n}")
                     or (n in _BELOW_ROOT and os.path.exists(f"{root}/{_BELOW_ROOT[n]}")))


def _below_root(d: str) -> bool:
    return os.path.exists(os.path.join(os.path.dirname(d), "cgroup.procs"))


def _any_child(root: str) -> str | None:
    """A cgroup right below the hierarchy's root, if there is one."""
    try:
        names = sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False))
    except OSError:
        return None
    return next((f"{root}/{n}" for n in names if os.path.exists(f"{root}/{n}/cgroup.procs")), None)


def _rt_default() -> int:
    """The rt period a new cgroup gets (the kernel's global sched_rt_period_us)."""
    return int(fileio.read("/proc/sys/kernel/sched_rt_period_us"))


def _rt_value(d: str, name: str) -> int:
    if os.path.isdir(d):
        return int(fileio.read(f"{d}/{name}"))
    return 0 if name == "cpu.rt_runtime_us" else _rt_default()


def _rt_ancestors(cpu_dir: str):
    """(dir, runtime, period) of each ancestor of `cpu_dir` below the root, top down."""
    out = []
    d = os.path.dirname(cpu_dir)
    while d != "/" and (not os.path.isdir(d) or _below_root(d)):
        out.append((d, _rt_value(d, "cpu.rt_runtime_us"), _rt_value(d, "cpu.rt_period_us")))
        d = os.path.dirname(d)
    return reversed(out)


def settle(plan: Plan, found: Probe, res: Resources | None) -> tuple[Plan, list[tuple[str, str]]]:
    """(the plan with the host's file names and order, [(ancestor file, value)]
    to write before it). Raises MissingFeature for a memsw limit the host cannot take."""
    plan = {c: dict(files) for c, files in plan.items()}
    if "memory" in plan:
        _order_memory(plan["memory"], found, res)
    if "blkio" in plan:
        blkio = plan["blkio"]
        for old, new in _BFQ:
            if old in blkio and old not in found.files and new in found.files:
                blkio[new] = blkio.pop(old)
    return plan, _rt_raises(plan.get("cpu", {}), found)


def _order_memory(mem: dict[str, str], found: Probe, res: Resources | None) -> None:
    limit, swap = mem.get("memory.limit_in_bytes"), mem.get(_MEMSW)
    if swap and _MEMSW not in found.files:
        if swap == "-1" and not (res is not None and res.memory is not None and res.memory.swap):
            del mem[_MEMSW]  # implied by an unlimited limit (runc), not asked for
        else:
            raise MissingFeature("memory swap limit", "swap accounting is off (memory.memsw.* missing)")
    if limit and swap and _MEMSW in mem:
        # memsw must stay >= limit at every step: raise memsw first when growing
        # (a new cgroup's limit is unlimited: the limit goes first)
        if swap == "-1" or (found.memory_limit is not None and found.memory_limit < int(swap)):
            order = [_MEMSW, "memory.limit_in_bytes"]
        else:
            order = ["memory.limit_in_bytes", _MEMSW]
        rest = {k: v for k, v in mem.items() if k not in order}
        mem.clear()
        mem.update({k: (limit if k == "memory.limit_in_bytes" else swap) for k in order})
        mem.update(rest)


def _rt_raises(cpu: dict[str, str], found: Probe) -> list[tuple[str, str]]:
    """Raise each ancestor (top down) to the runtime the container asks, scaled
    to the ancestor's period; never lower one."""
    runtime = int(cpu.get("cpu.rt_runtime_us") or 0)
    if runtime <= 0:
        return []
    period = int(cpu.get("cpu.rt_period_us") or found.rt_period)
    out = []
    for anc, have, anc_period in found.rt_ancestors:
        need = -(-runtime * anc_period // period)
        if 0 <= have < need:
            out.append((f"{anc}/cpu.rt_runtime_us", str(need)))
    return out


def cpuset_seeds(missing: list[str]) -> list[Seed]:
    """The writes that give each cpuset cgroup create makes (`missing`, parents
    first) the cpus and mems of the deepest existing ancestor; none where the
    kernel copies them itself (cgroup.clone_children, which new cgroups inherit)."""
    if not missing:
        return []
    parent = os.path.dirname(missing[0])
    if fileio.read(f"{parent}/cgroup.clone_children") == "1":
        return []
    values = [(name, fileio.read(f"{parent}/{name}")) for name in ("cpuset.cpus", "cpuset.mems")]
    return seeds_from(missing, values)


def seeds_from(missing: list[str], values: list[tuple[str, str]]) -> list[Seed]:
    """Pure: each new directory, parents first, gets the same values."""
    return [Seed(f"{d}/{name}", name, value) for d in missing for name, value in values]
