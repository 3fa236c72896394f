#!/bin/bash
# A small Dockerfile built by an ordinary user (issue 19): pybuild (RUN steps through pyrunc, in
# its user namespace) beside buildah rootless (--isolation oci, its runc/crun), both with
# --no-cache and --network host, interleaved (each round builds with each, in
# alternating order). buildah twice: with --layers (a layer per step, as pybuild) and its default
# (one layer for the build). Prints each median wall time and pybuild/buildah as the median of
# the per-round ratios.
#   FROM busybox (a local busybox rootfs imported into each store, not timed)
#   RUN echo hi > /a && chown 1000:1000 /a      COPY --chown=1001:1001 f /f      RUN id > /id
# Run as root: makes a throwaway user with subordinate id ranges (useradd, usermod,
# /run/user/UID), runs the builds as it, and removes the user, its ranges, its processes and what
# it left, whatever happens.
# Usage: bench/rootless_build.sh [ROUNDS]      (default 10)
set -euo pipefail
ROUNDS=${1:-10}
HERE=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "rootless_build.sh: run as root (it makes the user)" >&2; exit 1; }
command -v buildah >/dev/null && command -v podman >/dev/null || { echo "rootless_build.sh: needs buildah and podman" >&2; exit 1; }
NAME="pybrb$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
HOME_DIR=$(mktemp -d "/tmp/$NAME.XXXXXX")
cleanup() {
    set +e
    if id "$NAME" >/dev/null 2>&1; then
        uid=$(id -u "$NAME")
        for _ in 1 2 3; do   # its processes and its subordinate ids' (podman's pause), by pid
            for p in /proc/[0-9]*; do
                u=$(awk '/^Uid:/ {print $2}' "$p/status" 2>/dev/null)
                if [ "$u" = "$uid" ] || { [ -n "$u" ] && [ "$u" -ge "$SUB" ] && [ "$u" -lt $((SUB + 65536)) ]; }; then
                    kill -9 "${p#/proc/}" 2>/dev/null
                fi
            done
            sleep 0.1
        done
        for r in $(awk -F: -v n="$NAME" '$1 == n {print $2 "-" $2 + $3 - 1}' /etc/subuid); do usermod --del-subuids "$r" "$NAME"; done
        for r in $(awk -F: -v n="$NAME" '$1 == n {print $2 "-" $2 + $3 - 1}' /etc/subgid); do usermod --del-subgids "$r" "$NAME"; done
        userdel "$NAME"
        rm -rf "/run/user/$uid"
    fi
    rm -rf "$HOME_DIR"
}
SUB=4294967295
trap cleanup EXIT
useradd -M -d "$HOME_DIR" -s /bin/sh -U "$NAME"
uid=$(id -u "$NAME"); gid=$(id -g "$NAME")
if ! grep -q "^$NAME:" /etc/subuid || ! grep -q "^$NAME:" /etc/subgid; then
    start=$(cat /etc/subuid /etc/subgid | awk -F: 'BEGIN {m = 100000} $3 ~ /^[0-9]+$/ && $2 + $3 > m {m = $2 + $3} END {print m}')
    usermod --add-subuids "$start-$((start + 65535))" --add-subgids "$start-$((start + 65535))" "$NAME"
fi
SUB=$(awk -F: -v n="$NAME" '$1 == n {print $2; exit}' /etc/subuid)
chown "$uid:$gid" "$HOME_DIR"
install -d -m 0700 -o "$uid" -g "$gid" "/run/user/$uid"

# the base and the context, made by root as the user's
R=$HOME_DIR/rootfs
mkdir -p "$R/bin" "$R/etc" "$R/tmp" "$HOME_DIR/ctx"
cp /bin/busybox "$R/bin/"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\napp:x:1000:\n' > "$R/etc/group"
tar -C "$R" -cf "$HOME_DIR/busybox.tar" .
rm -rf "$R"
echo data > "$HOME_DIR/ctx/f"
cat > "$HOME_DIR/ctx/Dockerfile" <<'EOF'
FROM localhost/busybox
RUN echo hi > /a && chown 1000:1000 /a
COPY --chown=1001:1001 f /f
RUN id > /id
EOF
chown -R "$uid:$gid" "$HOME_DIR"

cat > "$HOME_DIR/bench.sh" <<EOF
set -euo pipefail
cd "$HOME_DIR"
PB="$HERE/.venv/bin/pybuild"
\$PB import busybox.tar -t localhost/busybox >/dev/null
podman import -q busybox.tar localhost/busybox >/dev/null
now() { date +%s%N; }
pb() { \$PB build -q --no-cache --network host -t b ctx >/dev/null; }
ba() { buildah bud -q --no-cache --layers --isolation oci --network host -t b ctx >/dev/null; }
bb() { buildah bud -q --no-cache --isolation oci --network host -t b ctx >/dev/null; }
pb; ba; bb   # warm all (page cache, first-use setup), not timed
for i in \$(seq $ROUNDS); do
    if [ \$((i % 2)) = 0 ]; then order="pb ba bb"; else order="bb ba pb"; fi
    for t in \$order; do s=\$(now); \$t; echo "\$t \$(( (\$(now) - s) / 1000 ))"; done
done
EOF
chown "$uid:$gid" "$HOME_DIR/bench.sh"
setpriv --reuid="$uid" --regid="$gid" --clear-groups \
    env -i HOME="$HOME_DIR" USER="$NAME" XDG_RUNTIME_DIR="/run/user/$uid" PATH=/usr/bin:/bin:/usr/sbin:/sbin \
    TMPDIR="$HOME_DIR" bash "$HOME_DIR/bench.sh" </dev/null > "$HOME_DIR/times"
/usr/bin/python3.11 - "$HOME_DIR/times" "$ROUNDS" <<'EOF'
import statistics, sys
rows = [ln.split() for ln in open(sys.argv[1])]
pb = [int(v) / 1000 for k, v in rows if k == "pb"]
ba = [int(v) / 1000 for k, v in rows if k == "ba"]
bb = [int(v) / 1000 for k, v in rows if k == "bb"]
print(f"rootless build (RUN, COPY --chown, RUN; --no-cache), {sys.argv[2]} interleaved rounds")
print(f"  pybuild (pyrunc, a layer per step)  median {statistics.median(pb):7.1f} ms")
print(f"  buildah --layers                    median {statistics.median(ba):7.1f} ms   "
      f"pybuild/buildah {statistics.median(p / b for p, b in zip(pb, ba)):.2f}")
print(f"  buildah (default: one layer)        median {statistics.median(bb):7.1f} ms   "
      f"pybuild/buildah {statistics.median(p / b for p, b in zip(pb, bb)):.2f}")
print("  (ratios: median of per-round ratios; buildah --isolation oci --network host, as pybuild's default)")
EOF
