#!/bin/bash
# Dockerfiles of N metadata lines (LABEL, ENV, ARG; FROM scratch, ~100 bytes a line, so
# 10k lines ≈ 1 MB): pybuild's build time for N, 2N, 4N (it must grow linearly: issue 11
# measured 142-179 s for 10k LABEL lines before, when every step wrote the whole config)
# beside buildah's on the same files, cold (--no-cache) and fully cached.
#
# Usage: bench/metadata_steps.sh [N]   (default 2500: N, 2N, 4N = 2.5k, 5k, 10k lines)
set -euo pipefail
N=${1:-2500}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$HERE/.venv/bin/python}
WORK=$(mktemp -d /var/tmp/pybuild-bench-meta.XXXXXX)
cleanup() {
    if command -v buildah >/dev/null; then
        buildah --root "$WORK/buildah/root" --runroot "$WORK/buildah/run" --storage-driver vfs rmi --all -f >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

now() { echo "${EPOCHREALTIME/,/.}"; }
timed() { local t0 t1; t0=$(now); "$@" >/dev/null 2>"$WORK/last.err" || { cut -c1-300 "$WORK/last.err" >&2; return 1; }; \
          t1=$(now); awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}'; }
# buildah 1.28 fails on some of these files (ARG: "exceeded maximum allowed size of 4194304 bytes"
# for its own intermediate config): report the failure, keep going.
peer_timed() { timed "$@" 2>/dev/null || echo failed; }

printf '%-6s %7s %10s %10s %10s %8s\n' kind lines pybuild/s cached/s buildah/s ratio
for kind in LABEL ENV ARG; do
    for n in "$N" $((2 * N)) $((4 * N)); do
        ctx=$WORK/$kind-$n
        mkdir -p "$ctx"
        "$PY" -I -c "import sys; n=int(sys.argv[1]); k=sys.argv[2]
lines=['FROM scratch']+[f'{k} key{i}=value{i}'+'x'*80 for i in range(n)]
open(sys.argv[3],'w').write('\n'.join(lines)+'\n')" "$n" "$kind" "$ctx/Dockerfile"
        cold=$(timed "$PY" -m pybuild --root "$WORK/store" build -q --no-cache "$ctx")
        cached=$(timed "$PY" -m pybuild --root "$WORK/store" build -q "$ctx")
        peer=-
        ratio=-
        if command -v buildah >/dev/null; then
            peer=$(peer_timed buildah --root "$WORK/buildah/root" --runroot "$WORK/buildah/run" --storage-driver vfs \
                   bud -q --layers=false -f "$ctx/Dockerfile" "$ctx")
            [ "$peer" = failed ] || ratio=$(awk -v a="$cold" -v b="$peer" 'BEGIN{printf "%.1f", a/b}')
        fi
        printf '%-6s %7d %10s %10s %10s %8s\n' "$kind" "$n" "$cold" "$cached" "$peer" "$ratio"
    done
done
