"""`linux.resources`, typed (spec.Resources), → plain file-write plans for cgroup v1 and v2.

The JSON was checked once, by pyrunc.config (types, required fields, enums); what
is left here are the cgroup rules a well-formed value can still break, some of
them per hierarchy (runc checks them when it applies, and so do we, naming the
JSON field: `.linux.resources.memory.swappiness: 101 is out of range`).
Everything here is pure: `plan_v1`/`plan_v2` turn the record into
`{controller: {file: value}}` in the order the writes must happen. A value
holding several lines is written one line per write(2), as the kernel wants for
`blkio.throttle.*`, `io.max` and `devices.allow`. The conversions (shares →
cpu.weight, blkio weight → io.weight, memory+swap → memory.swap.max) follow
runc's `libcontainer/cgroups/utils.go`. Devices are planned in `devices.py`;
the managers add them.
To add a cgroup resource: its field in spec.Resources, its JSON check in
config/resources.py (and schemas/config.schema.json), its files here.
"""

from __future__ import annotations

import math

from pyrunc.errors import ConfigError
from pyrunc.spec import CPU, BlockIO, Memory, Network, Pids, Resources

Plan = dict[str, dict[str, str]]

MAX_INT64 = (1 << 63) - 1
_PAGE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")
# (no `re` in this module: it is imported on every `pyrunc run`)
_NO_MEMORY, _NO_CPU, _NO_PIDS, _NO_BLKIO, _NO_NETWORK = Memory(), CPU(), Pids(), BlockIO(), Network()


def _is_digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


class Rules:
    """Fails a value naming its JSON field (under `prefix`, in `source`)."""

    def __init__(self, prefix: str, source: str) -> None:
        self.prefix = prefix
        self.source = source

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{self.prefix}{path}", message, self.source)

    def range(self, value: int | None, path: str, lo: int, hi: int, what: str = "") -> int | None:
        if value is not None and not lo <= value <= hi:
            raise self.fail(path, f"{value} is out of range{' ' + what if what else ''}")
        return value

    def limit(self, value: int | None, path: str) -> int | None:
        """A byte or count limit: -1 means unlimited, 0 means unset (runc)."""
        return self.range(value, path, -1, MAX_INT64, "(expected -1 for unlimited or a non-negative number)")


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


def _dev(major: int, minor: int, path: str, rules: Rules) -> tuple[int, int]:
    rules.range(major, f"{path}.major", 0, 0xFFFFFFFF)
    rules.range(minor, f"{path}.minor", 0, 0xFFFFFFFF)
    return major, minor


def throttles(blkio: BlockIO, rules: Rules, path: str) -> dict[str, list[tuple[int, int, int]]]:
    """The four per-device throttle lists, keyed by their v1 file suffix."""
    lists = {"read_bps_device": ("throttleReadBpsDevice", blkio.throttle_read_bps_device),
             "write_bps_device": ("throttleWriteBpsDevice", blkio.throttle_write_bps_device),
             "read_iops_device": ("throttleReadIOPSDevice", blkio.throttle_read_iops_device),
             "write_iops_device": ("throttleWriteIOPSDevice", blkio.throttle_write_iops_device)}
    out: dict[str, list[tuple[int, int, int]]] = {}
    for suffix, (key, entries) in lists.items():
        if entries:
            devs = []
            for i, entry in enumerate(entries):
                p = f"{path}.{key}[{i}]"
                major, minor = _dev(entry.major, entry.minor, p, rules)
                devs.append((major, minor, rules.range(entry.rate, f"{p}.rate", 0, MAX_INT64)))
            out[suffix] = devs
    return out


def weight_devices(blkio: BlockIO, rules: Rules, path: str) -> list[tuple[int, int, int, int]]:
    """(major, minor, weight, leafWeight) with -1 for absent weights."""
    out = []
    for i, entry in enumerate(blkio.weight_device):
        p = f"{path}.weightDevice[{i}]"
        major, minor = _dev(entry.major, entry.minor, p, rules)
        weight, leaf = entry.weight, entry.leaf_weight
        rules.range(weight, f"{p}.weight", 10, 1000, "(10-1000)")
        rules.range(leaf, f"{p}.leafWeight", 10, 1000)
        out.append((major, minor, -1 if weight is None else weight, -1 if leaf is None else leaf))
    return out


