#!/bin/bash
# The seeds' flask build (examples/flaskdemo: FROM python:3.11-slim, LABEL, ENV, ARG, USER,
# WORKDIR, ADD, RUN pip install -r requirements.txt, EXPOSE, CMD) with pybuild, buildah and
# BuildKit (DOCKER_BUILDKIT=1 docker build, on a private dockerd), three times each:
#   cold     the builder's cache empty, the base image present (loaded, not timed; each builder
#            unpacks an image's layers when it loads it: `pybuild load`, buildah pull and
#            `docker load` alike, so none of them unpacks the base inside the timed build)
#   cached   the same build again: every step from the cache
#   changed  app.py edited: ADD and the pip RUN run again
# and prints the medians and pybuild's ratio to the faster peer of each.
#
# The base is examples/flaskdemo/make-base.sh's python:3.11-slim (Debian via debootstrap; there is
# no Docker Hub here) with this host's CA bundle baked in, tagged localhost/bench-python:3.11-slim
# and loaded into each builder's own store, so pip reaches the package index through the machine's
# TLS-intercepting proxy in all three alike. RUN steps use the host network in all three (--network
# host): BuildKit's default bridge would need docker0 and host iptables chains that outlive the
# bench; pybuild's own default (its bridge) is timed in an extra column. pip downloads make cold and
# changed noisy; cached is the builders' own cost.
#
# Usage: bench/build.sh [RUNS]   env: BASE_STORE=DIR (a pybuild store that already has
#        python:3.11-slim: saves the debootstrap), BUILDERS="pybuild buildah buildkit", KEEP=1
set -uo pipefail
RUNS=${1:-3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PYBUILD=$HERE/.venv/bin/pybuild
BUILDERS=${BUILDERS:-pybuild pybuild-bridge buildah buildkit}
W=$(mktemp -d /var/tmp/pybuild-buildbench.XXXXXX)
DOCKERD=
BASE=localhost/bench-python:3.11-slim
die() { echo "bench/build.sh: $*" >&2; exit 1; }
cleanup() {
    set +e
    if [ -n "$DOCKERD" ]; then kill "$DOCKERD"; wait "$DOCKERD"; fi
    command -v buildah >/dev/null && buildah --root "$W/buildah" --runroot "$W/buildah-run" rm --all >/dev/null 2>&1
    awk -v d="$W" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$W"
}
trap cleanup EXIT

# --- the base, once -----------------------------------------------------------------------
BASE_STORE=${BASE_STORE:-$W/base-store}
PYBUILD="$PYBUILD --root $BASE_STORE" sh "$HERE/examples/flaskdemo/make-base.sh" python:3.11-slim ||
    die "could not make the base image"
mkdir -p "$W/ca"
cp /etc/ssl/certs/ca-certificates.crt "$W/ca/"
printf 'FROM python:3.11-slim\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n' > "$W/ca/Dockerfile"
"$PYBUILD" --root "$BASE_STORE" build -q --network none -t "$BASE" "$W/ca" >/dev/null || die "base + CA failed"
"$PYBUILD" --root "$BASE_STORE" save "$BASE" -o "$W/base.tar" || die "save of the base failed"

CTX=$W/ctx
cp -r "$HERE/examples/flaskdemo" "$CTX"
sed -i "s|^FROM python:3.11-slim|FROM $BASE|" "$CTX/Dockerfile"
grep -q "^FROM $BASE" "$CTX/Dockerfile" || die "could not point the Dockerfile at the base"

# --- the builders: prepare(round) makes an empty cache with the base; build() builds ----------
pybuild_prepare() { rm -rf "$W/pb"; "$PYBUILD" --root "$W/pb" load -q -i "$W/base.tar" >/dev/null; }
pybuild_build() { "$PYBUILD" --root "$W/pb" build --progress plain --network host -t bench "$CTX"; }
pybuild-bridge_prepare() { pybuild_prepare; }
pybuild-bridge_build() { "$PYBUILD" --root "$W/pb" build --progress plain -t bench "$CTX"; }
BUILDAH=(buildah --root "$W/buildah" --runroot "$W/buildah-run" --storage-driver overlay)
buildah_prepare() {
    "${BUILDAH[@]}" rm --all >/dev/null 2>&1
    "${BUILDAH[@]}" rmi --all -f >/dev/null 2>&1
    "${BUILDAH[@]}" pull -q "docker-archive:$W/base.tar" >/dev/null
}
buildah_build() { "${BUILDAH[@]}" bud --layers --network host -t bench "$CTX"; }
# Debian's docker.io client (20.10) has BuildKit built in; a newer docker CLI elsewhere on PATH
# wants the buildx plugin for it.
DOCKER=(/usr/bin/docker -H "unix://$W/docker.sock")
buildkit_prepare() {
    "${DOCKER[@]}" builder prune -af >/dev/null
    "${DOCKER[@]}" image rm -f bench >/dev/null 2>&1
    "${DOCKER[@]}" load -q -i "$W/base.tar" >/dev/null
}
buildkit_build() { DOCKER_BUILDKIT=1 "${DOCKER[@]}" build --network host --progress plain -t bench "$CTX"; }

builders=()
for b in $BUILDERS; do
    case $b in
    pybuild|pybuild-bridge) builders+=("$b") ;;
    buildah) command -v buildah >/dev/null && builders+=(buildah) || echo "buildah: not installed, left out" ;;
    buildkit)
        command -v dockerd >/dev/null || { echo "buildkit: docker.io is not installed, left out"; continue; }
        dockerd --data-root "$W/docker" --exec-root "$W/docker-exec" --pidfile "$W/docker.pid" \
            -H "unix://$W/docker.sock" --bridge none --iptables=false --ip-masq=false \
            --storage-driver overlay2 > "$W/dockerd.log" 2>&1 &
        DOCKERD=$!
        for _ in $(seq 200); do [ -S "$W/docker.sock" ] && "${DOCKER[@]}" info >/dev/null 2>&1 && break; sleep 0.1; done
        "${DOCKER[@]}" info >/dev/null 2>&1 || { tail "$W/dockerd.log" >&2; die "dockerd did not start"; }
        builders+=(buildkit) ;;
    *) die "unknown builder $b" ;;
    esac
