#!/bin/bash
# `exec CONTAINER /bin/true` into a running busybox container with pyrunc, runc and crun,
# interleaved in one loop (so load on the machine hits them alike): what a Kubernetes exec
# probe costs the runtime. Prints the median and mean wall ms, the CPU ms per exec
# (user+sys of the runtime and all it forked) and the ratios to the peers.
# Usage: bench/exec_latency.sh [N]     (default 50)
#   EXTRA="label=/path/to/runtime ..."  adds more runc-compatible commands to the loop.
#   SECCOMP=1  puts Docker's default seccomp profile (tests/data/seccomp) into the config,
#   as podman, docker and Kubernetes always send one (exec loads the container's filter).
set -euo pipefail
N=${1:-50}
HERE=$(cd "$(dirname "$0")/.." && pwd)
. "$HERE/bench/runtimes.sh"
PYRUNC="$HERE/.venv/bin/pyrunc"
TMP=$(mktemp -d /tmp/pyrunc-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
busybox_rootfs "$TMP" true sleep sh
"$PYRUNC" spec --bundle "$TMP"
"$HERE/.venv/bin/python" -I - "$TMP/config.json" "$HERE/tests/data/seccomp/docker-default.json" "${SECCOMP:-0}" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["process"]["terminal"] = False
cfg["process"]["args"] = ["/bin/sleep", "1000000"]
if sys.argv[3] == "1":
    cfg["linux"]["seccomp"] = json.load(open(sys.argv[2]))
    print("(config carries Docker's default seccomp profile)")
json.dump(cfg, open(sys.argv[1], "w"))
PY

crun_hugetlb

"$HERE/.venv/bin/python" -I - "$N" "$TMP" "$(bench_runtimes "$PYRUNC")" <<'PY'
import os, statistics, subprocess, sys, time
n, bundle = int(sys.argv[1]), sys.argv[2]
runtimes = dict(item.partition("=")[::2] for item in sys.argv[3].split())  # bench_runtimes
null = os.open(os.devnull, os.O_RDWR)
roots = {name: os.path.join(bundle, "root-" + name) for name in runtimes}
# one id per runtime and run: two pyrunc builds (EXTRA) must not share a cgroup path
ids = {name: f"bench-exec-{name}-{os.getpid()}" for name in runtimes}
started = []


def spawn(argv):
    """spawn + wait4: wall time and CPU of exactly this command's process tree."""
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1)])
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(argv)} failed (status {status})")
    return wall * 1000, (ru.ru_utime + ru.ru_stime) * 1000


try:
    for name, binary in runtimes.items():
        spawn([binary, "--root", roots[name], "run", "-d", "-b", bundle, ids[name]])
        started.append(name)
        spawn([binary, "--root", roots[name], "exec", ids[name], "/bin/true"])  # warm
    walls = {k: [] for k in runtimes}
    cpus = {k: [] for k in runtimes}
    for i in range(n):
        for name, binary in runtimes.items():
            w, c = spawn([binary, "--root", roots[name], "exec", ids[name], "/bin/true"])
            walls[name].append(w)
            cpus[name].append(c)
finally:
    for name in started:
        subprocess.run([runtimes[name], "--root", roots[name], "delete", "-f", ids[name]],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"{'runtime':10} {'median':>8} {'mean':>8} {'cpu':>8}   (`exec CONTAINER /bin/true`, N={n}, interleaved)")
for name in runtimes:
    print(f"{name:10} {statistics.median(walls[name]):6.1f}ms {statistics.mean(walls[name]):6.1f}ms "
          f"{statistics.mean(cpus[name]):6.1f}ms")
for name in runtimes:
    for peer in ("runc", "crun"):
        if name not in ("runc", "crun") and peer in runtimes:
            print(f"{name}/{peer}: median wall {statistics.median(walls[name]) / statistics.median(walls[peer]):.2f}"
                  f"  cpu {statistics.mean(cpus[name]) / statistics.mean(cpus[peer]):.2f}")
PY
