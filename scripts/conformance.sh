#!/bin/bash
# Build the OCI runtime-tools validation suite from a fetched copy and run it
# against one or more runtimes. The suite itself is never committed.
#
#   scripts/conformance.sh build SRC          SRC: a git dir or work tree of
#                                             opencontainers/runtime-tools
#   scripts/conformance.sh run RUNTIME...     e.g. run "$PWD/.venv/bin/pyrunc" runc crun
#   scripts/conformance.sh table              the per-file table of the last runs
#   scripts/conformance.sh one RUNTIME NAME   one file, its TAP on stdout
#
# Environment: CONFORMANCE_DIR (default /var/tmp/pyrunc-conformance) holds the
# build and the results; COMMIT (default 0105384, the commit Debian packaged).
#
# Build: Debian's Go (apt-get install golang-go, 1.19) with the repo's vendored
# modules, offline: GO111MODULE=on GOFLAGS=-mod=vendor GOPROXY=off. Each file
# is a Go program (validation/NAME/NAME.go) that calls $RUNTIME; it needs a
# static `runtimetest` and rootfs-amd64.tar.gz in its working directory. Each
# runs inside `unshare --mount` because some tests remove mount namespaces.
#
# A file passes when it exits 0, prints no "not ok", and really checked
# something: at least one "ok" line, or for the files that only print a YAML
# "error" when they find one (hooks, poststart, ...), a bare "1..0" without
# it. The 13 files that relay runtimetest's TAP from inside the container
# print nothing at all when the container did not run: a failure.
set -euo pipefail

DIR=${CONFORMANCE_DIR:-/var/tmp/pyrunc-conformance}
# NET_CLS=1: inside each file's private mount namespace, mount the kernel's
# net_cls,net_prio hierarchy (present here but mounted nowhere) under a copy
# of /sys/fs/cgroup, as systemd does on ordinary hosts; nothing changes on the
# host. Results then go to results-net_cls/. The default run takes the host
# as it is.
NET_CLS=${NET_CLS:-0}
RESULTS=$DIR/results
PREP=:
if [ "$NET_CLS" = 1 ]; then
    RESULTS=$DIR/results-net_cls
    PREP='set -e; view=$(mktemp -d /tmp/cgroup-view.XXXXXX)
mount -t tmpfs -o mode=755 cgroup-view "$view"
for e in /sys/fs/cgroup/*; do n=${e##*/}
    if [ -L "$e" ]; then cp -P "$e" "$view/"; else mkdir "$view/$n"; mount --rbind "$e" "$view/$n"; fi
done
mkdir "$view/net_cls,net_prio"; mount -t cgroup -o net_cls,net_prio cgroup "$view/net_cls,net_prio"
ln -s net_cls,net_prio "$view/net_cls"; ln -s net_cls,net_prio "$view/net_prio"
mount --move "$view" /sys/fs/cgroup; rmdir "$view"'
fi
COMMIT=${COMMIT:-0105384}
TIMEOUT=${TIMEOUT:-120}

