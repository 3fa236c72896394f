"""Reproducible builds: with SOURCE_DATE_EPOCH (or --timestamp) the same inputs give the same image digest
in another store at another time (BuildKit's rewrite-timestamp semantics: mtimes newer than the epoch
are clamped in new layers, base layers are reused byte for byte, `created` is the epoch)."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import time

import pytest

from pybuild.store import Store

PYBUILD = os.path.join(os.path.dirname(sys.executable), "pybuild")
EPOCH = 1700000000
DOCKERFILE = """FROM base
COPY app/ /app/
RUN mkdir -p /out/sub && echo built > /out/sub/file && ln -s sub/file /out/link && touch /app/touched
ENV MODE=release
"""


def pb(root, *args, env=None):
    proc = subprocess.run([PYBUILD, "--root", root, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.fixture
def context(tmp_path):
    ctx = tmp_path / "ctx"
    (ctx / "app").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "app" / "new.txt").write_text("new\n")
    old = ctx / "app" / "old.txt"
    old.write_text("old\n")
    os.utime(old, (EPOCH - 1000, EPOCH - 1000))
    return ctx


def _store_with_base(root: str, rootfs: str) -> None:
    pb(root, "import", rootfs, "-t", "base", "-c", 'CMD ["sh"]', env={"SOURCE_DATE_EPOCH": str(EPOCH)})


def _layer_members(store: Store, digest: str) -> dict[str, tarfile.TarInfo]:
    from pybuild.compress import open_decompressed
    data = open_decompressed(io.BytesIO(store.read_blob(digest))).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_two_builds_two_stores_two_times_same_digest(tmp_path, context, busybox_rootfs, compression):
    roots = [str(tmp_path / "one"), str(tmp_path / "two")]
    ids = []
    for n, root in enumerate(roots):
        _store_with_base(root, busybox_rootfs)
        if n:
            time.sleep(1.5)  # another second: anything taken from the clock would differ
            os.utime(context / "app" / "new.txt")  # a fresh checkout: newer mtimes, same content
        args = ["build", "-q", "-t", "app", "--compression", compression, str(context)]
        if n:
            ids.append(pb(root, *args[:1], "--timestamp", str(EPOCH), *args[1:]))
        else:
            ids.append(pb(root, *args, env={"SOURCE_DATE_EPOCH": str(EPOCH)}))
    assert ids[0] == ids[1]
    one, two = Store(roots[0]), Store(roots[1])
    image = one.load_image("app")
    assert image.descriptor.digest == two.load_image("app").descriptor.digest
    base = one.load_image("base")
    assert image.manifest.layers[0].digest == base.manifest.layers[0].digest  # base layer untouched
    config = json.loads(one.read_blob(image.id))
    stamp = "2023-11-14T22:13:20Z"
    assert config["created"] == stamp and all(h["created"] == stamp for h in config["history"])
    copied = _layer_members(one, image.manifest.layers[1].digest)
    assert copied["app/old.txt"].mtime == EPOCH - 1000          # older than the epoch: kept
    assert copied["app/new.txt"].mtime == EPOCH                 # newer: clamped
    run = _layer_members(one, image.manifest.layers[2].digest)
    assert {"out/sub/file", "out/link", "app/touched"} <= set(run)
    assert all(m.mtime <= EPOCH for m in run.values())
    assert all(m.uname == "" and m.gname == "" for m in run.values())
    if compression == "gzip":
        head = one.read_blob(image.manifest.layers[2].digest)[:10]
        assert head[3] == 0 and head[4:8] == b"\0\0\0\0"            # no FNAME, no MTIME in the gzip header
        gzip.decompress(one.read_blob(image.manifest.layers[2].digest))
