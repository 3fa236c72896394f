# Sourced by the latency benches (run_latency.sh, exec_latency.sh, verbs_latency.sh): what
# they share about the runtimes they compare.

# The runtimes to interleave, as label=path words: pyrunc ($1), runc and crun where installed
# (a note on stderr where not), then those EXTRA adds ("label=/path/to/runtime ...").
bench_runtimes() {
    local out="pyrunc=$1" r
    for r in runc crun; do
        if command -v "$r" >/dev/null; then out+=" $r=$(command -v "$r")"; else echo "$r: not installed" >&2; fi
    done
    echo "$out ${EXTRA:-}"
}

# crun refuses this machine's hybrid cgroups unless hugetlb is mounted as v1 (root only).
crun_hugetlb() {
    if [ "$(id -u)" = 0 ] && command -v crun >/dev/null && ! mountpoint -q /sys/fs/cgroup/hugetlb; then
        mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb || true
    fi
}

# A busybox rootfs in $1/rootfs with the applets named after it (the bundle's config.json is
# the bench's: `pyrunc spec` and its edits).
busybox_rootfs() {
    local dir=$1 a
    shift
    mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/dev" "$dir/rootfs/sys"
    cp /bin/busybox "$dir/rootfs/bin/busybox"
    for a in "$@"; do ln -s busybox "$dir/rootfs/bin/$a"; done
}
