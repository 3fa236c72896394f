"""Stats readers on fake cgroup trees: runc's field names and omitempty rules."""

from pyrunc.cgroups import stats


def _files(base, files):
    base.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (base / name).write_text(text)
    return str(base)


def test_stats_v2(tmp_path):
    d = _files(tmp_path / "c", {
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 2\n"
                    "throttled_usec 30\n",
        "memory.current": "4096\n", "memory.max": "max\n", "memory.peak": "8192\n",
        "memory.stat": "anon 4096\nfile 0\n", "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        "memory.swap.current": "0\n", "memory.swap.max": "max\n",
        "pids.current": "2\n", "pids.max": "max\n",
        "io.stat": "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
    })
    s = stats.stats_v2(d)
    assert s["cpu"] == {"usage": {"total": 1500000, "kernel": 500000, "user": 1000000},
                        "throttling": {"periods": 4, "throttled_periods": 2, "throttled_time": 30000}}
    assert s["memory"]["usage"] == {"limit": stats._UNLIMITED, "usage": 4096, "max": 8192, "failcnt": 3}
    assert "cache" not in s["memory"]  # file 0: omitempty
    assert s["memory"]["swap"]["limit"] == stats._UNLIMITED
    assert s["pids"] == {"current": 2}  # limit "max" is 0 → omitted
    assert s["blkio"]["ioServiceBytesRecursive"] == [{"major": 8, "op": "Read", "value": 10},
                                                     {"major": 8, "op": "Write", "value": 20}]
    assert s["intel_rdt"] == {} and s["network_interfaces"] is None


def test_stats_v1(tmp_path):
    acct = _files(tmp_path / "cpuacct", {
        "cpuacct.usage": "300\n", "cpuacct.usage_percpu": "100 200 \n",
        "cpuacct.usage_all": "cpu user system\n0 60 40\n1 150 50\n", "cpuacct.stat": "user 2\nsystem 1\n"})
    cpu = _files(tmp_path / "cpu", {"cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n"})
    mem = _files(tmp_path / "memory", {
        "memory.stat": "cache 10\nrss 20\n", "memory.limit_in_bytes": "1000\n", "memory.usage_in_bytes": "30\n",
        "memory.max_usage_in_bytes": "50\n", "memory.failcnt": "0\n",
        "memory.kmem.tcp.limit_in_bytes": "99\n", "memory.kmem.tcp.usage_in_bytes": "0\n",
        "memory.kmem.tcp.max_usage_in_bytes": "0\n", "memory.kmem.tcp.failcnt": "0\n"})
    pids = _files(tmp_path / "pids", {"pids.current": "1\n", "pids.max": "10\n"})
    blk = _files(tmp_path / "blkio", {
        "blkio.throttle.io_service_bytes_recursive": "8:0 Read 5\n8:0 Write 0\nTotal 5\n",
        "blkio.throttle.io_serviced_recursive": "Total 0\n"})
    s = stats.stats_v1({"cpuacct": acct, "cpu": cpu, "memory": mem, "pids": pids, "blkio": blk})
    tick_ns = 1_000_000_000 // stats._clk_tck()
    assert s["cpu"]["usage"] == {"total": 300, "percpu": [100, 200], "percpu_kernel": [40, 50],
                                 "percpu_user": [60, 150], "kernel": tick_ns, "user": 2 * tick_ns}
    assert s["cpu"]["throttling"] == {}
    assert s["memory"]["cache"] == 10
    assert s["memory"]["usage"] == {"limit": 1000, "usage": 30, "max": 50, "failcnt": 0}
    assert s["memory"]["kernelTCP"] == {"limit": 99, "failcnt": 0}
    assert "swap" not in s["memory"]  # no memsw files: swap accounting off
    assert s["memory"]["raw"] == {"cache": 10, "rss": 20}
    assert s["pids"] == {"current": 1, "limit": 10}
    assert s["blkio"] == {"ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 5},
                                                      {"major": 8, "op": "Write"}]}
    assert list(s) == ["cpu", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]
