"""Layer-commit throughput: a ~500 MB tree -> tar + diffID + compressed blob in the store, in MB/s.

    .venv/bin/python bench/layer_commit.py [--src DIR] [--mb 500] [--runs 3]

Without --src the tree is built once from files of /usr (binaries, libraries, text: a real-world mix) in
a temp dir. Each run commits the tree with pybuild.layer.commit_layer into a fresh temp store (blob
written, fsynced, renamed, as in a build) and the median wall time is reported as MB/s of uncompressed tar
bytes, for parallel gzip at pybuild's default level, gzip -6 (the classic default) and zstd -3.
The page cache is warm (the tree was just written or read): this measures the commit, not the disk.
CPU seconds (all threads) are printed too: on a shared machine the wall time depends on the load.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pybuild.compress import default_threads  # noqa: E402
from pybuild.layer import commit_layer  # noqa: E402
from pybuild.store import Store  # noqa: E402


def build_tree(dest: str, megabytes: int) -> int:
    budget = megabytes * 1_000_000
    total = 0
    for top in ("/usr/lib", "/usr/share", "/usr/bin"):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames):
                src = os.path.join(dirpath, name)
                if os.path.islink(src) or not os.path.isfile(src):
                    continue
                size = os.path.getsize(src)
                if size > 64_000_000:
                    continue
                dst = os.path.join(dest, os.path.relpath(src, "/"))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                try:
                    shutil.copyfile(src, dst)
                except OSError:
                    continue
                total += size
                if total >= budget:
                    return total
    return total


def tree_stats(path: str) -> tuple[int, int]:
    files = size = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            full = os.path.join(dirpath, name)
            if not os.path.islink(full):
                files += 1
                size += os.path.getsize(full)
    return files, size


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(src: str, compression: str, level: int | None, runs: int) -> tuple[float, float, float, int, int]:
    """Median and best wall seconds, median CPU seconds (all threads), tar bytes, blob bytes."""
    times, cpus = [], []
    result = None
    for _ in range(runs):
        root = tempfile.mkdtemp(prefix="pybuild-bench-store-")
        try:
            store = Store(root)
            start, cpu = time.perf_counter(), _cpu()
            _, result = commit_layer(store, src, compression=compression, level=level)
            times.append(time.perf_counter() - start)
            cpus.append(_cpu() - cpu)
        finally:
            shutil.rmtree(root)
    assert result is not None
    return (statistics.median(times), min(times), statistics.median(cpus), result.uncompressed_size,
            result.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", help="tree to commit (default: ~--mb MB copied from /usr)")
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-slow", action="store_true", help="leave out gzip -6")
    args = parser.parse_args()
    made = None
    src = args.src
    if src is None:
        made = tempfile.mkdtemp(prefix="pybuild-bench-tree-")
        build_tree(made, args.mb)
        src = made
    try:
        files, size = tree_stats(src)
        cores = default_threads()
        print(f"tree: {src}: {files} files, {size / 1e6:.0f} MB; {cores} cores; median of {args.runs}; "
              f"load average {os.getloadavg()[0]:.2f}")
        print("  wall MB/s is what a build sees; 'CPU-bound' = tar MB / CPU seconds x cores, the rate on an idle "
              "machine when compression is the bottleneck")
        cases = [("gzip default (ISA-L 3)", "gzip", None), ("gzip zlib -1 (former default, parallel)", "gzip", 1),
                 ("gzip zlib -6 (parallel)", "gzip", 6),
                 ("zstd -3 (multithreaded)", "zstd", None), ("uncompressed tar", "none", None)]
        for label, compression, level in cases:
            if args.skip_slow and level == 6:
                continue
            seconds, best, cpu, tar_bytes, blob_bytes = measure(src, compression, level, args.runs)
            print(f"{label:34s} {tar_bytes / 1e6 / seconds:7.1f} MB/s wall (best {tar_bytes / 1e6 / best:6.1f})  "
                  f"{seconds:6.2f} s  "
                  f"CPU {cpu:6.2f} s (CPU-bound {tar_bytes / 1e6 / cpu * cores:6.1f} MB/s)  "
                  f"ratio {blob_bytes / tar_bytes:.3f}")
    finally:
        if made:
            shutil.rmtree(made)


if __name__ == "__main__":
    main()
