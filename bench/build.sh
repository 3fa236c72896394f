#!/bin/bash
# Build a flask-style Dockerfile with pybuild and (when installed) buildah:
# cold (empty store, base "pulled" from an OCI archive), fully cached, and after
# an app-file change (ADD and the pip RUN rerun), and print times and ratios.
#
# The base is not Docker Hub's python:3.11-slim (there is no registry here) but
# demo/make-python-base.sh's image: Debian bookworm's python3.11 + stdlib + pip
# + busybox, ~28 MB compressed. Both builders read it from the same OCI archive
# (`FROM oci-archive:...`), so "cold" includes importing it, as a pull would.
# `pip install flask` goes to the package index over the network for both.
#
# Usage: bench/build.sh [RUNS]   env: RUNTIME=pyrunc|runc|crun (pybuild's), KEEP=1
set -euo pipefail
RUNS=${1:-3}
RUNTIME=${RUNTIME:-pyrunc}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$HERE/.venv/bin/python}
PYBUILD=("$PY" -m pybuild)
WORK=$(mktemp -d /var/tmp/pybuild-bench.XXXXXX)
cleanup() {
    if command -v buildah >/dev/null; then
        buildah --root "$WORK/buildah/root" --runroot "$WORK/buildah/run" --storage-driver overlay rm --all >/dev/null 2>&1 || true
    fi
    # containers/storage leaves its overlay dir mounted (private): unmount what is under WORK
    grep -o " $WORK[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done || true
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK" 2>/dev/null || { sleep 1; rm -rf "$WORK"; }
}
trap cleanup EXIT

echo "== making the python base image (demo/make-python-base.sh) ..."
PYBUILD="${PYBUILD[*]} --root $WORK/base-store" sh "$HERE/demo/make-python-base.sh" python-base >/dev/null
"${PYBUILD[@]}" --root "$WORK/base-store" export python-base -o "$WORK/python-base.tar" --format oci

CTX=$WORK/ctx
mkdir -p "$CTX"
printf 'flask==3.0.3\n' > "$CTX/requirements.txt"
cat > "$CTX/app.py" <<'APP'
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "hello from the bench\n"
APP
cat > "$CTX/Dockerfile" <<DF
FROM oci-archive:$WORK/python-base.tar
ENV PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
ADD . /app
RUN pip install --no-cache-dir -r requirements.txt
EXPOSE 5000
CMD ["python3", "-m", "flask", "run", "--host=0.0.0.0"]
DF

now() { echo "${EPOCHREALTIME/,/.}"; }
timed() { local t0 t1; t0=$(now); "$@" >/dev/null 2>"$WORK/last.err" || { cat "$WORK/last.err" >&2; exit 1; }; t1=$(now); \
          awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}'; }

pybuild_round() {   # prints "cold cached changed"
    local store=$WORK/pb-store-$1
    rm -rf "$store"
    printf 'hello = 1\n' > "$CTX/version.py"
    local c k a
    c=$(timed "${PYBUILD[@]}" --root "$store" --runtime "$RUNTIME" build --progress plain -t bench "$CTX")
    k=$(timed "${PYBUILD[@]}" --root "$store" --runtime "$RUNTIME" build --progress plain -t bench "$CTX")
    printf 'hello = 2\n' > "$CTX/version.py"
    a=$(timed "${PYBUILD[@]}" --root "$store" --runtime "$RUNTIME" build --progress plain -t bench "$CTX")
    rm -rf "$store"
    echo "$c $k $a"
}

buildah_round() {
    local b=(buildah --root "$WORK/buildah/root" --runroot "$WORK/buildah/run" --storage-driver overlay)
    # what pybuild does by itself for RUN steps: host network, the host CA bundle
    # (Debian's pip reads /etc/ssl/certs/ca-certificates.crt; the egress proxy needs it)
    local opts=(--layers --network host -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
    "${b[@]}" rm --all >/dev/null 2>&1 || true
    grep -o " $WORK/buildah[^ ]*" /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done || true
    rm -rf "$WORK/buildah"
    printf 'hello = 1\n' > "$CTX/version.py"
    local c k a
    c=$(timed "${b[@]}" bud "${opts[@]}" -t bench "$CTX")
    k=$(timed "${b[@]}" bud "${opts[@]}" -t bench "$CTX")
    printf 'hello = 2\n' > "$CTX/version.py"
    a=$(timed "${b[@]}" bud "${opts[@]}" -t bench "$CTX")
    echo "$c $k $a"
}

median() { sort -n | awk '{v[NR]=$1} END{ if (NR%2) print v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2]+v[NR/2+1])/2 }'; }

declare -A R
for tool in pybuild buildah; do
    if [ "$tool" = buildah ] && ! command -v buildah >/dev/null; then
        echo "(buildah not installed: pybuild only)"; continue
    fi
    : > "$WORK/$tool.times"
    for i in $(seq "$RUNS"); do
        line=$(${tool}_round "$i")
        [ "$(echo "$line" | wc -w)" = 3 ] || { echo "$tool run $i failed" >&2; exit 1; }
        echo "$tool run $i: cold/cached/changed = $line s"
        echo "$line" >> "$WORK/$tool.times"
    done
    for col in 1 2 3; do
        R[$tool,$col]=$(awk -v c=$col '{print $c}' "$WORK/$tool.times" | median)
    done
done

echo
printf '%-28s %10s %10s %8s\n' "median of $RUNS (seconds)" pybuild buildah "ratio"
for col in 1 2 3; do
    name=$(echo "cold (incl. base import)|fully cached|after app change" | cut -d'|' -f$col)
    p=${R[pybuild,$col]}
    b=${R[buildah,$col]:-}
    if [ -n "$b" ]; then
        printf '%-28s %10s %10s %7.2fx\n' "$name" "$p" "$b" "$(awk -v p="$p" -v b="$b" 'BEGIN{print p/b}')"
    else
        printf '%-28s %10s %10s %8s\n' "$name" "$p" "-" "-"
    fi
done
echo "(pybuild runtime: $RUNTIME; buildah: overlay storage driver, runc, --network host, host CA bundle mounted;"
echo " ratio = pybuild/buildah, < 1 means pybuild is faster; pip downloads make cold/changed noisy)"
