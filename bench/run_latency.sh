#!/bin/bash
# `run` of /bin/true on one busybox bundle with pyrunc, runc and crun, interleaved in one
# loop (so load on the machine hits them alike); prints the median and mean wall ms, the
# CPU ms per container (user+sys of the runtime and all it forked), peak RSS, and ratios.
# Usage: bench/run_latency.sh [N]      (default 50; as a non-root user: rootless, see rootless_latency.sh)
#   EXTRA="label=/path/to/runtime ..."  adds more runc-compatible commands to the loop
#   (another pyrunc entry point, a runc build, ...).
#   SECCOMP=1  puts Docker's default seccomp profile (tests/data/seccomp) into the config,
#   as podman, docker and Kubernetes always send one.
set -euo pipefail
N=${1:-50}
HERE=$(cd "$(dirname "$0")/.." && pwd)
. "$HERE/bench/runtimes.sh"
PYRUNC="$HERE/.venv/bin/pyrunc"
TMP=$(mktemp -d /tmp/pyrunc-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
busybox_rootfs "$TMP" true
# As an ordinary user (bench/rootless_latency.sh runs this script as one): the rootless spec,
# a user namespace mapping the caller's id.
ROOTLESS=(); [ "$(id -u)" = 0 ] || ROOTLESS=(--rootless)
"$PYRUNC" spec --bundle "$TMP" "${ROOTLESS[@]}"
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"\/bin\/true"/' "$TMP/config.json"
grep -q '"/bin/true"' "$TMP/config.json" || { echo "could not set args" >&2; exit 1; }
if [ "${SECCOMP:-0}" = 1 ]; then
    "$HERE/.venv/bin/python" -I - "$TMP/config.json" "$HERE/tests/data/seccomp/docker-default.json" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["linux"]["seccomp"] = json.load(open(sys.argv[2]))
json.dump(cfg, open(sys.argv[1], "w"))
PY
    echo "(config carries Docker's default seccomp profile)"
fi

crun_hugetlb

"$HERE/.venv/bin/python" -I - "$N" "$TMP" "$(bench_runtimes "$PYRUNC")" <<'PY'
import os, statistics, sys, time
n, bundle = int(sys.argv[1]), sys.argv[2]
runtimes = dict(item.partition("=")[::2] for item in sys.argv[3].split())  # bench_runtimes
null = os.open(os.devnull, os.O_RDWR)

def run(binary, root, cid):
    """spawn + wait4: wall time and CPU of exactly this run's process tree."""
    t0 = time.perf_counter()
    pid = os.posix_spawn(binary, [binary, "--root", root, "run", "-b", bundle, cid], os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{binary} run {cid} failed (status {status})")
    return wall * 1000, (ru.ru_utime + ru.ru_stime) * 1000


def peak_rss(binary, root, cid):
    """Peak RSS (MiB) of the largest process of one run, through GNU time: a process spawned by
    this Python would start with this interpreter's RSS already counted in its ru_maxrss."""
    import subprocess
    out = subprocess.run(["/usr/bin/time", "-f", "%M", binary, "--root", root, "run", "-b", bundle, cid],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True)
    return int(out.stderr.strip().splitlines()[-1]) / 1024

walls = {k: [] for k in runtimes}
cpus = {k: [] for k in runtimes}
rss = {k: 0.0 for k in runtimes}
for name, binary in runtimes.items():  # warm the page cache, make the state roots
    run(binary, os.path.join(bundle, "root-" + name), f"warm-{name}")
for i in range(n):
    for name, binary in runtimes.items():
        w, c = run(binary, os.path.join(bundle, "root-" + name), f"b{i}")
        walls[name].append(w)
        cpus[name].append(c)
if os.path.exists("/usr/bin/time"):
    for name, binary in runtimes.items():
        rss[name] = max(peak_rss(binary, os.path.join(bundle, "root-" + name), f"rss{i}") for i in range(3))
print(f"{'runtime':10} {'median':>8} {'mean':>8} {'cpu':>8} {'peak RSS':>9}   (N={n}, interleaved)")
for name in runtimes:
    print(f"{name:10} {statistics.median(walls[name]):6.1f}ms {statistics.mean(walls[name]):6.1f}ms "
          f"{statistics.mean(cpus[name]):6.1f}ms {rss[name]:7.1f}MiB")
for name in runtimes:
    for peer in ("runc", "crun"):
        if name not in ("runc", "crun") and peer in runtimes:
            print(f"{name}/{peer}: median wall {statistics.median(walls[name]) / statistics.median(walls[peer]):.2f}"
                  f"  cpu {statistics.mean(cpus[name]) / statistics.mean(cpus[peer]):.2f}"
                  f"  peak RSS {rss[name] / rss[peer]:.2f}")
PY
