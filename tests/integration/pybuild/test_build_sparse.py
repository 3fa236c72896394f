"""Sparse files keep their holes (issue 11 finding 9): a 2 GB sparse file used to become 2 GB of
written zeros in the bundle and in the store's unpacked layers. Here a 256 MB file with a few data
blocks goes through every path: GNU and PAX sparse tar entries, a plain tar of zeros, COPY from the
context (the layer is the adopted upper dir), the store's unpacked layers, bundles and outputs.
Checked: the content (hash, and the data at its offsets) and the blocks allocated."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess

import pytest
from test_build_common import Pybuild, base_image_tar, needs_root, write_context  # noqa: F401

SIZE = 256 << 20
DATA = {0: b"head", 100 << 20: b"middle" * 1000, SIZE - 5: b"tail!"}
ALLOCATED_MAX = 1 << 20  # a few data blocks (plus filesystem metadata), never the 256 MB


def _make_sparse(path: str) -> str:
    with open(path, "wb") as fh:
        fh.truncate(SIZE)
        for offset, data in DATA.items():
            fh.seek(offset)
            fh.write(data)
    return _digest(path)


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _check(path, digest: str) -> None:
    st = os.stat(path)
    assert st.st_size == SIZE
    assert st.st_blocks * 512 <= ALLOCATED_MAX, f"{path}: {st.st_blocks * 512} bytes allocated, holes lost"
    assert _digest(path) == digest


@pytest.fixture
def pb1(tmp_path, base_image_tar) -> Pybuild:
    if os.geteuid() != 0:
        pytest.skip("builds need root")
    tool = Pybuild(str(tmp_path / "store"), "pyrunc")
    tool.run("import", base_image_tar, "-t", "busybox")
    return tool


@needs_root
@pytest.mark.parametrize("fmt", ["gnu", "posix", "plain"])
def test_sparse_tar_entries_unpack_with_holes(pb1, tmp_path, fmt):
    if fmt != "plain" and shutil.which("tar") is None:
        pytest.skip("GNU tar is not installed")
    src = tmp_path / "src"
    src.mkdir()
    digest = _make_sparse(str(src / "big"))
    archive = str(tmp_path / "big.tar")
    if fmt == "plain":  # no sparse map: the zeros are in the tar; written as holes anyway
        subprocess.run(["tar", "-C", str(src), "-cf", archive, "big"], check=True)
    else:
        subprocess.run(["tar", "-C", str(src), "--sparse", f"--format={fmt}", "-cf", archive, "big"], check=True)
    pb1.run("import", archive, "-t", "sp", "--change", 'CMD ["sh"]')
    bundle = tmp_path / "bundle"
    pb1.run("bundle", "sp", str(bundle))
    _check(bundle / "rootfs" / "big", digest)
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM sp\nRUN [\"/big\"] || true\n"})
    pb1.build(str(ctx), "-t", "sp2", check=False)  # any step that needs the layer unpacked in the store
    unpacked = [os.path.join(r, "big") for r, _, files in os.walk(os.path.join(pb1.root, "layers")) if "big" in files]
    assert unpacked, "the layer was not unpacked into the store"
    for path in unpacked:
        _check(path, digest)


@needs_root
def test_copy_and_outputs_keep_holes(pb1, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nCOPY big /data/big\nCMD [\"sh\"]\n"})
    digest = _make_sparse(os.path.join(ctx, "big"))
    pb1.build(str(ctx), "-t", "copied")
    layer_files = [os.path.join(r, "big") for r, _, files in os.walk(os.path.join(pb1.root, "layers")) if "big" in files]
    assert layer_files
    for path in layer_files:
        _check(path, digest)
    out = tmp_path / "out"
    ctx2 = write_context(tmp_path / "ctx2", {"Dockerfile": "FROM copied\nLABEL a=b\n"})
    pb1.build(str(ctx2), "-o", f"type=local,dest={out}")
    _check(out / "data" / "big", digest)
    bundle = tmp_path / "bundle"
    pb1.run("bundle", "copied", str(bundle))
    _check(bundle / "rootfs" / "data" / "big", digest)
