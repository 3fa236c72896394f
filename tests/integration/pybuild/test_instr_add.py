"""ADD built for real: local archives extracted whatever their compression."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import subprocess
import tarfile

import pytest

from test_build_common import base_image_tar, history, pb, write_context  # noqa: F401


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz", "zst"])
def test_add_extracts_compressed_tars(pb, tmp_path, kind):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("inner/file.txt")
        payload = f"{kind} payload\n".encode()
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    raw = buf.getvalue()
    data = {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress,
            "zst": lambda b: subprocess.run(["zstd", "-c"], input=b, capture_output=True, check=True).stdout}[kind](raw)
    ctx = write_context(tmp_path / "ctx", {f"a.tar.{kind}": data,
                                           "Dockerfile": f"FROM busybox\nADD a.tar.{kind} /x/\nCOPY a.tar.{kind} /y/\n"})
    pb.build(ctx, "-t", "added")
    files = pb.flatten("added")
    assert files["x/inner/file.txt"][1] == f"{kind} payload\n".encode()
    assert files[f"y/a.tar.{kind}"][1] == data   # COPY never unpacks
