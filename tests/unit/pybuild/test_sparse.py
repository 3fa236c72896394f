"""pybuild.sparse: streams written with holes for zero blocks, copies that keep holes; content
always identical (property test over random streams of data and zero runs)."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.fsutil import BLOCK, SparseWriter, copy_file_data, data_segments

_piece = st.one_of(st.integers(1, 3 * BLOCK).map(bytes),                       # zeros
                   st.binary(min_size=1, max_size=3 * BLOCK).filter(any))      # data


def _write(path, pieces) -> bytes:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        out = SparseWriter(fd)
        for p in pieces:
            out.write(p)
        out.finish()
    finally:
        os.close(fd)
    return b"".join(pieces)


@settings(max_examples=60, deadline=None)
@given(st.lists(_piece, max_size=12))
def test_stream_content_is_exact(tmp_path_factory, pieces):
    path = tmp_path_factory.mktemp("sp") / "f"
    expected = _write(path, pieces)
    assert path.read_bytes() == expected
    copy = path.with_name("copy")
    src = os.open(path, os.O_RDONLY)
    dst = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        copy_file_data(src, dst, len(expected))
    finally:
        os.close(src)
        os.close(dst)
    assert copy.read_bytes() == expected


def test_zero_blocks_become_holes_and_copies_keep_them(tmp_path):
    path = tmp_path / "f"
    size = 64 << 20
    expected = _write(path, [b"head", bytes(size), b"tail"])
    if os.stat(path).st_blocks * 512 > 1 << 20:
        import pytest
        pytest.skip("this filesystem does not keep holes")
    assert path.read_bytes() == expected
    fd = os.open(path, os.O_RDONLY)
    try:
        segments = data_segments(fd, len(expected))
        assert sum(n for _, n in segments) < 1 << 20 and segments[0][0] == 0
        dst = os.open(tmp_path / "copy", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            copy_file_data(fd, dst, len(expected))
        finally:
            os.close(dst)
    finally:
        os.close(fd)
    assert os.stat(tmp_path / "copy").st_blocks * 512 < 1 << 20
    assert (tmp_path / "copy").read_bytes() == expected


def test_trailing_hole_and_empty_file(tmp_path):
    assert _write(tmp_path / "a", [b"x", bytes(3 * BLOCK)]) == (tmp_path / "a").read_bytes()
    assert os.stat(tmp_path / "a").st_size == 1 + 3 * BLOCK
    assert _write(tmp_path / "b", []) == b"" and os.stat(tmp_path / "b").st_size == 0
