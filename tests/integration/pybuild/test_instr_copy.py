"""COPY built for real: destination rules, image symlinks resolved inside the rootfs, a directory
merged through a symlink, .dockerignore."""

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


def test_copy_destination_semantics(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "f.txt": "F", "dir/one": "1", "dir/two/three": "3",
        "Dockerfile": "FROM busybox\n"
                      "COPY f.txt /renamed\n"         # file → new name
                      "COPY f.txt /newdir/\n"         # file → into dir (trailing slash)
                      "COPY f.txt /tmp\n"             # file → into existing dir
                      "COPY dir /copied\n"            # dir contents → dest
                      "WORKDIR /rel\n"
                      "COPY f.txt .\n",               # relative to WORKDIR
    })
    pb.build(ctx, "-t", "dests")
    files = pb.flatten("dests")
    assert files["renamed"][1] == b"F"
    assert files["newdir/f.txt"][1] == b"F"
    assert files["tmp/f.txt"][1] == b"F"
    assert files["copied/one"][1] == b"1" and files["copied/two/three"][1] == b"3"
    assert files["rel/f.txt"][1] == b"F"


def test_copy_follows_image_symlinks_inside_rootfs(pb, tmp_path):
    """A symlink in the image pointing at an absolute path must resolve inside the rootfs."""
    ctx = write_context(tmp_path / "ctx", {
        "f.txt": "payload",
        "Dockerfile": "FROM busybox\nRUN mkdir -p /real && ln -s /real /link && ln -s /etc/../../.. /up\n"
                      "COPY f.txt /link/\nCOPY f.txt /up/escaped.txt\n",
    })
    pb.build(ctx, "-t", "links")
    files = pb.flatten("links")
    assert files["real/f.txt"][1] == b"payload"
    assert files["escaped.txt"][1] == b"payload"   # clamped at the image root, not the host's /
    assert not os.path.exists("/escaped.txt")


def test_copy_dir_merges_through_an_image_symlink(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "d/static/a.css": "css",
        "Dockerfile": "FROM busybox\nRUN mkdir -p /srv/static /app && ln -s /srv/static /app/static\n"
                      "COPY d /app/\n"})
    pb.build(ctx, "-t", "symdir")
    files = pb.flatten("symdir")
    assert files["app/static"][0].issym()
    assert files["srv/static/a.css"][1] == b"css"


def test_dockerignore_applies_to_copy(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        ".dockerignore": "*.secret\nbuild/\n!build/keep.txt\n",
        "app.py": "print()", "key.secret": "s3cr3t", "build/junk.o": "x", "build/keep.txt": "keep",
        "Dockerfile": "FROM busybox\nCOPY . /src/\n",
    })
    pb.build(ctx, "-t", "ignored")
    files = pb.flatten("ignored")
    assert "src/app.py" in files and "src/build/keep.txt" in files
    assert "src/key.secret" not in files and "src/build/junk.o" not in files
