#!/bin/bash
# bench/run_latency.sh as an ordinary user (issue 19): rootless `run` of /bin/true with pyrunc,
# runc and crun interleaved, each mapping the caller's uid into a new user namespace.
# Run as root: makes a throwaway user (useradd, /run/user/UID), runs the bench as it with
# XDG_RUNTIME_DIR set, and removes the user and what it left, whatever happens.
# Usage: bench/rootless_latency.sh [N]      (default 50)
set -euo pipefail
N=${1:-50}
HERE=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "rootless_latency.sh: run as root (it makes the user)" >&2; exit 1; }
NAME="pyrtb$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
HOME_DIR=$(mktemp -d "/tmp/$NAME.XXXXXX")
cleanup() {
    if id "$NAME" >/dev/null 2>&1; then
        uid=$(id -u "$NAME")
        for p in /proc/[0-9]*; do   # its processes, by pid (none should be left)
            [ "$(awk '/^Uid:/ {print $2}' "$p/status" 2>/dev/null)" = "$uid" ] && kill -9 "${p#/proc/}" 2>/dev/null
        done
        userdel "$NAME"
        rm -rf "/run/user/$uid"
    fi
    rm -rf "$HOME_DIR"
}
trap cleanup EXIT
useradd -M -d "$HOME_DIR" -s /bin/sh -U "$NAME"
uid=$(id -u "$NAME"); gid=$(id -g "$NAME")
chown "$uid:$gid" "$HOME_DIR"
install -d -m 0700 -o "$uid" -g "$gid" "/run/user/$uid"
cd "$HOME_DIR"
setpriv --reuid="$uid" --regid="$gid" --clear-groups \
    env -i HOME="$HOME_DIR" USER="$NAME" XDG_RUNTIME_DIR="/run/user/$uid" PATH=/usr/bin:/bin:/usr/sbin:/sbin \
    TMPDIR="$HOME_DIR" bash "$HERE/bench/run_latency.sh" "$N" </dev/null
