#!/bin/bash
# Every bench of the repo in one go, each beside its peers, in short mode by default; prints
# each bench's table as it finishes and keeps the whole output in bench/last-all.txt, which
# is what docs/PERFORMANCE.md quotes (with the command line that made it).
#
# Usage: bench/all.sh [--full] [NAME...]
#   NAME: run only these (run_latency run_latency_seccomp clients exec_latency verbs_latency seccomp
#   layer_commit unpack build metadata_steps registry run_network); --full: the benches' own
#   default sizes (tens of minutes) instead of the short ones.
# A bench whose peer or client is not installed says so and goes on; one that fails is
# reported at the end and makes the exit status non-zero.
set -uo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=$HERE/.venv/bin/python
FULL=0
if [ "${1:-}" = --full ]; then FULL=1; shift; fi
short() { [ "$FULL" = 1 ] && echo "$2" || echo "$1"; }  # short() SHORT_ARGS FULL_ARGS

declare -A CMD=(
    [run_latency]="bash $HERE/bench/run_latency.sh $(short 20 50)"
    [run_latency_seccomp]="env SECCOMP=1 bash $HERE/bench/run_latency.sh $(short 20 50)"
    [clients]="bash $HERE/bench/clients.sh $(short 5 20)"
    [exec_latency]="bash $HERE/bench/exec_latency.sh $(short 20 50)"
    [verbs_latency]="bash $HERE/bench/verbs_latency.sh $(short 20 50)"
    [seccomp]="$PY $HERE/bench/seccomp.py"
    [layer_commit]="$PY $HERE/bench/layer_commit.py $(short '--mb 200 --runs 1 --skip-slow' '')"
    [unpack]="$PY $HERE/bench/unpack.py $(short '--mb 200 --runs 1' '')"
    [build]="bash $HERE/bench/build.sh $(short 1 3)"
    [metadata_steps]="bash $HERE/bench/metadata_steps.sh $(short 1000 2500)"
    [registry]="bash $HERE/bench/registry.sh $(short 1 5)"
    [run_network]="bash $HERE/bench/run_network.sh $(short 10 20)"
)
ORDER=(run_latency run_latency_seccomp clients exec_latency verbs_latency seccomp layer_commit unpack build metadata_steps
       registry run_network)
[ $# -gt 0 ] && ORDER=("$@")

OUT=$HERE/bench/last-all.txt
{
    echo "# bench/all.sh $([ "$FULL" = 1 ] && echo --full) $*"
    echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT"
failed=()
for name in "${ORDER[@]}"; do
    cmd=${CMD[$name]:-}
    if [ -z "$cmd" ]; then echo "unknown bench: $name" >&2; failed+=("$name"); continue; fi
    script=$(echo "$cmd" | grep -o "$HERE/bench/[a-z_]*\.[a-z]*" | head -1)
    if [ ! -e "$script" ]; then
        printf '\n## %s\n(not in this tree yet: %s)\n' "$name" "${script#$HERE/}" | tee -a "$OUT"
        continue
    fi
    printf '\n## %s\n$ %s\n' "$name" "${cmd//$HERE\//}" | tee -a "$OUT"
    start=$SECONDS
    if $cmd > "$OUT.part" 2>&1; then
        tail -n 25 "$OUT.part" | tee -a "$OUT"
        echo "($((SECONDS - start)) s)" | tee -a "$OUT"
    else
        tail -n 15 "$OUT.part" | tee -a "$OUT"
        echo "FAILED after $((SECONDS - start)) s" | tee -a "$OUT"
        failed+=("$name")
    fi
done
rm -f "$OUT.part"
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]}" | tee -a "$OUT"
    exit 1
fi
