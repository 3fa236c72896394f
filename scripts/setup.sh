#!/bin/bash
# Installs everything pyrunc/pybuild and their tests need on a fresh Debian
# bookworm machine, as root: apt packages, a venv in .venv, the project.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-dev gcc libcap-dev busybox-static
              iproute2 strace runc crun buildah skopeo umoci podman libseccomp2 zstd debootstrap
              docker-registry apache2-utils nftables iptables curl containerd
              time uidmap slirp4netns docker.io)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # docker.io is a client the tests drive through a dockerd of their own (no bridge, no iptables);
    # a system dockerd that its install just started would set FORWARD's policy to DROP on the host.
    if [[ " ${missing[*]} " == *" docker.io "* ]] && [ -d /run/systemd/system ]; then
        systemctl disable --now docker.service docker.socket
    fi
fi

# crun (podman's default runtime, an oracle of the tests) refuses a hybrid host whose cgroup2 holds a
# controller ("cgroups in hybrid mode not supported"): after boot this machine's controller-less cgroup2
# keeps hugetlb, which has no v1 hierarchy. Give hugetlb its v1 hierarchy, as the other controllers have.
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ] && grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers \
   && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
    mkdir -p /sys/fs/cgroup/hugetlb
    mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
fi

PY=/usr/bin/python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import pyrunc, click, jsonschema, prctl, pyroute2, pytest, hypothesis, grpc, grpc_tools" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ] || [ -n "$(find bin -newer .venv/.installed 2>/dev/null)" ] \
   || [ ! -x .venv/bin/pyrunc ]; then
    # An ordinary (editable) pip install: the pyrunc/pybuild commands it writes into .venv/bin
    # are the guarded -I -S launchers of bin/ (docs/SECURITY.md 4a); nothing is written after it.
    .venv/bin/pip install -q --disable-pip-version-check --config-settings editable_mode=compat -e '.[test]'
    touch .venv/.installed
fi
.venv/bin/python -I -m compileall -q pyrunc pybuild >/dev/null
