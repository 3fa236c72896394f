#!/bin/bash
# Push and pull of a ~100 MB image: pybuild against `skopeo copy` (blobs only) and, for a pull that
# also unpacks the layers as podman's does, against `podman pull`; same registry, same machine.
#
# The registry is Debian's docker-registry, run here on 127.0.0.1 with a config in a temp dir and a
# fresh, empty storage for every measurement (so neither client can skip or mount a blob the registry
# already has). The image is made by `pybuild import` of a tree of ~100 MB (80 MB random, 40 MB of
# text-like data) split into 3 layers, gzip as pybuild writes it; both clients push it from pybuild's
# store (an OCI layout: skopeo reads it as oci:STORE:bench) and pull it into an empty store (pybuild
# pull --no-unpack) or an empty OCI layout (skopeo copy docker://... oci:DIR:bench). Neither client
# decompresses anything on the way, so the work is the same: HTTP, sha256, writes, fsync.
# Then `pybuild pull` (the default: every layer also unpacked into the layer store, so a build FROM
# it starts at once) against `podman pull` into an empty private store (overlay driver), which
# unpacks too (containers/storage applies each layer as it comes in).
#
# Usage: bench/registry.sh [RUNS]     env: CHUNK=BYTES (pybuild push --chunk-size; default its own)
set -euo pipefail
RUNS=${1:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PYBUILD=${PYBUILD:-$HERE/.venv/bin/pybuild}
WORK=$(mktemp -d /var/tmp/pybuild-regbench.XXXXXX)
REG_PID=
PODMAN=(podman --root "$WORK/podman" --runroot "$WORK/podman-run" --storage-driver overlay)
cleanup() {
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true
    command -v podman >/dev/null && "${PODMAN[@]}" rmi -a -f >/dev/null 2>&1
    awk -v d="$WORK" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
command -v docker-registry >/dev/null || { echo "needs docker-registry (apt-get install docker-registry)" >&2; exit 1; }
command -v skopeo >/dev/null || { echo "needs skopeo" >&2; exit 1; }

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
start_registry() {   # a fresh, empty registry
    [ -n "$REG_PID" ] && { kill "$REG_PID"; wait "$REG_PID" 2>/dev/null || true; }
    rm -rf "$WORK/registry"
    mkdir -p "$WORK/registry/data"
    cat > "$WORK/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry/data
http:
  addr: $REG
EOF
    docker-registry serve "$WORK/registry/config.yml" >>"$WORK/registry.log" 2>&1 &
    REG_PID=$!
    for _ in $(seq 100); do curl -fso /dev/null "http://$REG/v2/" && return; sleep 0.05; done
    echo "registry did not start: $(tail -3 "$WORK/registry.log")" >&2; exit 1
}

echo "== making a ~100 MB image (3 layers) ..."
STORE=$WORK/store
mkdir -p "$WORK/tree/bin"
cp /bin/busybox "$WORK/tree/bin/"
"$PYBUILD" --root "$STORE" import "$WORK/tree" -t base >/dev/null
/usr/bin/python3 - "$WORK" <<'PY'
import os, random, sys
work = sys.argv[1]
rng = random.Random(42)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
for n, (rand_mb, text_mb) in enumerate(((40, 20), (40, 20))):
    d = os.path.join(work, f"layer{n}", "data")
    os.makedirs(d)
    with open(os.path.join(d, "random.bin"), "wb") as f:
        f.write(os.urandom(rand_mb << 20))
    with open(os.path.join(d, "text.txt"), "wb") as f:
        out, size = [], 0
        while size < text_mb << 20:
            line = b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
            out.append(line); size += len(line)
        f.write(b"".join(out))
PY
/bin/bash -c "cd '$HERE' && '$HERE/.venv/bin/python' - '$STORE' '$WORK'" <<'PY'
import sys
from pybuild.layer import commit_layer
from pybuild.mutate import Mutator
from pybuild.store import Store
store = Store(sys.argv[1])
mutator = Mutator(store, store.load_image("base"))
for n in range(2):
    desc, digests = commit_layer(store, f"{sys.argv[2]}/layer{n}")
    mutator.add_layer(desc, digests.diff_id, f"COPY layer{n}")
store.tag("bench", mutator.commit())
image = store.load_image("bench")
print(f"   layers: {', '.join(f'{l.size / 1e6:.1f} MB' for l in image.manifest.layers)}"
      f" = {sum(l.size for l in image.manifest.layers) / 1e6:.1f} MB compressed")
PY

now() { echo "${EPOCHREALTIME/,/.}"; }
timed() { local t0 t1; t0=$(now); "$@" >/dev/null 2>"$WORK/last.err" || { cat "$WORK/last.err" >&2; exit 1; }; t1=$(now); \
          awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END{print (NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2}'; }

CHUNK_ARGS=()
[ -n "${CHUNK:-}" ] && CHUNK_ARGS=(--chunk-size "$CHUNK")
HAVE_PODMAN=0
command -v podman >/dev/null && HAVE_PODMAN=1 || echo "   podman: not installed, the unpacking pull is left out"
pb_push=() sk_push=() pb_pull=() sk_pull=() pb_upull=() pd_pull=()
for run in $(seq "$RUNS"); do
    # push: each client into a fresh registry
    start_registry
    rm -rf "$STORE/sources" "$STORE/uploads"
    pb_push+=("$(timed "$PYBUILD" --root "$STORE" push -q "${CHUNK_ARGS[@]}" bench "$REG/bench/app:1")")
    start_registry
    sk_push+=("$(timed skopeo copy -q --dest-tls-verify=false "oci:$STORE:bench" "docker://$REG/bench/app:1")")
    # pull: the same registry content for both, into empty destinations
    rm -rf "$WORK/pulled-pb" "$WORK/pulled-sk" "$WORK/pulled-pbu"
    pb_pull+=("$(timed "$PYBUILD" --root "$WORK/pulled-pb" pull -q --no-unpack "$REG/bench/app:1")")
    sk_pull+=("$(timed skopeo copy -q --src-tls-verify=false "docker://$REG/bench/app:1" "oci:$WORK/pulled-sk:bench")")
    line="   run $run: push pybuild ${pb_push[-1]} s, skopeo ${sk_push[-1]} s; pull --no-unpack pybuild ${pb_pull[-1]} s, skopeo ${sk_pull[-1]} s"
    if [ "$HAVE_PODMAN" = 1 ]; then  # the pulls that unpack, each into an empty store
        "${PODMAN[@]}" rmi -a -f >/dev/null 2>&1 || true
        pb_upull+=("$(timed "$PYBUILD" --root "$WORK/pulled-pbu" pull -q "$REG/bench/app:1")")
        pd_pull+=("$(timed "${PODMAN[@]}" pull -q --tls-verify=false "$REG/bench/app:1")")
        line+="; pull (unpacked) pybuild ${pb_upull[-1]} s, podman ${pd_pull[-1]} s"
    fi
    echo "$line"
done
PP=$(echo "${pb_push[*]}" | median); SP=$(echo "${sk_push[*]}" | median)
PL=$(echo "${pb_pull[*]}" | median); SL=$(echo "${sk_pull[*]}" | median)
echo "== median of $RUNS runs (s)"
printf "   push   pybuild %.3f   skopeo %.3f   ratio pybuild/skopeo %.2f\n" "$PP" "$SP" "$(awk -v a="$PP" -v b="$SP" 'BEGIN{print a/b}')"
printf "   pull   pybuild %.3f   skopeo %.3f   ratio pybuild/skopeo %.2f   (pybuild pull --no-unpack)\n" "$PL" "$SL" "$(awk -v a="$PL" -v b="$SL" 'BEGIN{print a/b}')"
if [ "$HAVE_PODMAN" = 1 ]; then
    UL=$(echo "${pb_upull[*]}" | median); DL=$(echo "${pd_pull[*]}" | median)
    printf "   pull+unpack   pybuild %.3f   podman %.3f   ratio pybuild/podman %.2f\n" "$UL" "$DL" "$(awk -v a="$UL" -v b="$DL" 'BEGIN{print a/b}')"
fi
