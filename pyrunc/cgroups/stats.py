"""Usage counters in runc's `events --stats` shape (runc `types/events.go`).

Fields runc marks `omitempty` are dropped when zero/empty, so the JSON keys
match runc's output byte for byte on the same data.
"""

from __future__ import annotations

import os
TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~4 ms on the run hot path

if TYPE_CHECKING:
    from typing import Any

from pyrunc.cgroups.fileio import read, read_flat, read_int

_UNLIMITED = 0xFFFFFFFFFFFFFFFF  # runc reports "max" as MaxUint64 on v2


def _clk_tck() -> int:
    return os.sysconf("SC_CLK_TCK") or 100


def _entry(limit: int, usage: int, peak: int, failcnt: int) -> dict[str, int]:
    out = {"limit": limit}
    if usage:
        out["usage"] = usage
    if peak:
        out["max"] = peak
    out["failcnt"] = failcnt
    return out


def _nonzero(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v}


def _hugepage_sizes() -> list[str]:
    from pyrunc.cgroups.resources import hugetlb_name

    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except FileNotFoundError:
        return []
    sizes = []
    for n in names:  # hugepages-2048kB
        kb = n.removeprefix("hugepages-").removesuffix("kB")
        if kb.isdigit():
            sizes.append(hugetlb_name(int(kb) * 1024))
    return sorted(sizes)


def _blkio_v1(path: str) -> dict[str, Any]:
    prefix = "blkio.bfq." if os.path.exists(f"{path}/blkio.bfq.io_service_bytes_recursive") else "blkio.throttle."
    out: dict[str, Any] = {}
    for key, name in (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
                      ("ioServicedRecursive", "io_serviced_recursive")):
        entries = []
        try:
            text = read(f"{path}/{prefix}{name}")
        except OSError:
            continue
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3 and ":" in parts[0]:
                major, minor = (int(x) for x in parts[0].split(":"))
                entries.append(_nonzero({"major": major, "minor": minor, "op": parts[1], "value": int(parts[2])}))
        if entries:
            out[key] = entries
    return out


def stats_v1(paths: dict[str, str]) -> dict[str, Any]:
    cpu_usage: dict[str, Any] = {}
    acct = paths.get("cpuacct")
    if acct:
        cpu_usage["total"] = read_int(f"{acct}/cpuacct.usage")
        try:
            cpu_usage["percpu"] = [int(x) for x in read(f"{acct}/cpuacct.usage_percpu").split()]
            rows = read(f"{acct}/cpuacct.usage_all").splitlines()[1:]
            cpu_usage["percpu_kernel"] = [int(r.split()[2]) for r in rows]
            cpu_usage["percpu_user"] = [int(r.split()[1]) for r in rows]
        except OSError:
            pass  # older kernels lack usage_all; runc omits the fields then
        ticks = read_flat(f"{acct}/cpuacct.stat")
        ns = 1_000_000_000 // _clk_tck()
        cpu_usage = _nonzero(cpu_usage)
        cpu_usage["kernel"] = ticks.get("system", 0) * ns
        cpu_usage["user"] = ticks.get("user", 0) * ns
    throttling: dict[str, int] = {}
    if "cpu" in paths:
        st = read_flat(f"{paths['cpu']}/cpu.stat")
        throttling = _nonzero({"periods": st.get("nr_periods", 0), "throttled_periods": st.get("nr_throttled", 0),
                               "throttled_time": st.get("throttled_time", 0)})
    out: dict[str, Any] = {"cpu": {"usage": cpu_usage, "throttling": throttling}}
    if "cpuset" in paths:
        out["cpuset"] = _cpuset_v1(paths["cpuset"])
    mem = paths.get("memory")
    if mem:
        raw = read_flat(f"{mem}/memory.stat")
        memory: dict[str, Any] = {}
        if raw.get("cache"):
            memory["cache"] = raw["cache"]
        for key, pre in (("usage", "memory."), ("swap", "memory.memsw."), ("kernel", "memory.kmem."),
                         ("kernelTCP", "memory.kmem.tcp.")):
            if os.path.exists(f"{mem}/{pre}limit_in_bytes"):
                memory[key] = _entry(read_int(f"{mem}/{pre}limit_in_bytes"), read_int(f"{mem}/{pre}usage_in_bytes"),
                                     read_int(f"{mem}/{pre}max_usage_in_bytes"), read_int(f"{mem}/{pre}failcnt"))
        if raw:
            memory["raw"] = dict(sorted(raw.items()))
        out["memory"] = memory
    if "pids" in paths:
        out["pids"] = _nonzero({"current": read_int(f"{paths['pids']}/pids.current"),
                                "limit": read_int(f"{paths['pids']}/pids.max")})
    out["blkio"] = _blkio_v1(paths["blkio"]) if "blkio" in paths else {}
    hugetlb: dict[str, Any] = {}
    if "hugetlb" in paths:
        h = paths["hugetlb"]
        for size in _hugepage_sizes():
            hugetlb[size] = _nonzero({"usage": read_int(f"{h}/hugetlb.{size}.usage_in_bytes"),
                                      "max": read_int(f"{h}/hugetlb.{size}.max_usage_in_bytes")})
            hugetlb[size]["failcnt"] = read_int(f"{h}/hugetlb.{size}.failcnt")
    out["hugetlb"] = hugetlb
    out["intel_rdt"] = {}
    out["network_interfaces"] = None
    return out


