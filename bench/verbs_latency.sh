#!/bin/bash
# The verbs a client calls per container, one at a time: `create`, `start`, `state`, `kill`,
# `delete` (and `run` for comparison's sake is run_latency.sh), with pyrunc, runc and crun
# interleaved in one loop (each iteration walks one container of every runtime through the
# life cycle, so load on the machine hits them alike). Prints the median wall ms of each verb
# per runtime and the ratios, then the median CPU ms (user+sys of the call and all it forked,
# which the load of a shared machine inflates less than wall time): where containerd/podman spend
# their time with each runtime.
# Usage: bench/verbs_latency.sh [N]      (default 30)
#   EXTRA="label=/path/to/runtime ..."  adds more runc-compatible commands to the loop
#   (another pyrunc build, to compare before and after a change in one run).
set -euo pipefail
N=${1:-30}
HERE=$(cd "$(dirname "$0")/.." && pwd)
. "$HERE/bench/runtimes.sh"
PYRUNC="$HERE/.venv/bin/pyrunc"
TMP=$(mktemp -d /tmp/pyrunc-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
busybox_rootfs "$TMP" sleep
"$PYRUNC" spec --bundle "$TMP"
"$HERE/.venv/bin/python" -I - "$TMP/config.json" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["process"]["terminal"] = False
cfg["process"]["args"] = ["/bin/sleep", "1000000"]
json.dump(cfg, open(sys.argv[1], "w"))
PY
crun_hugetlb

"$HERE/.venv/bin/python" -I - "$N" "$TMP" "$(bench_runtimes "$PYRUNC")" <<'PY'
import os, statistics, subprocess, sys, time
n, bundle = int(sys.argv[1]), sys.argv[2]
runtimes = dict(item.partition("=")[::2] for item in sys.argv[3].split())  # bench_runtimes
null = os.open(os.devnull, os.O_RDWR)
VERBS = ("create", "start", "state", "kill", "delete")


def call(binary, root, *args):
    """spawn + wait4: (wall ms, CPU ms) of one runtime call; a failure stops the bench."""
    argv = [binary, "--root", root, *args]
    t0 = time.perf_counter()
    pid = os.posix_spawn(binary, argv, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1)])
    _, status, ru = os.wait4(pid, 0)
    wall = (time.perf_counter() - t0) * 1000
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(argv)} failed (status {status})")
    return wall, (ru.ru_utime + ru.ru_stime) * 1000


def cycle(binary, root, cid):
    """One container through its life: (wall ms, CPU ms) of each verb."""
    out = {"create": call(binary, root, "create", "-b", bundle, cid),
           "start": call(binary, root, "start", cid),
           "state": call(binary, root, "state", cid)}
    out["kill"] = call(binary, root, "kill", cid, "KILL")
    for _ in range(400):  # the kill is asynchronous: wait (untimed) until init is gone
        state = subprocess.run([binary, "--root", root, "state", cid], capture_output=True, text=True)
        if '"stopped"' in state.stdout:
            break
        time.sleep(0.005)
    else:
        sys.exit(f"{binary}: {cid} did not stop after kill")
    out["delete"] = call(binary, root, "delete", cid)
    return out


times = {k: {v: [] for v in VERBS} for k in runtimes}
cpus = {k: {v: [] for v in VERBS} for k in runtimes}
for name, binary in runtimes.items():  # warm the page cache, make the state roots
    cycle(binary, os.path.join(bundle, "root-" + name), f"warm-{name}")
for i in range(n):
    for name, binary in runtimes.items():
        for verb, (wall, cpu) in cycle(binary, os.path.join(bundle, "root-" + name), f"v{i}-{name}").items():
            times[name][verb].append(wall)
            cpus[name][verb].append(cpu)
peers = [p for p in ("runc", "crun") if p in runtimes and "pyrunc" in runtimes]
for title, table in ((f"median wall ms per call (N={n}, runtimes interleaved)", times),
                     ("median CPU ms per call (user+sys, with all it forked)", cpus)):
    print(title)
    print(f"{'verb':8}" + "".join(f"{k:>9}" for k in runtimes) + "".join(f"{'pyrunc/' + p:>14}" for p in peers))
    for verb in VERBS:
        med = {k: statistics.median(table[k][verb]) for k in runtimes}
        print(f"{verb:8}" + "".join(f"{med[k]:9.1f}" for k in runtimes)
              + "".join(f"{med['pyrunc'] / med[p]:14.2f}" for p in peers))
PY
