#!/bin/sh
# Make a small Python base image, `python-base`, in a pybuild store, without Docker Hub.
#
# There is no registry to pull python:3.11-slim from, so this builds the closest
# honest equivalent from what Debian bookworm already put on this machine:
#   - busybox-static as /bin/sh and the usual applets (Debian's busybox-static),
#   - Debian's python3.11 binary, its standard library (/usr/lib/python3.11),
#     and exactly the shared libraries that it and its extension modules link
#     (found with ldd), copied at the same paths,
#   - Debian's pip (python3-pip) under /usr/local/lib/python3.11/dist-packages,
#     with a /usr/local/bin/pip launcher (the EXTERNALLY-MANAGED marker is left
#     out, as in the python:3.11 images),
#   - /etc/passwd, /etc/group, an empty /etc/ssl/certs (pybuild mounts the host's
#     CA bundle there during RUN steps; no host certificate is baked in).
# It costs a copy of ~70 MB and no network. `debootstrap --variant=minbase`
# would be more complete but downloads ~40 MB of packages and takes minutes.
#
# Usage: demo/make-python-base.sh [TAG]   (store: $PYBUILD_ROOT or /var/lib/pybuild;
#        PYBUILD="pybuild --root DIR" to choose the command)
set -eu
TAG=${1:-python-base}
HERE=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYBUILD:-}" ]; then
    if [ -x "$HERE/.venv/bin/pybuild" ]; then PYBUILD=$HERE/.venv/bin/pybuild; else PYBUILD=pybuild; fi
fi
PY=/usr/bin/python3.11
for need in /bin/busybox "$PY" /usr/lib/python3.11 /usr/lib/python3/dist-packages/pip; do
    [ -e "$need" ] || { echo "make-python-base: missing $need (apt-get install busybox-static python3 python3-pip)" >&2; exit 1; }
done

ROOTFS=$(mktemp -d /tmp/python-base.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT INT TERM

mkdir -p "$ROOTFS/bin" "$ROOTFS/usr/bin" "$ROOTFS/usr/local/bin" "$ROOTFS/usr/lib" \
         "$ROOTFS/usr/local/lib/python3.11/dist-packages" "$ROOTFS/etc/ssl/certs" \
         "$ROOTFS/tmp" "$ROOTFS/root" "$ROOTFS/var/tmp" "$ROOTFS/home"
chmod 1777 "$ROOTFS/tmp" "$ROOTFS/var/tmp"
chmod 700 "$ROOTFS/root"

# busybox: /bin/sh and the applets a Dockerfile's RUN lines expect
cp /bin/busybox "$ROOTFS/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$ROOTFS/bin/$applet"
done

# python3.11 + stdlib (without the test suite and caches) + pip
cp -a "$PY" "$ROOTFS/usr/bin/python3.11"
ln -s python3.11 "$ROOTFS/usr/bin/python3"
ln -s python3 "$ROOTFS/usr/bin/python"
tar -C /usr/lib -cf - --exclude=python3.11/test --exclude=__pycache__ \
    --exclude=python3.11/EXTERNALLY-MANAGED python3.11 | tar -C "$ROOTFS/usr/lib" -xf -
cp -a /usr/lib/python3/dist-packages/pip /usr/lib/python3/dist-packages/pip-*.dist-info \
    "$ROOTFS/usr/local/lib/python3.11/dist-packages/"
cat > "$ROOTFS/usr/local/bin/pip" <<'PIP'
#!/usr/bin/python3.11
import sys
from pip._internal.cli.main import main
sys.exit(main())
PIP
chmod 755 "$ROOTFS/usr/local/bin/pip"
ln -s pip "$ROOTFS/usr/local/bin/pip3"

# shared libraries of the interpreter and of every extension module
{ ldd "$PY"; find /usr/lib/python3.11/lib-dynload -name '*.so' -exec ldd {} \; ; } 2>/dev/null \
    | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u | while read -r lib; do
        mkdir -p "$ROOTFS$(dirname "$lib")"
        cp -L "$lib" "$ROOTFS$lib"
    done
mkdir -p "$ROOTFS/lib64"
cp -L /lib64/ld-linux-x86-64.so.2 "$ROOTFS/lib64/" 2>/dev/null || true
# Debian is merged-/usr: keep /lib -> usr/lib as the image would have it
if [ -d "$ROOTFS/lib" ] && [ ! -L "$ROOTFS/lib" ]; then
    cp -a "$ROOTFS/lib/." "$ROOTFS/usr/lib/" && rm -rf "$ROOTFS/lib" && ln -s usr/lib "$ROOTFS/lib"
fi

cat > "$ROOTFS/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
cat > "$ROOTFS/etc/group" <<'GR'
root:x:0:
nogroup:x:65534:
GR
echo 'hosts: files dns' > "$ROOTFS/etc/nsswitch.conf"

$PYBUILD import "$ROOTFS" -t "$TAG"
