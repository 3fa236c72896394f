"""RUN built for real: exec form, --network=none, tmpfs and cache mounts, a read-only bind of the
context, heredoc scripts."""

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


def test_run_exec_form_network_none_and_tmpfs_cache_mounts(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": (
        "FROM busybox\n"
        'RUN ["/bin/sh", "-c", "echo exec > /exec.txt"]\n'
        "RUN --network=none ip -o link | grep -v ' lo' | wc -l > /ifaces\n"
        "RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && grep -q ' /scratch ' /proc/mounts\n"
        "RUN --mount=type=cache,target=/cache,id=c1 echo $$ >> /cache/log && wc -l < /cache/log > /cachecount\n")})
    pb.build(ctx, "-t", "runs")
    files = pb.flatten("runs")
    assert files["exec.txt"][1] == b"exec\n"
    assert files["ifaces"][1].strip() == b"0"
    assert "scratch" not in files and "cache" not in files
    assert files["cachecount"][1].strip() == b"1"
    pb.build(ctx, "-t", "runs2", "--no-cache")
    assert pb.flatten("runs2")["cachecount"][1].strip() == b"2"   # the cache mount persisted


def test_bind_mount_from_context_is_read_only_view(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        ".dockerignore": "hidden\n", "hidden": "h", "shown": "s",
        "Dockerfile": "FROM busybox\n"
                      "RUN --mount=type=bind,target=/ctx ls /ctx > /listing && ! touch /ctx/new\n"
                      "RUN --mount=type=bind,target=/ctx,rw touch /ctx/new && ls /ctx > /listing2\n",
    })
    pb.build(ctx, "-t", "binds")
    files = pb.flatten("binds")
    assert files["listing"][1].split() == [b"Dockerfile", b"shown"]
    assert b"new" in files["listing2"][1]
    assert not os.path.exists(os.path.join(ctx, "new"))   # rw writes are discarded
    assert "ctx" not in files


def test_heredoc_script_with_shebang_and_heredoc_feeding_a_command(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": (
        "FROM busybox\n"
        "RUN <<EOF\n#!/bin/sh -e\necho \"shebang $0\" > /sb.txt\nEOF\n"
        "RUN cat <<EOT > /fed.txt\nfed by heredoc\nEOT\n"
        "RUN <<-EOF\n\techo chomped > /chomp.txt\nEOF\n")})
    pb.build(ctx, "-t", "heredocs")
    files = pb.flatten("heredocs")
    assert files["sb.txt"][1].startswith(b"shebang /")
    assert files["fed.txt"][1] == b"fed by heredoc\n"
    assert files["chomp.txt"][1] == b"chomped\n"
    assert not any(p.startswith(".pybuild-heredoc") for p in files)
