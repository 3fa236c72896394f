"""copyup.copy_tree: fd-based, links never followed, holes kept, iterative."""

from __future__ import annotations

import os
import stat

import pytest

from pyrunc.copyup import copy_tree


def _copy(src, dst) -> None:
    s = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
    d = os.open(dst, os.O_RDONLY | os.O_DIRECTORY)
    try:
        copy_tree(s, d)
    finally:
        os.close(s)
        os.close(d)


@pytest.fixture
def dirs(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    return src, dst


def test_files_dirs_links_modes_times(dirs, tmp_path):
    src, dst = dirs
    outside = tmp_path / "outside"
    outside.write_text("secret")
    (src / "d" / "e").mkdir(parents=True)
    (src / "d" / "e" / "f").write_text("f")
    (src / "x").write_text("x")
    os.chmod(src / "x", 0o751)
    os.utime(src / "x", ns=(1_000_000_000, 2_000_000_000))
    os.symlink(str(outside), src / "abs")
    os.symlink("x", src / "rel")
    os.chmod(src / "d", 0o555)
    _copy(src, dst)
    assert (dst / "d" / "e" / "f").read_text() == "f"
    assert stat.S_IMODE(os.stat(dst / "x").st_mode) == 0o751
    assert os.stat(dst / "x").st_mtime_ns == 2_000_000_000
    assert os.readlink(dst / "abs") == str(outside) and os.readlink(dst / "rel") == "x"
    assert stat.S_IMODE(os.stat(dst / "d").st_mode) == 0o555
    assert outside.read_text() == "secret"
    os.chmod(src / "d", 0o755)
    os.chmod(dst / "d", 0o755)


def test_sparse_file_keeps_its_holes(dirs):
    src, dst = dirs
    with open(src / "sparse", "wb") as f:
        f.write(b"head")
        f.seek(64 << 20)
        f.write(b"tail")
    _copy(src, dst)
    data = dst / "sparse"
    assert data.stat().st_size == (64 << 20) + 4
    assert data.stat().st_blocks * 512 < (1 << 20)
    with open(data, "rb") as f:
        assert f.read(4) == b"head"
        f.seek(64 << 20)
        assert f.read() == b"tail"
        f.seek(1 << 20)
        assert f.read(8) == b"\0" * 8


def test_empty_and_fully_hole_files(dirs):
    src, dst = dirs
    (src / "empty").write_bytes(b"")
    with open(src / "hole", "wb") as f:
        f.truncate(1 << 20)
    _copy(src, dst)
    assert (dst / "empty").read_bytes() == b""
    assert (dst / "hole").stat().st_size == 1 << 20


def test_deep_tree_without_recursion(dirs):
    """400 levels: far past what a recursive walk with a small stack budget would manage
    in init, and every open is relative to its parent's fd (no PATH_MAX)."""
    src, dst = dirs
    fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(400):
        os.mkdir("level-with-a-long-name", dir_fd=fd)
        nxt = os.open("level-with-a-long-name", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    os.close(os.open("leaf", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    os.close(fd)
    _copy(src, dst)
    fd = os.open(dst, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(400):
        nxt = os.open("level-with-a-long-name", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nxt
    assert os.listdir(fd) == ["leaf"]
    os.close(fd)


def test_fds_are_all_closed(dirs):
    src, dst = dirs
    for i in range(20):
        (src / f"d{i}" / "e").mkdir(parents=True)
        (src / f"d{i}" / "e" / "f").write_text("x")
    before = len(os.listdir("/proc/self/fd"))
    _copy(src, dst)
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod and chown need root")
def test_nodes_are_made_not_read_and_owners_kept(dirs):
    src, dst = dirs
    os.mknod(src / "zero", 0o640 | stat.S_IFCHR, os.makedev(1, 5))
    os.mkfifo(src / "fifo")
    (src / "owned").write_text("o")
    os.chown(src / "owned", 1234, 4321)
    os.symlink("owned", src / "link")
    os.lchown(src / "link", 1234, 4321)
    _copy(src, dst)
    st = os.lstat(dst / "zero")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 5)
    assert stat.S_ISFIFO(os.lstat(dst / "fifo").st_mode)
    assert (os.stat(dst / "owned").st_uid, os.stat(dst / "owned").st_gid) == (1234, 4321)
    assert os.lstat(dst / "link").st_uid == 1234
