#!/bin/sh
# The README demo: build the Flask image with pybuild, turn it into a bundle,
# run it with pyrunc and ask it for / over HTTP on its port.
set -eu
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN="$HERE/.venv/bin"
ROOT=${PYBUILD_ROOT:-/var/lib/pybuild}
WORK=$(mktemp -d /tmp/flaskdemo.XXXXXX)
ID=flaskdemo-$$
cleanup() {
    "$BIN/pyrunc" delete -f "$ID" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

if ! "$BIN/pybuild" --root "$ROOT" inspect python-base >/dev/null 2>&1; then
    echo "== making the python-base image (Debian's python3.11 + busybox, no registry needed)"
    PYBUILD="$BIN/pybuild --root $ROOT" sh "$HERE/demo/make-python-base.sh" python-base
fi

echo "== pybuild -t flaskdemo demo/flask"
(cd "$HERE/demo/flask" && "$BIN/pybuild" --root "$ROOT" -t flaskdemo .)

echo "== pybuild bundle flaskdemo -> $WORK/flaskdemo"
"$BIN/pybuild" --root "$ROOT" bundle flaskdemo "$WORK/flaskdemo"
# Share the host's network namespace (as `docker run --network host`), so the
# app's port is reachable from here.
"$BIN/python" -I - "$WORK/flaskdemo/config.json" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["process"]["terminal"] = False
config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "network"]
json.dump(config, open(path, "w"), indent=2)
PY

echo "== pyrunc run -d flaskdemo (from the bundle's parent folder)"
(cd "$WORK" && "$BIN/pyrunc" run -d --bundle flaskdemo "$ID" > "$WORK/app.log" 2>&1)
for i in $(seq 50); do
    if out=$("$BIN/python" -I -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:5000/', timeout=1).read().decode())" 2>/dev/null); then
        echo "== GET http://127.0.0.1:5000/ -> $out"
        "$BIN/pyrunc" state "$ID" | grep -E '"(id|pid|status)"'
        exit 0
    fi
    sleep 0.2
done
echo "flaskdemo did not answer; its output:" >&2
cat "$WORK/app.log" >&2
exit 1
