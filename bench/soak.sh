#!/bin/bash
# Soak pyrunc and pybuild (issue 18): 1000 create/start/wait/delete cycles, 1000 execs into one
# container, 200 `pybuild build --no-cache` of a small Dockerfile on the bridge network. Prints, per
# loop, the counts of what could leak before and after (mounts, cgroups, the caller's fds, state dirs,
# veths, IPAM leases, temp dirs, processes in the exec'd container), the latency p50/p99 per cycle and
# the runtime's peak RSS over the first and last tenth. Exit status 1 if a count differs.
# With runc installed each cycle also runs with runc, interleaved (PEER=none: pyrunc only).
# Usage: [PEER=runc|none] bench/soak.sh [CYCLES [EXECS [BUILDS]]]      (default 1000 1000 200)
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
exec "$HERE/.venv/bin/python" -I "$HERE/bench/soak.py" --cycles "${1:-1000}" --execs "${2:-1000}" --builds "${3:-200}" ${PEER:+--peer "$PEER"}
