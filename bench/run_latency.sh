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

measure() {  # name binary -> "wall_ms cpu_ms" per container
    local name=$1 bin=$2 root="$TMP/root-$1"
    "$bin" --root "$root" run -b "$TMP" warmup-$name >/dev/null 2>&1 || true
    local t0 t1 c0 c1
    read -r c0 < <(awk '{print $14+$15+$16+$17}' /proc/$BASHPID/stat)
    t0=$(date +%s%N)
    for i in $(seq "$N"); do
        "$bin" --root "$root" run -b "$TMP" "b$name$i" >/dev/null || { echo "$name run failed" >&2; return 1; }
    done
    t1=$(date +%s%N)
    read -r c1 < <(awk '{print $14+$15+$16+$17}' /proc/$BASHPID/stat)
    local hz; hz=$(getconf CLK_TCK)
    awk -v t="$((t1 - t0))" -v c="$((c1 - c0))" -v n="$N" -v hz="$hz" \
        'BEGIN { printf "%.1f %.1f\n", t / n / 1e6, c * 1000 / hz / n }'
}

declare -A WALL CPU
for rt in pyrunc runc crun; do
    bin=$([ "$rt" = pyrunc ] && echo "$PYRUNC" || command -v "$rt" || true)
    [ -n "$bin" ] || { echo "$rt: not installed"; continue; }
    if out=$(measure "$rt" "$bin"); then
        read -r WALL[$rt] CPU[$rt] <<<"$out"
        printf "%-7s wall %6.1f ms  cpu %6.1f ms  per container (N=%d)\n" "$rt" "${WALL[$rt]}" "${CPU[$rt]}" "$N"
    fi
done
for peer in runc crun; do
    if [ -n "${WALL[$peer]:-}" ] && [ -n "${WALL[pyrunc]:-}" ]; then
        awk -v a="${WALL[pyrunc]}" -v b="${WALL[$peer]}" -v ca="${CPU[pyrunc]}" -v cb="${CPU[$peer]}" -v p="$peer" \
            'BEGIN { printf "pyrunc/%s: wall %.2f  cpu %.2f\n", p, a / b, ca / cb }'
    fi
done