done

timed() {  # timed BUILDER STEP: seconds of one build, or fail loudly
    local t0 t1
    t0=$(date +%s%N)
    "${1}_build" > "$W/last.log" 2>&1 || { tail -n 20 "$W/last.log" >&2; die "$1: $2 build failed"; }
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) / 1e9}'
}

for i in $(seq "$RUNS"); do
    for b in "${builders[@]}"; do  # interleaved by round: load hits all builders alike
        printf 'APP_VERSION = 1\n' > "$CTX/version.py"
        "${b}_prepare" || die "$b: preparing round $i failed"
        cold=$(timed "$b" cold) && cached=$(timed "$b" cached) &&
            printf 'APP_VERSION = 2\n' > "$CTX/version.py" && changed=$(timed "$b" changed) ||
            exit 1
        echo "$b round $i: cold $cold s, cached $cached s, changed $changed s"
        echo "$b $cold $cached $changed" >> "$W/times"
    done
done

"$HERE/.venv/bin/python" -I - "$W/times" "$RUNS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    b, *t = line.split()
    rows.setdefault(b, []).append([float(x) for x in t])
med = {b: [statistics.median(col) for col in zip(*v)] for b, v in rows.items()}
print(f"\nflask build (examples/flaskdemo), median of {sys.argv[2]} rounds, seconds")
print(f"{'builder':16}{'cold':>8}{'cached':>8}{'changed':>9}")
for b, (c, k, a) in med.items():
    print(f"{b:16}{c:8.2f}{k:8.2f}{a:9.2f}")
peers = [b for b in med if b in ("buildah", "buildkit")]
if "pybuild" in med and peers:
    for i, name in enumerate(("cold", "cached", "changed")):
        best = min(peers, key=lambda b: med[b][i])
        print(f"pybuild/{best} ({name}, the faster peer): {med['pybuild'][i] / med[best][i]:.2f}")
PY