def check_cpuset(cpu: CPU, rules: Rules, path: str) -> tuple[str | None, str | None]:
    for key, value in (("cpus", cpu.cpus), ("mems", cpu.mems)):
        if value:
            try:
                parse_cpu_list(value)
            except ValueError:
                raise rules.fail(f"{path}.{key}", f"{value!r} is not a list like 0-3,5") from None
    return cpu.cpus or None, cpu.mems or None


def hugepages(res: Resources, rules: Rules) -> list[tuple[str, int]]:
    out = []
    for i, entry in enumerate(res.hugepage_limits):
        p = f".hugepageLimits[{i}]"
        try:
            label = hugetlb_name(page_size_bytes(entry.page_size))
        except ValueError:
            raise rules.fail(f"{p}.pageSize", f"{entry.page_size!r} is not a page size like 2MB") from None
        out.append((label, rules.range(entry.limit, f"{p}.limit", 0, MAX_INT64)))
    return out


def rdma(res: Resources, rules: Rules) -> str | None:
    lines = []
    for dev, entry in res.rdma.items():
        if any(c.isspace() for c in dev):
            raise rules.fail(f".rdma.{dev}", "device name must be non-empty without spaces")
        parts = [dev]
        if entry.hca_handles is not None:
            parts.append(f"hca_handle={entry.hca_handles}")
        if entry.hca_objects is not None:
            parts.append(f"hca_object={entry.hca_objects}")
        lines.append(" ".join(parts))
    return "\n".join(lines) or None


def _add(plan: Plan, controller: str, name: str, value: str | None) -> None:
    if value is not None and value != "":
        plan.setdefault(controller, {})[name] = value


def _memory_common(mem: Memory, rules: Rules) -> dict[str, int | None]:
    return {k: rules.limit(getattr(mem, attr), f".memory.{k}") for k, attr in (
        ("limit", "limit"), ("reservation", "reservation"), ("swap", "swap"), ("kernel", "kernel"),
        ("kernelTCP", "kernel_tcp"))}


