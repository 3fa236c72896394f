"""Unpack speed: `pybuild bundle` (which unpacks every layer of an image into a rootfs, as FROM and
the layer store do) against `umoci unpack` of the same image from the same OCI layout.

The image is `pybuild import` of a tree copied from this machine's /usr (real files: libraries,
scripts, docs, symlinks, hard links where /usr has them), gzip as pybuild writes it. Both tools read
the same blobs; the figure is MB/s of *uncompressed* tar (the layer's diffID size) per second of
wall time, the median of --runs, page cache warm (one unmeasured run of each first).

Usage: .venv/bin/python bench/unpack.py [--mb 500] [--runs 3] [--src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYBUILD = os.path.join(HERE, ".venv", "bin", "pybuild")


def copy_tree(dest: str, mb: int) -> None:
    """About `mb` MB of /usr, whole directories at a time (so links inside them stay valid)."""
    budget = mb << 20
    for top in ("/usr/lib/python3.11", "/usr/share/doc", "/usr/lib/x86_64-linux-gnu", "/usr/share",
                "/usr/lib", "/usr/bin"):
        for name in sorted(os.listdir(top)):
            src = os.path.join(top, name)
            if budget <= 0:
                return
            if not os.path.isdir(src) or os.path.islink(src):
                continue
            target = os.path.join(dest, top.strip("/").replace("/", "_"), name)
            if os.path.exists(target):
                continue
            try:
                shutil.copytree(src, target, symlinks=True)
            except (shutil.Error, OSError):
                continue
            budget -= int(subprocess.run(["du", "-sb", target], capture_output=True, text=True).stdout.split()[0])


def layer_bytes(store: str, ref: str) -> int:
    index = json.load(open(os.path.join(store, "index.json")))
    for desc in index["manifests"]:
        if desc.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref:
            manifest = json.load(open(os.path.join(store, "blobs", *desc["digest"].split(":"))))
            config = json.load(open(os.path.join(store, "blobs", *manifest["config"]["digest"].split(":"))))
            total = 0
            for layer in manifest["layers"]:  # the diffID size: decompress and count
                blob = os.path.join(store, "blobs", *layer["digest"].split(":"))
                out = subprocess.run(f"gzip -dc {blob} | wc -c", shell=True, capture_output=True, text=True)
                total += int(out.stdout)
            assert config["rootfs"]["diff_ids"]
            return total
    raise SystemExit(f"{ref} not in {store}")


def timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--src", help="tree to import (default: --mb MB copied from /usr)")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pybuild-unpack-bench.", dir="/var/tmp")
    try:
        src = args.src
        if not src:
            src = os.path.join(work, "src")
            os.makedirs(src)
            copy_tree(src, args.mb)
        store = os.path.join(work, "store")
        subprocess.run([PYBUILD, "--root", store, "import", src, "-t", "bench", "-c", "CMD [\"/bin/true\"]"],
                       check=True, stdout=subprocess.DEVNULL)
        size = layer_bytes(store, "bench")
        tools = {"pybuild": lambda d: [PYBUILD, "--root", store, "bundle", "--network", "host", "bench", d]}
        if shutil.which("umoci"):
            tools["umoci"] = lambda d: ["umoci", "unpack", "--image", f"{store}:bench", d]
        else:
            print("umoci: not installed, left out")
        times: dict[str, list[float]] = {t: [] for t in tools}
        for i in range(args.runs + 1):
            for name, argv in tools.items():
                dest = os.path.join(work, f"{name}-{i}")
                took = timed(argv(dest))
                if i:
                    times[name].append(took)
                subprocess.run(["rm", "-rf", dest], check=True)
        print(f"unpack of a {size / 1e6:.0f} MB (uncompressed) one-layer image, median of {args.runs}")
        med = {n: statistics.median(v) for n, v in times.items()}
        for name, t in med.items():
            print(f"{name:8} {t:6.2f} s  {size / 1e6 / t:6.0f} MB/s")
        if "umoci" in med:
            print(f"pybuild/umoci: {med['pybuild'] / med['umoci']:.2f} (time; < 1 means pybuild is faster)")
    finally:
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(main())
