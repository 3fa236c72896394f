"""pybuild.unpack's rules for hostile layers (issue 11): whiteout names, removals only of what the
unpack made, metadata passes that never follow a link. No root needed."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from pybuild.unpack import UnpackError, unpack_tar, whiteout_target


def _tar(entries) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, extra, *mtime in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o755 if kind == "dir" else 0o644
            info.mtime = mtime[0] if mtime else 1_600_000_000
            data = b""
            if kind == "file":
                data = extra or b""
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, extra
            tf.addfile(info, io.BytesIO(data) if kind == "file" else None)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("base,expected", [
    ("file", None), (".whx", None), (".wh.x", "x"), (".wh..wh..opq", ""), (".wh..hidden", ".hidden"),
    (".wh..wh.plnk", ".wh.plnk"), (".wh....", "..."),
])
def test_whiteout_target(base, expected):
    assert whiteout_target(base) == expected


@pytest.mark.parametrize("base", [".wh.", ".wh..", ".wh..."])
def test_whiteout_target_refuses_names_outside_the_directory(base):
    with pytest.raises(UnpackError, match="invalid whiteout name"):
        whiteout_target(base, f"d/{base}")


@pytest.mark.parametrize("mode", ["overlay", "apply"])
@pytest.mark.parametrize("name", [".wh...", ".wh..", ".wh.", "d/.wh...", "d/e/.wh.."])
def test_invalid_whiteouts_touch_nothing(tmp_path, mode, name):
    parent = tmp_path / "parent"
    dest = parent / "dest"
    dest.mkdir(parents=True)
    (parent / "sibling").write_text("keep")
    (dest / "old").write_text("keep")
    with pytest.raises(UnpackError, match="invalid whiteout name"):
        unpack_tar(_tar([("d", "dir", None), ("d/e", "dir", None), ("d/f", "file", b"1"), (name, "file", None)]),
                   str(dest), mode=mode)
    assert (parent / "sibling").read_text() == "keep" and (dest / "old").read_text() == "keep"
    assert (dest / "d" / "f").read_text() == "1"


def test_apply_over_a_foreign_tree_removes_only_what_it_made(tmp_path):
    dest = tmp_path / "dest"
    (dest / "keep").mkdir(parents=True)
    (dest / "keep" / "mine").write_text("user")
    (dest / "opq").mkdir()
    (dest / "opq" / "mine").write_text("user")
    (dest / "top").write_text("user")
    owned: set = set()
    unpack_tar(_tar([("keep", "dir", None), ("keep/img", "file", b"i"), ("opq", "dir", None),
                     ("opq/img", "file", b"i"), ("new", "dir", None), ("new/img", "file", b"i")]),
               str(dest), mode="apply", owned=owned)
    unpack_tar(_tar([(".wh.keep", "file", None), ("opq/.wh..wh..opq", "file", None), (".wh.new", "file", None),
                     (".wh.top", "file", None)]), str(dest), mode="apply", owned=owned)
    assert sorted(os.listdir(dest / "keep")) == ["mine"]
    assert sorted(os.listdir(dest / "opq")) == ["mine"]
    assert not (dest / "new").exists()
    assert (dest / "top").read_text() == "user"
    # a fresh dir (owned=None) is all the unpack's: everything hidden goes
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    unpack_tar(_tar([("keep", "dir", None), ("keep/img", "file", b"i")]), str(fresh), mode="apply")
    unpack_tar(_tar([(".wh.keep", "file", None)]), str(fresh), mode="apply")
    assert os.listdir(fresh) == []


def test_replacing_a_foreign_directory_with_files_left_in_it_is_refused(tmp_path):
    dest = tmp_path / "dest"
    (dest / "d").mkdir(parents=True)
    (dest / "d" / "mine").write_text("user")
    with pytest.raises(UnpackError, match="did not write"):
        unpack_tar(_tar([("d", "file", b"x")]), str(dest), mode="apply", owned=set())
    assert (dest / "d" / "mine").read_text() == "user"


def test_whiteouts_in_apply_mode_create_no_directories(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_tar(_tar([("a/b/.wh.c", "file", None), ("x/.wh..wh..opq", "file", None)]), str(dest), mode="apply")
    assert os.listdir(dest) == []


def test_directory_times_never_follow_a_later_symlink(tmp_path):
    """`dd/` then `dd -> <elsewhere>`: the final mtime pass must not touch what the link names."""
    outside = tmp_path / "outside"
    outside.mkdir()
    os.utime(outside, (1000, 1000))
    dest = tmp_path / "dest"
    (dest / "etc").mkdir(parents=True)
    os.utime(dest / "etc", (2000, 2000))
    for target in (str(outside), "/etc", "../../outside"):
        unpack_tar(_tar([("dd", "dir", None, 123), ("dd/f", "file", b"x"), ("dd", "sym", target)]), str(dest),
                   mode="apply")
        assert os.stat(outside).st_mtime == 1000
        assert os.stat(dest / "etc").st_mtime == 2000
        os.unlink(dest / "dd")
