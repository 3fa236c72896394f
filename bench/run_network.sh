#!/bin/bash
# `pybuild run --rm IMAGE true` against `podman run --rm IMAGE true`, on the same busybox image,
# with --network none and with each tool's default network (pybuild: its bridge, NAT and
# IPAM; podman: netavark's bridge), podman with runc as its runtime. N sequential runs each,
# interleaved by round so that machine noise hits all four alike; prints the median and
# mean wall ms per container and the ratios pybuild/podman. Goal: pybuild <= podman on both.
# Usage: bench/run_network.sh [N]
set -euo pipefail
N=${1:-20}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PYBUILD="$HERE/.venv/bin/pybuild"
TMP=$(mktemp -d /tmp/pybuild-netbench.XXXXXX)
IMAGE=localhost/pybuild-netbench:latest
BRIDGE=pbbench$$
cleanup() {
    podman rmi -f "$IMAGE" localhost/netbench:latest >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# the image: Debian's busybox-static, made once with pybuild, copied to podman's store
mkdir -p "$TMP/rootfs/bin" "$TMP/rootfs/etc" "$TMP/rootfs/tmp"
cp /bin/busybox "$TMP/rootfs/bin/busybox"
for a in sh true; do ln -s busybox "$TMP/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$TMP/rootfs/etc/passwd"
echo 'root:x:0:' > "$TMP/rootfs/etc/group"
"$PYBUILD" --root "$TMP/store" import "$TMP/rootfs" -t netbench >/dev/null
"$PYBUILD" --root "$TMP/store" export netbench -o "$TMP/netbench.tar" --format oci
podman load -q -i "$TMP/netbench.tar" >/dev/null
podman tag "$(podman images -q --filter reference='*netbench*' | head -1)" "$IMAGE" 2>/dev/null || true
podman image exists "$IMAGE" || skopeo copy -q "oci-archive:$TMP/netbench.tar" "containers-storage:$IMAGE"

"$HERE/.venv/bin/python" -I - "$N" "$TMP/store" "$PYBUILD" "$IMAGE" "$BRIDGE" <<'PY'
import os, statistics, subprocess, sys, time
n, store, pybuild, image, bridge = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
ulimits = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]  # root lacks CAP_SYS_RESOURCE
cases = {
    "pybuild none":   [pybuild, "--root", store, "run", "--rm", "--network", "none", "netbench", "true"],
    "podman none":    ["podman", "--runtime", "runc", "run", "--rm", *ulimits, "--network", "none", image, "true"],
    "pybuild bridge": [pybuild, "--root", store, "run", "--rm", "netbench", "true"],
    "podman bridge":  ["podman", "--runtime", "runc", "run", "--rm", *ulimits, image, "true"],
}
env = dict(os.environ, PYBUILD_BRIDGE=bridge)
times = {k: [] for k in cases}
for name, cmd in cases.items():  # warm caches; fail loudly
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"{name}: {' '.join(cmd)} failed: {res.stderr.strip()}")
for _ in range(n):
    for name, cmd in cases.items():
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
        times[name].append((time.perf_counter() - t0) * 1000)
for name, ts in times.items():
    print(f"{name:15} median {statistics.median(ts):6.0f} ms  mean {statistics.mean(ts):6.0f} ms  (N={n})")
for net in ("none", "bridge"):
    a, b = statistics.median(times[f"pybuild {net}"]), statistics.median(times[f"podman {net}"])
    print(f"pybuild/podman --network {net} (podman default for bridge): {a / b:.2f}")
PY
