#!/bin/sh
# Make the base image `python:3.11-slim` in a pybuild store, without Docker Hub:
# a real Debian made with `debootstrap --variant=minbase` of the release and from
# the mirror that this machine's apt uses (read from /etc/apt/sources.list* now,
# by apt_source.py), with Debian's python3, pip (python3-pip), python-is-python3
# (the `python` command the Dockerfile's CMD runs) and ca-certificates. As the
# official python images do, the EXTERNALLY-MANAGED marker is removed, so
# `pip install` works without --break-system-packages. apt's lists and caches are
# dropped, as in the slim images.
#
# Cached: when the store already has the tag, nothing is done.
# Usage: make-base.sh [TAG]   (PYBUILD="pybuild --root DIR" picks the command and store)
set -eu
TAG=${1:-python:3.11-slim}
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
PYBUILD=${PYBUILD:-$TOP/.venv/bin/pybuild}
if $PYBUILD inspect "$TAG" >/dev/null 2>&1; then
    echo "== $TAG: already in the store"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "make-base: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
set -- $(/usr/bin/python3.11 "$HERE/apt_source.py")
SUITE=$1 MIRROR=$2
ROOTFS=$(mktemp -d /var/tmp/pybuild-base.XXXXXX)
cleanup() {
    # debootstrap mounts /proc and /sys in the target while it installs
    for m in proc sys dev/pts dev; do umount -l "$ROOTFS/$m" 2>/dev/null || true; done
    rm -rf --one-file-system "$ROOTFS"
}
trap cleanup EXIT INT TERM
echo "== debootstrap --variant=minbase $SUITE (the host's apt mirror) + python3, pip: takes a few minutes once"
debootstrap --variant=minbase --include=python3,python3-pip,python-is-python3,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR" > "$ROOTFS.log" 2>&1 || {
    tail -n 20 "$ROOTFS.log" >&2; rm -f "$ROOTFS.log"; echo "make-base: debootstrap failed" >&2; exit 1; }
rm -f "$ROOTFS.log"
[ -x "$ROOTFS/usr/bin/python3.11" ] || {
    echo "make-base: $SUITE's python3 is $(readlink "$ROOTFS/usr/bin/python3"), not python3.11" >&2; exit 1; }
rm -f "$ROOTFS"/usr/lib/python3.*/EXTERNALLY-MANAGED
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
       "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old
# The image must not carry this host's resolver or name: the runtime supplies them.
: > "$ROOTFS/etc/resolv.conf"
rm -f "$ROOTFS/etc/hostname"
$PYBUILD import "$ROOTFS" -t "$TAG" -c 'ENV LANG=C.UTF-8' -c 'ENV PYTHON_VERSION=3.11' -c 'CMD ["python3"]'
