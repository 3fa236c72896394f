#!/bin/bash
# The runtime under the clients that call it: `podman run --rm`, `ctr run --rm` and
# `docker run --rm`, each with pyrunc, runc and crun as the OCI runtime, on one busybox
# image, interleaved in one loop (so load on the machine hits them alike). Prints the
# median wall ms per `CLIENT run --rm IMAGE true` and pyrunc's ratio to each peer.
#
# Each client gets private state under a temp dir: podman --root/--runroot; a containerd
# of its own (own root, state, socket) that ctr talks to; a dockerd of its own (data-root,
# exec-root, socket, no bridge, no iptables) on that containerd. Nothing of the machine's
# own podman/containerd/docker state is touched; everything is stopped and removed at exit.
#
# Usage: bench/clients.sh [N]          (default 20)
#   CLIENTS="podman ctr docker"  RUNTIMES="pyrunc runc crun"  to narrow it.
set -euo pipefail
N=${1:-20}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PYRUNC=$HERE/.venv/bin/pyrunc
CLIENTS=${CLIENTS:-podman ctr docker}
RUNTIMES=${RUNTIMES:-pyrunc runc crun}
W=$(mktemp -d /var/tmp/pyrunc-clients.XXXXXX)
PIDS=()
ULIMITS=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)  # root lacks CAP_SYS_RESOURCE here

cleanup() {
    set +e
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    command -v podman >/dev/null && podman --root "$W/podman" --runroot "$W/podman-run" rm -af >/dev/null 2>&1
    awk -v d="$W" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$W"
}
trap cleanup EXIT

declare -A BIN=([pyrunc]=$PYRUNC [runc]=$(command -v runc || true) [crun]=$(command -v crun || true))
runtimes=()
for r in $RUNTIMES; do
    if [ -n "${BIN[$r]}" ]; then runtimes+=("$r"); else echo "$r: not installed, left out"; fi
done
# crun refuses this machine's hybrid cgroups unless hugetlb is mounted as v1.
if [ -n "${BIN[crun]}" ] && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
    mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb || true
fi

# --- the image: busybox-static as a docker-archive, loaded into every client ----------
mkdir -p "$W/img/bin"
cp /bin/busybox "$W/img/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$W/img/bin/$a"; done
"$HERE/.venv/bin/pybuild" --root "$W/store" import "$W/img" -t bench-busybox >/dev/null
"$HERE/.venv/bin/pybuild" --root "$W/store" export bench-busybox -o "$W/image.tar" --format docker >/dev/null
IMAGE=docker.io/library/bench-busybox:latest

wait_sock() {  # wait_sock PATH PID WHAT
    for _ in $(seq 200); do [ -S "$1" ] && return 0; kill -0 "$2" 2>/dev/null || break; sleep 0.05; done
    echo "$3 did not start; its log:" >&2; tail -20 "$W/$3.log" >&2; exit 1
}

clients=()
for c in $CLIENTS; do
    case $c in
    podman)
        command -v podman >/dev/null || { echo "podman: not installed, left out"; continue; }
        P=(podman --root "$W/podman" --runroot "$W/podman-run" --cgroup-manager cgroupfs --events-backend none)
        "${P[@]}" load -q -i "$W/image.tar" >/dev/null
        "${P[@]}" tag localhost/bench-busybox:latest "$IMAGE" 2>/dev/null || true
        clients+=(podman) ;;
    ctr|docker)
        if [ ! -S "$W/containerd.sock" ]; then
            command -v containerd >/dev/null || { echo "$c: containerd is not installed, left out"; continue; }
            cat > "$W/containerd.toml" <<EOF
version = 2
root = "$W/containerd/root"
state = "$W/containerd/state"
[grpc]
  address = "$W/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  disable_cgroup = true
EOF
            containerd --config "$W/containerd.toml" > "$W/containerd.log" 2>&1 &
            PIDS+=($!)
            wait_sock "$W/containerd.sock" "$!" containerd
        fi
        if [ "$c" = ctr ]; then
            ctr -a "$W/containerd.sock" -n bench images import --no-unpack=false "$W/image.tar" >/dev/null
            clients+=(ctr)
        else
            command -v dockerd >/dev/null || { echo "docker: docker.io is not installed, left out"; continue; }
            adds=()
            for r in "${runtimes[@]}"; do adds+=(--add-runtime "bench-$r=${BIN[$r]}"); done
            dockerd --data-root "$W/docker" --exec-root "$W/docker-exec" --pidfile "$W/docker.pid" \
                -H "unix://$W/docker.sock" --containerd "$W/containerd.sock" --bridge none --iptables=false \
                --ip-masq=false --storage-driver overlay2 "${adds[@]}" > "$W/docker.log" 2>&1 &
            PIDS+=($!)
            wait_sock "$W/docker.sock" "$!" docker
            /usr/bin/docker -H "unix://$W/docker.sock" load -q -i "$W/image.tar" >/dev/null
            clients+=(docker)
        fi ;;
    *) echo "unknown client $c" >&2; exit 2 ;;
    esac
done

one() {  # one CLIENT RUNTIME I: a `run --rm IMAGE true` through CLIENT with RUNTIME
    case $1 in
    podman) podman --root "$W/podman" --runroot "$W/podman-run" --cgroup-manager cgroupfs --events-backend none \
                --runtime "${BIN[$2]}" run --rm --network none "${ULIMITS[@]}" "$IMAGE" true ;;
    ctr) ctr -a "$W/containerd.sock" -n bench run --rm --runc-binary "${BIN[$2]}" "$IMAGE" "b-$2-$3" true ;;
    docker) /usr/bin/docker -H "unix://$W/docker.sock" run --rm --network none --runtime "bench-$2" "$IMAGE" true ;;
    esac
}

for c in "${clients[@]}"; do for r in "${runtimes[@]}"; do  # warm up, and fail early and loudly
    one "$c" "$r" w >/dev/null 2>"$W/err" || { echo "$c with $r failed:" >&2; cat "$W/err" >&2; exit 1; }
done; done

for i in $(seq "$N"); do
    for c in "${clients[@]}"; do for r in "${runtimes[@]}"; do
        s=$(date +%s%N)
        one "$c" "$r" "$i" >/dev/null 2>"$W/err" || { echo "$c with $r failed (run $i):" >&2; cat "$W/err" >&2; exit 1; }
        echo "$c $r $(( ($(date +%s%N) - s) / 1000 ))" >> "$W/times"
    done; done
done

"$HERE/.venv/bin/python" -I - "$W/times" "$N" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    c, r, us = line.split()
    rows.setdefault(c, {}).setdefault(r, []).append(int(us) / 1000)
print(f"`CLIENT run --rm IMAGE true`, median wall ms (N={sys.argv[2]}, interleaved)")
runtimes = sorted({r for v in rows.values() for r in v}, key=["pyrunc", "runc", "crun"].index)
print(f"{'client':8}" + "".join(f"{r:>10}" for r in runtimes) + "".join(f"{'pyrunc/' + p:>14}" for p in runtimes if p != "pyrunc"))
for c, by in rows.items():
    med = {r: statistics.median(v) for r, v in by.items()}
    ratios = "".join(f"{med['pyrunc'] / med[p]:>14.2f}" for p in runtimes if p != "pyrunc" and "pyrunc" in med)
    print(f"{c:8}" + "".join(f"{med[r]:>10.1f}" for r in runtimes) + ratios)
PY