build() {
    local src=$1 gitdir
    if [ -d "$src/.git" ]; then gitdir=$src/.git; else gitdir=$src; fi
    rm -rf "$DIR/src"
    mkdir -p "$DIR/src" "$DIR/bin"
    git --git-dir="$gitdir" archive "$COMMIT" | tar -x -C "$DIR/src"
    cd "$DIR/src"
    export GO111MODULE=on GOFLAGS=-mod=vendor GOPROXY=off CGO_ENABLED=0 GOCACHE=$DIR/gocache
    go build -tags "netgo osusergo" -ldflags "-extldflags -static" -o "$DIR/bin/runtimetest" ./cmd/runtimetest
    local t
    for t in validation/*/; do
        t=$(basename "$t")
        [ "$t" = util ] && continue
        [ -f "validation/$t/$t.go" ] || continue
        go build -o "$DIR/bin/$t.t" "./validation/$t/$t.go"
    done
    cp rootfs-amd64.tar.gz "$DIR/bin/"
    echo "built $(ls "$DIR"/bin/*.t | wc -l) files in $DIR/bin"
}

wrap() {  # RUNTIME -> a wrapper named like it that keeps its state under $DIR
    local rt=$1 name
    name=$(basename "$rt")
    mkdir -p "$DIR/rt" "$DIR/state/$name"
    printf '#!/bin/sh\nexec %q --root %q "$@"\n' "$(command -v "$rt")" "$DIR/state/$name" >"$DIR/rt/$name"
    chmod +x "$DIR/rt/$name"
    echo "$DIR/rt/$name"
}

one() {  # RUNTIME NAME -> prints TAP, returns the file's verdict
    local rt t=$2 out rc
    rt=$(wrap "$1")
    cd "$DIR/bin"
    set +e
    out=$(RUNTIME=$rt timeout "$TIMEOUT" unshare --mount --propagation private \
          sh -c "$PREP"'
exec "$0"' "./$t.t" 2>&1)
    rc=$?
    set -e
    printf '%s\n# conformance.sh: exit code %s\n' "$out" "$rc"
    verdict "$rc" "$out"
}

verdict() {  # RC TAP -> 0 when the file passes
    local rc=$1 out=$2
    [ "$rc" -eq 0 ] || return 1
    grep -q '^not ok' <<<"$out" && return 1
    grep -Eq '^ok [0-9]+' <<<"$out" && return 0
    # no test line: the files that only report a failure as a YAML "error"
    # (hooks, poststart, ...) pass on a bare plan; a runtimetest relay whose
    # container never ran prints no plan at all
    grep -q '^1\.\.0$' <<<"$out" || return 1
    grep -q '"error":' <<<"$out" && return 1
    return 0
}

run() {
    local rt name t pass total
    for rt in "$@"; do
        name=$(basename "$rt")
        mkdir -p "$RESULTS/$name"
        pass=0 total=0
        for t in $(cd "$DIR/bin" && ls *.t | sed 's/\.t$//' | sort); do
            total=$((total + 1))
            if one "$rt" "$t" >"$RESULTS/$name/$t.tap"; then
                echo pass >"$RESULTS/$name/$t.verdict"; pass=$((pass + 1))
            else
                echo FAIL >"$RESULTS/$name/$t.verdict"
            fi
            printf '%-8s %-40s %s\n' "$name" "$t" "$(cat "$RESULTS/$name/$t.verdict")"
        done
        echo "$name: $pass of $total files pass"
    done
}

rescore() {  # recompute the verdicts of the kept TAP files (after a change of rule)
    local f rc
    for f in "$RESULTS"/*/*.tap; do
        rc=$(sed -n 's/^# conformance.sh: exit code //p' "$f")
        [ -n "$rc" ] || { grep -q '^exit status' "$f" && rc=1 || rc=0; }
        if verdict "$rc" "$(cat "$f")"; then echo pass; else echo FAIL; fi >"${f%.tap}.verdict"
    done
}

table() {
    local names t n
    names=$(ls "$RESULTS")
    printf '| file |'; for n in $names; do printf ' %s |' "$n"; done; echo
    printf '|---|'; for n in $names; do printf '%s' '---|'; done; echo
    for t in $(cd "$DIR/bin" && ls *.t | sed 's/\.t$//' | sort); do
        printf '| %s |' "$t"
        for n in $names; do printf ' %s |' "$(cat "$RESULTS/$n/$t.verdict" 2>/dev/null || echo -)"; done
        echo
    done
    printf '| **total** |'
    for n in $names; do printf ' **%s** |' "$(grep -l pass "$RESULTS/$n"/*.verdict | wc -l)"; done
    echo
}

cmd=${1:-}
shift || true
case $cmd in
    build) build "$@" ;;
    run) run "$@" ;;
    table) table ;;
    rescore) rescore ;;
    one) one "$@" ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
esac
