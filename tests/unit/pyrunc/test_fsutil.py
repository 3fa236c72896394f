"""fsutil: temp files that no planted name can redirect, appends that never
create through a dangling link, removal that never leaves its tree."""

from __future__ import annotations

import os
import subprocess

import pytest

from pyrunc import fsutil


def _canary(tmp_path) -> str:
    target = tmp_path / "victim"
    target.write_text("precious\n")
    return str(target)


def test_atomic_write_replaces_a_symlink_at_the_destination(tmp_path):
    victim = _canary(tmp_path)
    dest = tmp_path / "pid"
    os.symlink(victim, dest)
    fsutil.atomic_write(str(dest), b"42", durable=False)
    assert not dest.is_symlink() and dest.read_text() == "42"
    assert open(victim).read() == "precious\n"


def test_temp_names_are_unpredictable(tmp_path):
    names = {fsutil.temp_name("config.json") for _ in range(64)}
    assert len(names) == 64
    assert all(n.startswith(".config.json.") and n.endswith(".tmp") for n in names)
    assert not any(n.endswith(f".tmp{os.getpid()}") for n in names)  # the old, guessable scheme


def test_temp_name_fits_name_max():
    assert len(fsutil.temp_name("x" * 255)) <= 255


def test_planted_temp_name_is_never_written_through(tmp_path, monkeypatch):
    """Make the first random draws collide with planted symlinks: the open
    must fail on them (O_EXCL|O_NOFOLLOW) and pick another name."""
    victim = _canary(tmp_path)
    draws = [b"\x00" * 12, b"\x00" * 12, b"\x01" * 12]
    real = os.urandom
    monkeypatch.setattr(os, "urandom", lambda n: draws.pop(0) if draws else real(n))
    planted = tmp_path / f".pid.{'00' * 12}.tmp"
    os.symlink(victim, planted)
    fsutil.atomic_write(str(tmp_path / "pid"), b"7", durable=False)
    assert (tmp_path / "pid").read_text() == "7"
    assert open(victim).read() == "precious\n"
    assert planted.is_symlink()  # the attacker's file is not ours to remove
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["pid", "victim", planted.name])


def test_atomic_write_leaves_no_temp_on_failure(tmp_path):
    os.mkdir(tmp_path / "dir")
    with pytest.raises(OSError):
        fsutil.atomic_write(str(tmp_path / "dir"), b"x", durable=False)  # rename over a directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"]


def test_atomic_write_durable(tmp_path):
    fsutil.atomic_write(str(tmp_path / "f"), b"abc", 0o600)
    assert (tmp_path / "f").read_bytes() == b"abc"
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o600 & ~_umask()


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_open_append_follows_an_existing_link(tmp_path):
    real = tmp_path / "real.log"
    real.write_text("a\n")
    os.symlink(real, tmp_path / "log")
    fd = fsutil.open_append(str(tmp_path / "log"))
    os.write(fd, b"b\n")
    os.close(fd)
    assert real.read_text() == "a\nb\n"


def test_open_append_refuses_a_dangling_link(tmp_path):
    target = tmp_path / "would-be-created"
    os.symlink(target, tmp_path / "log")
    with pytest.raises(OSError):
        fsutil.open_append(str(tmp_path / "log"))
    assert not target.exists()


def test_open_append_creates_a_new_file(tmp_path):
    fd = fsutil.open_append(str(tmp_path / "new.log"))
    os.close(fd)
    assert (tmp_path / "new.log").is_file()


def test_rmtree_does_not_follow_links(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "f").write_text("y")
    os.symlink(outside, tree / "a" / "link")
    os.symlink(outside / "keep", tree / "filelink")
    fsutil.rmtree_nofollow(str(tree))
    assert not tree.exists()
    assert (outside / "keep").read_text() == "x"


def test_rmtree_of_a_symlink_removes_the_link_only(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    os.symlink(outside, tmp_path / "link")
    fsutil.rmtree_nofollow(str(tmp_path / "link"))
    assert not os.path.lexists(tmp_path / "link")
    assert (outside / "keep").exists()


def test_rmtree_missing_is_fine(tmp_path):
    fsutil.rmtree_nofollow(str(tmp_path / "nope"))
    fsutil.rmtree_nofollow(str(tmp_path / "nope" / "deeper"))


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_rmtree_refuses_to_cross_a_bind_mount_of_the_same_filesystem(tmp_path):
    """st_dev cannot tell a bind mount of the same filesystem: RESOLVE_NO_XDEV can."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    tree = tmp_path / "tree"
    (tree / "m").mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(outside), str(tree / "m")], check=True)
    try:
        with pytest.raises(OSError) as info:
            fsutil.rmtree_nofollow(str(tree))
        assert "mount point" in str(info.value)
        assert (outside / "keep").read_text() == "x"
    finally:
        subprocess.run(["umount", "-l", str(tree / "m")], check=True)