def _cpu_list(text: str) -> list[int]:
    from pyrunc.cgroups.resources import parse_cpu_list

    return sorted(parse_cpu_list(text)) if text else []


def _cpuset_v1(path: str) -> dict[str, Any]:
    def flag(name: str) -> int:
        return read_int(f"{path}/cpuset.{name}")

    out: dict[str, Any] = {"cpus": _cpu_list(read(f"{path}/cpuset.cpus"))}
    out["cpu_exclusive"] = flag("cpu_exclusive")
    out["mems"] = _cpu_list(read(f"{path}/cpuset.mems"))
    for name in ("mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page", "memory_spread_slab",
                 "memory_pressure", "sched_load_balance", "sched_relax_domain_level"):
        out[name] = flag(name)
    return out


def stats_v2(path: str) -> dict[str, Any]:
    cpu = read_flat(f"{path}/cpu.stat")
    usage = _nonzero({"total": cpu.get("usage_usec", 0) * 1000})
    usage["kernel"] = cpu.get("system_usec", 0) * 1000
    usage["user"] = cpu.get("user_usec", 0) * 1000
    throttling = _nonzero({"periods": cpu.get("nr_periods", 0), "throttled_periods": cpu.get("nr_throttled", 0),
                           "throttled_time": cpu.get("throttled_usec", 0) * 1000})
    out: dict[str, Any] = {"cpu": {"usage": usage, "throttling": throttling}}
    if os.path.exists(f"{path}/memory.current"):
        raw = read_flat(f"{path}/memory.stat")
        events = read_flat(f"{path}/memory.events")
        current = read_int(f"{path}/memory.current")
        limit = read_int(f"{path}/memory.max", _UNLIMITED)
        memory: dict[str, Any] = {}
        if raw.get("file"):
            memory["cache"] = raw["file"]
        memory["usage"] = _entry(limit, current, read_int(f"{path}/memory.peak"), events.get("max", 0))
        if os.path.exists(f"{path}/memory.swap.current"):
            swap_limit = read_int(f"{path}/memory.swap.max", _UNLIMITED)
            memsw = limit + swap_limit if _UNLIMITED not in (limit, swap_limit) else _UNLIMITED
            memory["swap"] = _entry(memsw, current + read_int(f"{path}/memory.swap.current"), 0,
                                    read_flat(f"{path}/memory.swap.events").get("max", 0))
        if raw:
            memory["raw"] = dict(sorted(raw.items()))
        out["memory"] = memory
    if os.path.exists(f"{path}/pids.current"):
        out["pids"] = _nonzero({"current": read_int(f"{path}/pids.current"), "limit": read_int(f"{path}/pids.max")})
    blkio: dict[str, Any] = {}
    try:
        text = read(f"{path}/io.stat")
    except OSError:
        text = ""
    for line in text.splitlines():
        dev, *kvs = line.split()
        major, minor = (int(x) for x in dev.split(":"))
        vals = dict(kv.split("=", 1) for kv in kvs)
        for key, rk, wk in (("ioServiceBytesRecursive", "rbytes", "wbytes"), ("ioServicedRecursive", "rios", "wios")):
            for op, k in (("Read", rk), ("Write", wk)):
                blkio.setdefault(key, []).append(_nonzero({"major": major, "minor": minor, "op": op,
                                                           "value": int(vals.get(k, 0))}))
    out["blkio"] = blkio
    hugetlb: dict[str, Any] = {}
    for size in _hugepage_sizes():
        if os.path.exists(f"{path}/hugetlb.{size}.current"):
            hugetlb[size] = _nonzero({"usage": read_int(f"{path}/hugetlb.{size}.current")})
            hugetlb[size]["failcnt"] = read_flat(f"{path}/hugetlb.{size}.events").get("max", 0)
    out["hugetlb"] = hugetlb
    out["intel_rdt"] = {}
    out["network_interfaces"] = None
    return out
