#!/bin/bash
# N sequential `run`s of /bin/true with pyrunc, runc and crun on one busybox
# bundle; prints per-container wall and CPU ms and the ratios.
# Usage: bench/run_latency.sh [N]
set -euo pipefail
N=${1:-50}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PYRUNC="$HERE/.venv/bin/pyrunc"
TMP=$(mktemp -d /tmp/pyrunc-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/rootfs/bin" "$TMP/rootfs/proc" "$TMP/rootfs/dev" "$TMP/rootfs/sys"
cp /bin/busybox "$TMP/rootfs/bin/busybox"
ln -s busybox "$TMP/rootfs/bin/true"
"$PYRUNC" spec --bundle "$TMP"
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"\/bin\/true"/' "$TMP/config.json"
grep -q '"/bin/true"' "$TMP/config.json" || { echo "could not set args" >&2; exit 1; }

# crun refuses this machine's hybrid cgroups unless hugetlb is mounted as v1.
if command -v crun >/dev/null && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
    mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb || true
fi

# Wall and CPU (user+sys of the runtime and everything it forked) per container.
"$HERE/.venv/bin/python" -I - "$N" "$TMP" "$PYRUNC" <<'PY'
import os, resource, shutil, subprocess, sys, time
n, bundle, pyrunc = int(sys.argv[1]), sys.argv[2], sys.argv[3]
results = {}
for name in ("pyrunc", "runc", "crun"):
    binary = pyrunc if name == "pyrunc" else shutil.which(name)
    if binary is None:
        print(f"{name}: not installed")
        continue
    root = os.path.join(bundle, "root-" + name)
    run = lambda cid: subprocess.run([binary, "--root", root, "run", "-b", bundle, cid],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    warm = run(f"warm-{name}")
    if warm.returncode != 0:
        print(f"{name}: run failed: {warm.stderr.decode().strip()}")
        continue
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    for i in range(n):
        if run(f"b{name}{i}").returncode != 0:
            sys.exit(f"{name} run failed")
    t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = (t1 - t0) / n * 1000
    cpu = ((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)) / n * 1000
    results[name] = (wall, cpu)
    print(f"{name:7} wall {wall:6.1f} ms  cpu {cpu:6.1f} ms  per container (N={n})")
for peer in ("runc", "crun"):
    if "pyrunc" in results and peer in results:
        (w, c), (pw, pc) = results["pyrunc"], results[peer]
        print(f"pyrunc/{peer}: wall {w / pw:.2f}  cpu {c / pc:.2f}")
PY
