"""`linux.resources` → plain file-write plans, for cgroup v1 and v2.

Everything here is pure: `parse` checks the raw JSON object and names the
failing field (`.linux.resources.memory.limit`), `plan_v1`/`plan_v2` turn the
checked object into `{controller: {file: value}}` in the order the writes must
happen. A value holding several lines is written one line per write(2), as
the kernel wants for `blkio.throttle.*`, `io.max` and `devices.allow`.
The conversions (shares → cpu.weight, blkio weight → io.weight, memory+swap →
memory.swap.max) follow runc's `libcontainer/cgroups/utils.go`.
Devices are planned in `devices.py`; the managers add them.
"""

from __future__ import annotations

import math
TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~4 ms on the run hot path

if TYPE_CHECKING:
    from typing import Any

from pyrunc.errors import ConfigError

Plan = dict[str, dict[str, str]]

MAX_INT64 = (1 << 63) - 1
_PAGE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")
# (no `re` in this module: it is imported on every `pyrunc run`)


def _is_digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


class Checker:
    """Reads typed values out of the raw resources object, raising ConfigError
    with the JSON path of the first bad field."""

    def __init__(self, prefix: str, source: str) -> None:
        self.prefix = prefix
        self.source = source

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{self.prefix}{path}", message, self.source)

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, "must be an object")
        return value

    def array(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, "must be an array")
        return value

    def integer(self, parent: dict[str, Any], key: str, path: str, *, lo: int | None = None,
                hi: int | None = None, what: str = "") -> int | None:
        value = parent.get(key)
        if value is None:
            return None
        where = f"{path}.{key}"
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be an integer, not {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.fail(where, f"{value} is out of range{' ' + what if what else ''}")
        return value

    def limit(self, parent: dict[str, Any], key: str, path: str) -> int | None:
        """A byte or count limit: -1 means unlimited, 0 means unset (runc)."""
        return self.integer(parent, key, path, lo=-1, hi=MAX_INT64,
                            what="(expected -1 for unlimited or a non-negative number)")

    def boolean(self, parent: dict[str, Any], key: str, path: str) -> bool | None:
        value = parent.get(key)
        if value is not None and not isinstance(value, bool):
            raise self.fail(f"{path}.{key}", f"must be a boolean, not {value!r}")
        return value

    def string(self, parent: dict[str, Any], key: str, path: str) -> str | None:
        value = parent.get(key)
        if value is not None and not isinstance(value, str):
            raise self.fail(f"{path}.{key}", f"must be a string, not {value!r}")
        return value


def parse_cpu_list(text: str) -> set[int]:
    """`0-3,5` → {0,1,2,3,5}; raises ValueError on bad syntax."""
    text = text.strip()
    out: set[int] = set()
    for part in text.split(","):
        lo, dash, hi = part.partition("-")
        if not _is_digits(lo) or (dash and not _is_digits(hi)):
            raise ValueError(text)
        first, last = int(lo), int(hi or lo)
        if last < first:
            raise ValueError(text)
        out.update(range(first, last + 1))
    return out


def page_size_bytes(size: str) -> int:
    """`2MB` → 2097152 (the kernel's hugetlb file names use KB/MB/GB, powers of 1024)."""
    digits = size.rstrip("KMGTPB")
    unit = size[len(digits):]
    if not _is_digits(digits) or unit not in _PAGE_UNITS:
        raise ValueError(size)
    return int(digits) * (1024 ** _PAGE_UNITS.index(unit))


def hugetlb_name(nbytes: int) -> str:
    """Bytes → the kernel's size label in hugetlb file names (`2MB`, `1GB`)."""
    units = ["B", "KB", "MB", "GB", "TB", "PB"]
    i = 0
    while nbytes >= 1024 and nbytes % 1024 == 0 and i < len(units) - 1:
        nbytes //= 1024
        i += 1
    return f"{nbytes}{units[i]}"


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] → cpu.weight [1, 10000], runc's quadratic mapping
    in log space so that 2→1, 1024→100 (both defaults) and 262144→10000."""
    if shares == 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    l = math.log2(shares)
    exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0
    return int(math.ceil(10 ** exponent))


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] → io.weight [1, 10000] (runc: linear)."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def memory_swap_to_v2(swap: int, memory: int) -> int:
    """v1 memsw (memory+swap) → v2 memory.swap.max (swap alone); -1 = max, 0 = unset."""
    if memory == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if memory in (0, -1):
        raise ValueError("unable to set swap limit without memory limit")
    if swap < memory:
        raise ValueError("memory+swap limit should be >= memory limit")
    return swap - memory


def _num(value: int) -> str:
    return "max" if value == -1 else str(value)


def _dev(entry: dict[str, Any], path: str, chk: Checker, value_key: str) -> tuple[int, int, int]:
    major = chk.integer(entry, "major", path, lo=0, hi=0xFFFFFFFF)
    minor = chk.integer(entry, "minor", path, lo=0, hi=0xFFFFFFFF)
    if major is None or minor is None:
        raise chk.fail(path, "major and minor are required")
    value = chk.integer(entry, value_key, path, lo=0, hi=MAX_INT64 if value_key == "rate" else 1000)
    return major, minor, -1 if value is None else value


def throttles(blkio: dict[str, Any], chk: Checker, path: str) -> dict[str, list[tuple[int, int, int]]]:
    """The four per-device throttle lists, keyed by their v1 file suffix."""
    keys = {"throttleReadBpsDevice": "read_bps_device", "throttleWriteBpsDevice": "write_bps_device",
            "throttleReadIOPSDevice": "read_iops_device", "throttleWriteIOPSDevice": "write_iops_device"}
    out: dict[str, list[tuple[int, int, int]]] = {}
    for key, suffix in keys.items():
        entries = chk.array(blkio.get(key), f"{path}.{key}")
        if entries:
            devs = []
            for i, entry in enumerate(entries):
                p = f"{path}.{key}[{i}]"
                dev = _dev(chk.obj(entry, p), p, chk, "rate")
                if dev[2] < 0:
                    raise chk.fail(p, "rate is required")
                devs.append(dev)
            out[suffix] = devs
    return out


def weight_devices(blkio: dict[str, Any], chk: Checker, path: str) -> list[tuple[int, int, int, int]]:
    """(major, minor, weight, leafWeight) with -1 for absent weights."""
    out = []
    for i, entry in enumerate(chk.array(blkio.get("weightDevice"), f"{path}.weightDevice")):
        p = f"{path}.weightDevice[{i}]"
        entry = chk.obj(entry, p)
        major, minor, weight = _dev(entry, p, chk, "weight")
        leaf = chk.integer(entry, "leafWeight", p, lo=10, hi=1000)
        if weight != -1 and not 10 <= weight <= 1000:
            raise chk.fail(f"{p}.weight", f"{weight} is out of range (10-1000)")
        out.append((major, minor, weight, -1 if leaf is None else leaf))
    return out


def check_cpuset(cpu: dict[str, Any], chk: Checker, path: str) -> tuple[str | None, str | None]:
    cpus, mems = chk.string(cpu, "cpus", path), chk.string(cpu, "mems", path)
    for key, value in (("cpus", cpus), ("mems", mems)):
        if value:
            try:
                parse_cpu_list(value)
            except ValueError:
                raise chk.fail(f"{path}.{key}", f"{value!r} is not a list like 0-3,5") from None
    return cpus or None, mems or None


def hugepages(res: dict[str, Any], chk: Checker) -> list[tuple[str, int]]:
    out = []
    for i, entry in enumerate(chk.array(res.get("hugepageLimits"), ".hugepageLimits")):
        p = f".hugepageLimits[{i}]"
        entry = chk.obj(entry, p)
        size = chk.string(entry, "pageSize", p)
        try:
            label = hugetlb_name(page_size_bytes(size or ""))
        except ValueError:
            raise chk.fail(f"{p}.pageSize", f"{size!r} is not a page size like 2MB") from None
        limit = chk.integer(entry, "limit", p, lo=0, hi=MAX_INT64)
        if limit is None:
            raise chk.fail(f"{p}.limit", "is required")
        out.append((label, limit))
    return out


def rdma(res: dict[str, Any], chk: Checker) -> str | None:
    lines = []
    for dev, entry in chk.obj(res.get("rdma"), ".rdma").items():
        p = f".rdma.{dev}"
        if not dev or any(c.isspace() for c in dev):
            raise chk.fail(p, "device name must be non-empty without spaces")
        entry = chk.obj(entry, p)
        parts = [dev]
        handles = chk.integer(entry, "hcaHandles", p, lo=0, hi=0xFFFFFFFF)
        objects = chk.integer(entry, "hcaObjects", p, lo=0, hi=0xFFFFFFFF)
        if handles is None and objects is None:
            raise chk.fail(p, "needs hcaHandles or hcaObjects")
        if handles is not None:
            parts.append(f"hca_handle={handles}")
        if objects is not None:
            parts.append(f"hca_object={objects}")
        lines.append(" ".join(parts))
    return "\n".join(lines) or None


def _add(plan: Plan, controller: str, name: str, value: str | None) -> None:
    if value is not None and value != "":
        plan.setdefault(controller, {})[name] = value


def _memory_common(res: dict[str, Any], chk: Checker) -> tuple[dict[str, Any], dict[str, int | None]]:
    mem = chk.obj(res.get("memory"), ".memory")
    vals = {k: chk.limit(mem, k, ".memory") for k in ("limit", "reservation", "swap", "kernel", "kernelTCP")}
    return mem, vals


def plan_v1(res: dict[str, Any] | None, *, prefix: str = ".linux.resources",
            source: str = "config.json") -> Plan:
    """Plan the v1 writes. memory.limit_in_bytes/memsw ordering is left to the
    manager (it depends on the current memsw value), everything else is in
    write order."""
    chk = Checker(prefix, source)
    res = chk.obj(res, "")
    plan: Plan = {}
    if res.get("unified"):
        raise chk.fail(".unified", "cgroup v2 resources set but this host uses cgroup v1 controllers")
    mem, m = _memory_common(res, chk)
    if m["limit"] == -1 and not m["swap"]:
        m["swap"] = -1  # runc: unlimited memory implies unlimited memory+swap
    if m["limit"] and m["swap"] and m["swap"] != -1 and m["limit"] != -1 and m["swap"] < m["limit"]:
        raise chk.fail(".memory.swap", "memory+swap limit should be >= memory limit")
    _add(plan, "memory", "memory.limit_in_bytes", str(m["limit"]) if m["limit"] else None)
    _add(plan, "memory", "memory.memsw.limit_in_bytes", str(m["swap"]) if m["swap"] else None)
    _add(plan, "memory", "memory.soft_limit_in_bytes", str(m["reservation"]) if m["reservation"] else None)
    _add(plan, "memory", "memory.kmem.tcp.limit_in_bytes", str(m["kernelTCP"]) if m["kernelTCP"] else None)
    swappiness = chk.integer(mem, "swappiness", ".memory", lo=0, hi=100, what="(valid range is 0-100)")
    _add(plan, "memory", "memory.swappiness", None if swappiness is None else str(swappiness))
    if chk.boolean(mem, "disableOOMKiller", ".memory"):
        _add(plan, "memory", "memory.oom_control", "1")
    hierarchy = chk.boolean(mem, "useHierarchy", ".memory")
    if hierarchy is not None:
        _add(plan, "memory", "memory.use_hierarchy", "1" if hierarchy else "0")
    chk.boolean(mem, "checkBeforeUpdate", ".memory")

    cpu = chk.obj(res.get("cpu"), ".cpu")
    shares = chk.integer(cpu, "shares", ".cpu", lo=0, hi=262144, what="(valid range is 2-262144)")
    _add(plan, "cpu", "cpu.shares", str(shares) if shares else None)
    period = chk.integer(cpu, "period", ".cpu", lo=0, hi=1_000_000, what="(valid range is 1000-1000000 us)")
    if period and period < 1000:
        raise chk.fail(".cpu.period", f"{period} is out of range (valid range is 1000-1000000 us)")
    quota = chk.integer(cpu, "quota", ".cpu", lo=-1, hi=MAX_INT64 // 1000)
    if quota and 0 < quota < 1000:
        raise chk.fail(".cpu.quota", f"{quota} is out of range (minimum is 1000 us, or -1)")
    _add(plan, "cpu", "cpu.cfs_period_us", str(period) if period else None)
    _add(plan, "cpu", "cpu.cfs_quota_us", str(quota) if quota else None)
    burst = chk.integer(cpu, "burst", ".cpu", lo=0, hi=MAX_INT64)
    _add(plan, "cpu", "cpu.cfs_burst_us", None if burst is None else str(burst))
    rt_period = chk.integer(cpu, "realtimePeriod", ".cpu", lo=0, hi=MAX_INT64)
    rt_runtime = chk.integer(cpu, "realtimeRuntime", ".cpu", lo=-1, hi=MAX_INT64)
    _add(plan, "cpu", "cpu.rt_period_us", str(rt_period) if rt_period else None)
    _add(plan, "cpu", "cpu.rt_runtime_us", str(rt_runtime) if rt_runtime else None)
    _plan_idle_cpuset_pids(res, cpu, chk, plan)

    _plan_blkio_v1(res, chk, plan)
    for label, hlimit in hugepages(res, chk):
        _add(plan, "hugetlb", f"hugetlb.{label}.limit_in_bytes", str(hlimit))
    net = chk.obj(res.get("network"), ".network")
    classid = chk.integer(net, "classID", ".network", lo=0, hi=0xFFFFFFFF)
    _add(plan, "net_cls", "net_cls.classid", str(classid) if classid else None)
    prios = []
    for i, entry in enumerate(chk.array(net.get("priorities"), ".network.priorities")):
        p = f".network.priorities[{i}]"
        entry = chk.obj(entry, p)
        name = chk.string(entry, "name", p)
        prio = chk.integer(entry, "priority", p, lo=0, hi=0xFFFFFFFF)
        if not name or prio is None:
            raise chk.fail(p, "name and priority are required")
        prios.append(f"{name} {prio}")
    _add(plan, "net_prio", "net_prio.ifpriomap", "\n".join(prios) or None)
    _add(plan, "rdma", "rdma.max", rdma(res, chk))
    return plan


def _plan_blkio_v1(res: dict[str, Any], chk: Checker, plan: Plan) -> None:
    blkio = chk.obj(res.get("blockIO"), ".blockIO")
    weight = chk.integer(blkio, "weight", ".blockIO", lo=0, hi=1000, what="(valid range is 10-1000)")
    if weight and weight < 10:
        raise chk.fail(".blockIO.weight", f"{weight} is out of range (valid range is 10-1000)")
    leaf = chk.integer(blkio, "leafWeight", ".blockIO", lo=0, hi=1000, what="(valid range is 10-1000)")
    if leaf and leaf < 10:
        raise chk.fail(".blockIO.leafWeight", f"{leaf} is out of range (valid range is 10-1000)")
    # blkio.weight is CFQ's; on bfq-only kernels the manager renames it blkio.bfq.weight
    _add(plan, "blkio", "blkio.weight", str(weight) if weight else None)
    _add(plan, "blkio", "blkio.leaf_weight", str(leaf) if leaf else None)
    wdev = weight_devices(blkio, chk, ".blockIO")
    _add(plan, "blkio", "blkio.weight_device",
         "\n".join(f"{a}:{b} {w}" for a, b, w, _ in wdev if w != -1) or None)
    _add(plan, "blkio", "blkio.leaf_weight_device",
         "\n".join(f"{a}:{b} {lw}" for a, b, _, lw in wdev if lw != -1) or None)
    for suffix, devs in throttles(blkio, chk, ".blockIO").items():
        _add(plan, "blkio", f"blkio.throttle.{suffix}", "\n".join(f"{a}:{b} {r}" for a, b, r in devs))


# v2 interface files a container may set through `unified`, per controller
# (Documentation/admin-guide/cgroup-v2.rst); read-only files are left out.
UNIFIED_FILES: dict[str, frozenset[str]] = {
    "cgroup": frozenset({"cgroup.max.depth", "cgroup.max.descendants", "cgroup.freeze", "cgroup.type"}),
    "cpu": frozenset({"cpu.weight", "cpu.weight.nice", "cpu.max", "cpu.max.burst", "cpu.idle",
                      "cpu.uclamp.min", "cpu.uclamp.max", "cpu.pressure"}),
    "cpuset": frozenset({"cpuset.cpus", "cpuset.mems", "cpuset.cpus.partition", "cpuset.cpus.exclusive"}),
    "memory": frozenset({"memory.min", "memory.low", "memory.high", "memory.max", "memory.oom.group",
                         "memory.swap.high", "memory.swap.max", "memory.zswap.max", "memory.zswap.writeback",
                         "memory.pressure", "memory.reclaim", "memory.swap.peak", "memory.peak"}),
    "io": frozenset({"io.weight", "io.bfq.weight", "io.max", "io.latency", "io.cost.qos",
                     "io.cost.model", "io.prio.class", "io.pressure"}),
    "pids": frozenset({"pids.max"}),
    "rdma": frozenset({"rdma.max"}),
    "misc": frozenset({"misc.max"}),
}
def _is_hugetlb_file(key: str) -> bool:
    """hugetlb.<N>{KB,MB,GB}.max or .rsvd.max"""
    parts = key.split(".", 2)
    if len(parts) != 3 or parts[0] != "hugetlb" or parts[2] not in ("max", "rsvd.max"):
        return False
    size = parts[1]
    return size[-2:] in ("KB", "MB", "GB") and _is_digits(size[:-2])


def check_unified(res: dict[str, Any], chk: Checker) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in chk.obj(res.get("unified"), ".unified").items():
        p = f".unified.{key}"
        if "/" in key or key in ("", ".", ".."):
            raise chk.fail(p, "must be a file name (no slashes)")
        controller, dot, _ = key.partition(".")
        if not dot:
            raise chk.fail(p, "must be in the form CONTROLLER.PARAMETER")
        known = UNIFIED_FILES.get(controller, frozenset())
        if key not in known and not _is_hugetlb_file(key):
            raise chk.fail(p, f"unknown cgroup v2 file {key!r}")
        if not isinstance(value, str):
            raise chk.fail(p, f"value must be a string, not {value!r}")
        out[key] = value
    return out


def plan_v2(res: dict[str, Any] | None, *, bfq: bool = False, prefix: str = ".linux.resources",
            source: str = "config.json") -> Plan:
    """Plan the v2 writes (runc's fs2 semantics). `bfq` says whether the cgroup
    has io.bfq.weight, which takes blkio weights unconverted."""
    chk = Checker(prefix, source)
    res = chk.obj(res, "")
    plan: Plan = {}
    mem, m = _memory_common(res, chk)
    limit, swap, reservation = m["limit"] or 0, m["swap"] or 0, m["reservation"] or 0
    if limit or swap or reservation:
        try:
            swap2 = memory_swap_to_v2(swap, limit)
        except ValueError as err:
            raise chk.fail(".memory.swap", str(err)) from None
        if swap2 or (swap > 0 and swap == limit):
            _add(plan, "memory", "memory.swap.max", _num(swap2))
        _add(plan, "memory", "memory.max", _num(limit) if limit else None)
        _add(plan, "memory", "memory.low", _num(reservation) if reservation else None)
    swappiness = chk.integer(mem, "swappiness", ".memory", lo=0, hi=100, what="(valid range is 0-100)")
    if swappiness is not None:
        raise chk.fail(".memory.swappiness", "not supported on cgroup v2")
    if chk.boolean(mem, "disableOOMKiller", ".memory"):
        raise chk.fail(".memory.disableOOMKiller", "not supported on cgroup v2")
    chk.boolean(mem, "useHierarchy", ".memory")  # always hierarchical on v2
    chk.boolean(mem, "checkBeforeUpdate", ".memory")

    cpu = chk.obj(res.get("cpu"), ".cpu")
    shares = chk.integer(cpu, "shares", ".cpu", lo=0, hi=262144, what="(valid range is 2-262144)")
    _add(plan, "cpu", "cpu.weight", str(shares_to_weight(shares)) if shares else None)
    period = chk.integer(cpu, "period", ".cpu", lo=0, hi=1_000_000, what="(valid range is 1000-1000000 us)")
    if period and period < 1000:
        raise chk.fail(".cpu.period", f"{period} is out of range (valid range is 1000-1000000 us)")
    quota = chk.integer(cpu, "quota", ".cpu", lo=-1, hi=MAX_INT64 // 1000)
    if quota and 0 < quota < 1000:
        raise chk.fail(".cpu.quota", f"{quota} is out of range (minimum is 1000 us, or -1)")
    if quota or period:
        _add(plan, "cpu", "cpu.max", ("max" if not quota or quota < 0 else str(quota))
             + (f" {period}" if period else ""))
    burst = chk.integer(cpu, "burst", ".cpu", lo=0, hi=MAX_INT64)
    _add(plan, "cpu", "cpu.max.burst", None if burst is None else str(burst))
    for key in ("realtimePeriod", "realtimeRuntime"):
        if chk.integer(cpu, key, ".cpu", lo=-1, hi=MAX_INT64):
            raise chk.fail(f".cpu.{key}", "realtime scheduling is not supported on cgroup v2")
    _plan_idle_cpuset_pids(res, cpu, chk, plan)

    blkio = chk.obj(res.get("blockIO"), ".blockIO")
    weight = chk.integer(blkio, "weight", ".blockIO", lo=0, hi=1000, what="(valid range is 10-1000)")
    if weight and weight < 10:
        raise chk.fail(".blockIO.weight", f"{weight} is out of range (valid range is 10-1000)")
    if chk.integer(blkio, "leafWeight", ".blockIO", lo=0, hi=1000):
        raise chk.fail(".blockIO.leafWeight", "not supported on cgroup v2")
    if weight:
        if bfq:
            _add(plan, "io", "io.bfq.weight", str(weight))
        else:
            _add(plan, "io", "io.weight", f"default {blkio_weight_to_io_weight(weight)}")
    wdev = [d for d in weight_devices(blkio, chk, ".blockIO") if d[2] != -1]
    if any(d[3] != -1 for d in weight_devices(blkio, chk, ".blockIO")):
        raise chk.fail(".blockIO.weightDevice", "leafWeight is not supported on cgroup v2")
    if wdev:
        if bfq:
            _add(plan, "io", "io.bfq.weight", "\n".join(
                ([plan["io"]["io.bfq.weight"]] if weight else []) + [f"{a}:{b} {w}" for a, b, w, _ in wdev]))
        else:
            _add(plan, "io", "io.weight", "\n".join(
                ([plan["io"]["io.weight"]] if weight else [])
                + [f"{a}:{b} {blkio_weight_to_io_weight(w)}" for a, b, w, _ in wdev]))
    io_max = []
    names = {"read_bps_device": "rbps", "write_bps_device": "wbps",
             "read_iops_device": "riops", "write_iops_device": "wiops"}
    for suffix, devs in throttles(blkio, chk, ".blockIO").items():
        io_max += [f"{a}:{b} {names[suffix]}={r}" for a, b, r in devs]
    _add(plan, "io", "io.max", "\n".join(io_max) or None)

    for label, hlimit in hugepages(res, chk):
        _add(plan, "hugetlb", f"hugetlb.{label}.max", str(hlimit))
    net = chk.obj(res.get("network"), ".network")
    if net.get("classID") or net.get("priorities"):
        raise chk.fail(".network", "net_cls/net_prio do not exist on cgroup v2")
    _add(plan, "rdma", "rdma.max", rdma(res, chk))
    for key, value in check_unified(res, chk).items():
        controller = key.partition(".")[0]
        for other in plan.values():  # a unified key overrides the converted value
            other.pop(key, None)
        plan.setdefault(controller, {})[key] = value
    return {k: v for k, v in plan.items() if v}


def memory_check_before_update(res: dict[str, Any] | None) -> bool:
    mem = (res or {}).get("memory") or {}
    return bool(isinstance(mem, dict) and mem.get("checkBeforeUpdate"))


def _plan_idle_cpuset_pids(res: dict, cpu: dict, chk, plan: dict) -> None:
    """cpu.idle, cpuset.cpus/mems and pids.max: the same file names on v1 and v2."""
    idle = chk.integer(cpu, "idle", ".cpu", lo=0, hi=1)
    _add(plan, "cpu", "cpu.idle", None if idle is None else str(idle))
    cpus, mems = check_cpuset(cpu, chk, ".cpu")
    _add(plan, "cpuset", "cpuset.cpus", cpus)
    _add(plan, "cpuset", "cpuset.mems", mems)
    pids = chk.obj(res.get("pids"), ".pids")
    limit = chk.integer(pids, "limit", ".pids", lo=-1 << 63, hi=MAX_INT64)
    if limit:
        _add(plan, "pids", "pids.max", str(limit) if limit > 0 else "max")