def _cpu_period_quota(cpu: CPU, rules: Rules) -> tuple[int | None, int | None]:
    rules.range(cpu.shares, ".cpu.shares", 0, 262144, "(valid range is 2-262144)")
    period = rules.range(cpu.period, ".cpu.period", 0, 1_000_000, "(valid range is 1000-1000000 us)")
    if period and period < 1000:
        raise rules.fail(".cpu.period", f"{period} is out of range (valid range is 1000-1000000 us)")
    quota = rules.range(cpu.quota, ".cpu.quota", -1, MAX_INT64 // 1000)
    if quota and 0 < quota < 1000:
        raise rules.fail(".cpu.quota", f"{quota} is out of range (minimum is 1000 us, or -1)")
    return period, quota


def plan_v1(res: Resources | None, *, prefix: str = ".linux.resources", source: str = "config.json") -> Plan:
    """Plan the v1 writes. memory.limit_in_bytes/memsw ordering is left to the
    manager (it depends on the current memsw value), everything else is in
    write order."""
    rules = Rules(prefix, source)
    plan: Plan = {}
    if res is None:
        return plan
    if res.unified:
        raise rules.fail(".unified", "cgroup v2 resources set but this host uses cgroup v1 controllers")
    mem = res.memory or _NO_MEMORY
    m = _memory_common(mem, rules)
    if m["limit"] == -1 and not m["swap"]:
        m["swap"] = -1  # runc: unlimited memory implies unlimited memory+swap
    if m["limit"] and m["swap"] and m["swap"] != -1 and m["limit"] != -1 and m["swap"] < m["limit"]:
        raise rules.fail(".memory.swap", "memory+swap limit should be >= memory limit")
    _add(plan, "memory", "memory.limit_in_bytes", str(m["limit"]) if m["limit"] else None)
    _add(plan, "memory", "memory.memsw.limit_in_bytes", str(m["swap"]) if m["swap"] else None)
    _add(plan, "memory", "memory.soft_limit_in_bytes", str(m["reservation"]) if m["reservation"] else None)
    _add(plan, "memory", "memory.kmem.tcp.limit_in_bytes", str(m["kernelTCP"]) if m["kernelTCP"] else None)
    swappiness = rules.range(mem.swappiness, ".memory.swappiness", 0, 100, "(valid range is 0-100)")
    _add(plan, "memory", "memory.swappiness", None if swappiness is None else str(swappiness))
    if mem.disable_oom_killer:
        _add(plan, "memory", "memory.oom_control", "1")
    if mem.use_hierarchy is not None:
        _add(plan, "memory", "memory.use_hierarchy", "1" if mem.use_hierarchy else "0")

    cpu = res.cpu or _NO_CPU
    period, quota = _cpu_period_quota(cpu, rules)
    _add(plan, "cpu", "cpu.shares", str(cpu.shares) if cpu.shares else None)
    _add(plan, "cpu", "cpu.cfs_period_us", str(period) if period else None)
    _add(plan, "cpu", "cpu.cfs_quota_us", str(quota) if quota else None)
    burst = rules.range(cpu.burst, ".cpu.burst", 0, MAX_INT64)
    _add(plan, "cpu", "cpu.cfs_burst_us", None if burst is None else str(burst))
    rt_period = rules.range(cpu.realtime_period, ".cpu.realtimePeriod", 0, MAX_INT64)
    rt_runtime = rules.range(cpu.realtime_runtime, ".cpu.realtimeRuntime", -1, MAX_INT64)
    _add(plan, "cpu", "cpu.rt_period_us", str(rt_period) if rt_period else None)
    _add(plan, "cpu", "cpu.rt_runtime_us", str(rt_runtime) if rt_runtime else None)
    _plan_idle_cpuset_pids(res, cpu, rules, plan)

    _plan_blkio_v1(res.block_io or _NO_BLKIO, rules, plan)
    for label, hlimit in hugepages(res, rules):
        _add(plan, "hugetlb", f"hugetlb.{label}.limit_in_bytes", str(hlimit))
    net = res.network or _NO_NETWORK
    _add(plan, "net_cls", "net_cls.classid", str(net.class_id) if net.class_id else None)
    _add(plan, "net_prio", "net_prio.ifpriomap", "\n".join(f"{p.name} {p.priority}" for p in net.priorities) or None)
    _add(plan, "rdma", "rdma.max", rdma(res, rules))
    return plan


def _blkio_weights(blkio: BlockIO, rules: Rules) -> int | None:
    weight = rules.range(blkio.weight, ".blockIO.weight", 0, 1000, "(valid range is 10-1000)")
    if weight and weight < 10:
        raise rules.fail(".blockIO.weight", f"{weight} is out of range (valid range is 10-1000)")
    return weight


def _plan_blkio_v1(blkio: BlockIO, rules: Rules, plan: Plan) -> None:
    weight = _blkio_weights(blkio, rules)
    leaf = rules.range(blkio.leaf_weight, ".blockIO.leafWeight", 0, 1000, "(valid range is 10-1000)")
    if leaf and leaf < 10:
        raise rules.fail(".blockIO.leafWeight", f"{leaf} is out of range (valid range is 10-1000)")
    # blkio.weight is CFQ's; on bfq-only kernels the manager renames it blkio.bfq.weight
    _add(plan, "blkio", "blkio.weight", str(weight) if weight else None)
    _add(plan, "blkio", "blkio.leaf_weight", str(leaf) if leaf else None)
    wdev = weight_devices(blkio, rules, ".blockIO")
    _add(plan, "blkio", "blkio.weight_device",
         "\n".join(f"{a}:{b} {w}" for a, b, w, _ in wdev if w != -1) or None)
    _add(plan, "blkio", "blkio.leaf_weight_device",
         "\n".join(f"{a}:{b} {lw}" for a, b, _, lw in wdev if lw != -1) or None)
    for suffix, devs in throttles(blkio, rules, ".blockIO").items():
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


def check_unified(res: Resources, rules: Rules) -> dict[str, str]:
    for key in res.unified:
        p = f".unified.{key}"
        if "/" in key or key in ("", ".", ".."):
            raise rules.fail(p, "must be a file name (no slashes)")
        controller, dot, _ = key.partition(".")
        if not dot:
            raise rules.fail(p, "must be in the form CONTROLLER.PARAMETER")
        known = UNIFIED_FILES.get(controller, frozenset())
        if key not in known and not _is_hugetlb_file(key):
            raise rules.fail(p, f"unknown cgroup v2 file {key!r}")
    return res.unified


def plan_v2(res: Resources | None, *, bfq: bool = False, prefix: str = ".linux.resources",
            source: str = "config.json") -> Plan:
    """Plan the v2 writes (runc's fs2 semantics). `bfq` says whether the cgroup
    has io.bfq.weight, which takes blkio weights unconverted."""
    rules = Rules(prefix, source)
    plan: Plan = {}
    if res is None:
        return plan
    mem = res.memory or _NO_MEMORY
    m = _memory_common(mem, rules)
    limit, swap, reservation = m["limit"] or 0, m["swap"] or 0, m["reservation"] or 0
    if limit or swap or reservation:
        try:
            swap2 = memory_swap_to_v2(swap, limit)
        except ValueError as err:
            raise rules.fail(".memory.swap", str(err)) from None
        if swap2 or (swap > 0 and swap == limit):
            _add(plan, "memory", "memory.swap.max", _num(swap2))
        _add(plan, "memory", "memory.max", _num(limit) if limit else None)
        _add(plan, "memory", "memory.low", _num(reservation) if reservation else None)
    if rules.range(mem.swappiness, ".memory.swappiness", 0, 100, "(valid range is 0-100)") is not None:
        raise rules.fail(".memory.swappiness", "not supported on cgroup v2")
    if mem.disable_oom_killer:
        raise rules.fail(".memory.disableOOMKiller", "not supported on cgroup v2")

    cpu = res.cpu or _NO_CPU
    period, quota = _cpu_period_quota(cpu, rules)
    _add(plan, "cpu", "cpu.weight", str(shares_to_weight(cpu.shares)) if cpu.shares else None)
    if quota or period:
        _add(plan, "cpu", "cpu.max", ("max" if not quota or quota < 0 else str(quota))
             + (f" {period}" if period else ""))
    burst = rules.range(cpu.burst, ".cpu.burst", 0, MAX_INT64)
    _add(plan, "cpu", "cpu.max.burst", None if burst is None else str(burst))
    for key, value in (("realtimePeriod", cpu.realtime_period), ("realtimeRuntime", cpu.realtime_runtime)):
        if rules.range(value, f".cpu.{key}", -1, MAX_INT64):
            raise rules.fail(f".cpu.{key}", "realtime scheduling is not supported on cgroup v2")
    _plan_idle_cpuset_pids(res, cpu, rules, plan)

    blkio = res.block_io or _NO_BLKIO
    weight = _blkio_weights(blkio, rules)
    if rules.range(blkio.leaf_weight, ".blockIO.leafWeight", 0, 1000):
        raise rules.fail(".blockIO.leafWeight", "not supported on cgroup v2")
    if weight:
        if bfq:
            _add(plan, "io", "io.bfq.weight", str(weight))
        else:
            _add(plan, "io", "io.weight", f"default {blkio_weight_to_io_weight(weight)}")
    all_wdev = weight_devices(blkio, rules, ".blockIO")
    wdev = [d for d in all_wdev if d[2] != -1]
    if any(d[3] != -1 for d in all_wdev):
        raise rules.fail(".blockIO.weightDevice", "leafWeight is not supported on cgroup v2")
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
    for suffix, devs in throttles(blkio, rules, ".blockIO").items():
        io_max += [f"{a}:{b} {names[suffix]}={r}" for a, b, r in devs]
    _add(plan, "io", "io.max", "\n".join(io_max) or None)

    for label, hlimit in hugepages(res, rules):
        _add(plan, "hugetlb", f"hugetlb.{label}.max", str(hlimit))
    net = res.network or _NO_NETWORK
    if net.class_id or net.priorities:
        raise rules.fail(".network", "net_cls/net_prio do not exist on cgroup v2")
    _add(plan, "rdma", "rdma.max", rdma(res, rules))
    for key, value in check_unified(res, rules).items():
        controller = key.partition(".")[0]
        for other in plan.values():  # a unified key overrides the converted value
            other.pop(key, None)
        plan.setdefault(controller, {})[key] = value
    return {k: v for k, v in plan.items() if v}


def memory_check_before_update(res: Resources | None) -> bool:
    return bool(res is not None and res.memory is not None and res.memory.check_before_update)


def _plan_idle_cpuset_pids(res: Resources, cpu: CPU, rules: Rules, plan: Plan) -> None:
    """cpu.idle, cpuset.cpus/mems and pids.max: the same file names on v1 and v2."""
    idle = rules.range(cpu.idle, ".cpu.idle", 0, 1)
    _add(plan, "cpu", "cpu.idle", None if idle is None else str(idle))
    cpus, mems = check_cpuset(cpu, rules, ".cpu")
    _add(plan, "cpuset", "cpuset.cpus", cpus)
    _add(plan, "cpuset", "cpuset.mems", mems)
    limit = (res.pids or _NO_PIDS).limit
    if limit:
        _add(plan, "pids", "pids.max", str(limit) if limit > 0 else "max")


# Which `linux.resources` field each planned file comes from (relative to the
# prefix), for `pyrunc explain`: a new file here gets its field here too.
FILE_FIELDS: dict[str, str] = {
    "memory.limit_in_bytes": ".memory.limit", "memory.memsw.limit_in_bytes": ".memory.swap",
    "memory.soft_limit_in_bytes": ".memory.reservation", "memory.kmem.tcp.limit_in_bytes": ".memory.kernelTCP",
    "memory.swappiness": ".memory.swappiness", "memory.oom_control": ".memory.disableOOMKiller",
    "memory.use_hierarchy": ".memory.useHierarchy", "memory.max": ".memory.limit", "memory.swap.max": ".memory.swap",
    "memory.low": ".memory.reservation",
    "cpu.shares": ".cpu.shares", "cpu.weight": ".cpu.shares", "cpu.cfs_period_us": ".cpu.period",
    "cpu.cfs_quota_us": ".cpu.quota", "cpu.max": ".cpu.quota", "cpu.cfs_burst_us": ".cpu.burst",
    "cpu.max.burst": ".cpu.burst", "cpu.rt_period_us": ".cpu.realtimePeriod",
    "cpu.rt_runtime_us": ".cpu.realtimeRuntime", "cpu.idle": ".cpu.idle", "cpuset.cpus": ".cpu.cpus",
    "cpuset.mems": ".cpu.mems", "pids.max": ".pids.limit",
    "blkio.weight": ".blockIO.weight", "blkio.bfq.weight": ".blockIO.weight", "io.weight": ".blockIO.weight",
    "io.bfq.weight": ".blockIO.weight", "blkio.leaf_weight": ".blockIO.leafWeight",
    "blkio.weight_device": ".blockIO.weightDevice", "blkio.leaf_weight_device": ".blockIO.weightDevice",
    "blkio.throttle.read_bps_device": ".blockIO.throttleReadBpsDevice",
    "blkio.throttle.write_bps_device": ".blockIO.throttleWriteBpsDevice",
    "blkio.throttle.read_iops_device": ".blockIO.throttleReadIOPSDevice",
    "blkio.throttle.write_iops_device": ".blockIO.throttleWriteIOPSDevice", "io.max": ".blockIO",
    "net_cls.classid": ".network.classID", "net_prio.ifpriomap": ".network.priorities", "rdma.max": ".rdma",
    "devices.allow": ".devices", "devices.deny": ".devices",
}


def field_of(name: str, res: Resources | None, prefix: str = ".linux.resources") -> str:
    """The config field a planned cgroup file comes from (FILE_FIELDS; a
    `unified` key names itself; hugetlb files their hugepageLimits)."""
    if res is not None and name in res.unified:
        return f"{prefix}.unified.{name}"
    if name.startswith("hugetlb."):
        return f"{prefix}.hugepageLimits"
    return prefix + FILE_FIELDS.get(name, "")
