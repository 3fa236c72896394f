#!/bin/bash
# The seeds' story, end to end, from a fresh clone and an empty store:
#   python:3.11-slim made once from Debian (debootstrap; examples/flaskdemo/make-base.sh),
#   `pybuild -t flaskdemo examples/flaskdemo` (pip install in a RUN step on pybuild's bridge),
#   the same image run by podman with pyrunc as its runtime (-p 8089:1234),
#   `pybuild run -d -p 8088:1234 flaskdemo` and `curl http://127.0.0.1:8088/hello?name=pyrunc`,
# then everything the demo started is removed (the images stay in the store as a cache).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
TOP=$PWD
BIN=$TOP/.venv/bin
ROOT=${PYBUILD_ROOT:-/var/lib/pybuild}
PB=("$BIN/pybuild" --root "$ROOT")
NAME=flaskdemo-$$
WORK=$(mktemp -d /tmp/flaskdemo.XXXXXX)
# podman on this kind of machine: root lacks CAP_SYS_RESOURCE, so podman's default
# rlimits cannot be raised; these fit under the hard limits it has.
PODMAN=(podman --runtime "$BIN/pyrunc")
PODMAN_RUN_OPTS=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)

cleanup() {
    "${PB[@]}" rm -f "$NAME" >/dev/null 2>&1 || true
    "${PODMAN[@]}" rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
    podman rmi -f localhost/flaskdemo:latest >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

get() {  # get URL: retry until the app answers (it starts in about a second)
    for _ in $(seq 100); do
        if out=$(curl -fsS --max-time 2 "$1" 2>/dev/null); then
            echo "$out"
            return 0
        fi
        sleep 0.2
    done
    echo "no answer from $1" >&2
    return 1
}

PYBUILD="${PB[*]}" sh examples/flaskdemo/make-base.sh python:3.11-slim

echo "== pybuild -t flaskdemo examples/flaskdemo"
"${PB[@]}" -t flaskdemo examples/flaskdemo

echo "== the same image in podman: podman --runtime $BIN/pyrunc run -p 8089:1234 flaskdemo"
"${PB[@]}" export flaskdemo -o "$WORK/flaskdemo.tar" --format docker
podman load -q -i "$WORK/flaskdemo.tar" >/dev/null
"${PODMAN[@]}" run -d --name "$NAME" "${PODMAN_RUN_OPTS[@]}" -p 8089:1234 localhost/flaskdemo:latest >/dev/null
echo "\$ curl http://127.0.0.1:8089/hello?name=podman"
get "http://127.0.0.1:8089/hello?name=podman"
"${PODMAN[@]}" rm -f -t 0 "$NAME" >/dev/null

echo "== pybuild run -d -p 8088:1234 --name $NAME flaskdemo"
"${PB[@]}" run -d -p 8088:1234 --name "$NAME" flaskdemo
"${PB[@]}" ps
echo "\$ curl http://127.0.0.1:8088/hello?name=pyrunc"
get "http://127.0.0.1:8088/hello?name=pyrunc"
echo
echo "== pybuild logs $NAME"
"${PB[@]}" logs "$NAME"
echo "== pybuild exec $NAME python -c …   (a new process inside the running container)"
"${PB[@]}" exec "$NAME" python -c 'import os, socket; from importlib.metadata import version
print("inside", socket.gethostname() + ":", "flask", version("flask"), "in", os.getcwd(), "as uid", os.getuid())'
echo "== pybuild inspect --format '{{ .State.Pid }}' $NAME   (the app's pid, seen from the host)"
PID=$("${PB[@]}" inspect --format '{{ .State.Pid }}' "$NAME")
echo "$PID"
echo "\$ ps -o pid,user,args -p $PID"
ps -o pid,user,args -p "$PID"
echo "== pybuild top $NAME"
"${PB[@]}" top "$NAME"
echo "== pybuild commit $NAME flaskdemo:committed   (a change made with exec, kept in a new image)"
"${PB[@]}" exec "$NAME" sh -c 'echo "written by pybuild exec in $HOSTNAME" > /app/NOTE'
"${PB[@]}" commit "$NAME" flaskdemo:committed
echo "\$ pybuild run --rm flaskdemo:committed cat /app/NOTE"
"${PB[@]}" run --rm --network none flaskdemo:committed cat /app/NOTE
echo "== pybuild stop $NAME && pybuild rm $NAME"
"${PB[@]}" stop -t 2 "$NAME" >/dev/null
"${PB[@]}" rm "$NAME" >/dev/null
