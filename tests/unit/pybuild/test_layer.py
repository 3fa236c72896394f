"""layer.py / compress.py / unpack.py: deterministic tars, OCI whiteouts, parallel gzip, safe unpack."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybuild.compress import ParallelGzip, open_decompressed
from pybuild.layer import LayerError, is_empty_diff, recompress, tar_header, write_layer
from pybuild.unpack import UnpackError, unpack_tar

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="needs root (mknod, trusted.* xattrs, chown)")


def _tar_of(src, **kw) -> tuple[bytes, object]:
    out = io.BytesIO()
    result = write_layer(str(src), out, **kw)
    return out.getvalue(), result


def _members(data: bytes, compressed: bool = True) -> list[tarfile.TarInfo]:
    raw = gzip.decompress(data) if compressed else data
    with tarfile.open(fileobj=io.BytesIO(raw), encoding="utf-8", errors="surrogateescape") as tf:
        return tf.getmembers()


def _tree(base) -> None:
    (base / "b").mkdir(parents=True)
    (base / "a.txt").write_bytes(b"hello\n" * 100)
    (base / "b" / "z").write_bytes(b"z")
    (base / "b" / "y").write_bytes(b"")
    os.link(base / "a.txt", base / "b" / "hard")
    os.symlink("../a.txt", base / "b" / "sym")
    os.mkfifo(base / "fifo")
    os.setxattr(base / "b" / "z", "user.note", b"v\xff")
    for p in base.rglob("*"):
        os.utime(p, (1_700_000_000, 1_700_000_000), follow_symlinks=False)


def test_tar_is_deterministic_sorted_and_digests_match(tmp_path):
    _tree(tmp_path / "src")
    data, result = _tar_of(tmp_path / "src")
    data2, result2 = _tar_of(tmp_path / "src")
    assert data == data2 and result == result2
    raw = gzip.decompress(data)
    assert result.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert result.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert result.size == len(data) and result.uncompressed_size == len(raw)
    names = [m.name for m in _members(data)]
    assert names == ["a.txt", "b", "b/hard", "b/sym", "b/y", "b/z", "fifo"]
    for m in _members(data):
        assert m.uname == "" and m.gname == "" and "atime" not in m.pax_headers and "ctime" not in m.pax_headers
        assert m.mtime == 1_700_000_000


def test_entry_types_hardlinks_and_xattrs(tmp_path):
    _tree(tmp_path / "src")
    data, _ = _tar_of(tmp_path / "src")
    by = {m.name: m for m in _members(data)}
    assert by["a.txt"].isreg() and by["a.txt"].size == 600
    assert by["b/hard"].islnk() and by["b/hard"].linkname == "a.txt"
    assert by["b/sym"].issym() and by["b/sym"].linkname == "../a.txt"
    assert by["fifo"].isfifo()
    assert by["b"].isdir()
    value = by["b/z"].pax_headers["SCHILY.xattr.user.note"]
    assert value.encode("utf-8", "surrogateescape") == b"v\xff"


def test_gnu_tar_reads_the_output(tmp_path):
    _tree(tmp_path / "src")
    deep = tmp_path / "src" / ("d" * 120) / ("e" * 120)
    deep.mkdir(parents=True)
    (deep / ("f" * 99)).write_bytes(b"long")
    os.symlink("t" * 150, tmp_path / "src" / "longlink")
    data, _ = _tar_of(tmp_path / "src")
    (tmp_path / "l.tgz").write_bytes(data)
    out = subprocess.run(["tar", "-tzf", str(tmp_path / "l.tgz")], capture_output=True, text=True, check=True)
    assert f"{'d' * 120}/{'e' * 120}/{'f' * 99}" in out.stdout.splitlines()
    subprocess.run(["gzip", "-t", str(tmp_path / "l.tgz")], check=True)
    by = {m.name: m for m in _members(data)}
    assert by["longlink"].linkname == "t" * 150


def test_source_date_epoch_clamps_mtimes(tmp_path):
    _tree(tmp_path / "src")
    _, plain = _tar_of(tmp_path / "src")
    data, clamped = _tar_of(tmp_path / "src", source_date_epoch=1000)
    assert plain.diff_id != clamped.diff_id
    assert {m.mtime for m in _members(data)} == {1000}


def test_exclude_drops_subtrees(tmp_path):
    _tree(tmp_path / "src")
    data, _ = _tar_of(tmp_path / "src", exclude=["/b", "fifo"])
    assert [m.name for m in _members(data)] == ["a.txt"]


def test_user_overlay_opaque_becomes_oci_opaque_whiteout(tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "kept").write_bytes(b"x")
    os.setxattr(src / "d", "user.overlay.opaque", b"y")
    os.setxattr(src / "d", "user.overlay.impure", b"y")
    data, _ = _tar_of(src)
    members = _members(data)
    assert [m.name for m in members] == ["d", "d/.wh..wh..opq", "d/kept"]
    assert not any(k.startswith("SCHILY.xattr") for m in members for k in m.pax_headers)


def test_overlay_redirect_is_refused(tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    os.setxattr(src / "d", "user.overlay.redirect", b"/x")
    with pytest.raises(LayerError, match="redirect_dir=off"):
        _tar_of(src)


@needs_root
def test_overlay_whiteouts_become_oci_and_back(tmp_path):
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    os.mknod(src / "etc" / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (src / "opq").mkdir()
    os.setxattr(src / "opq", "trusted.overlay.opaque", b"y")
    (src / "opq" / "new").write_bytes(b"n")
    os.chown(src / "opq" / "new", 1234, 5678)
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    data, result = _tar_of(src)
    by = {m.name: m for m in _members(data)}
    assert by["etc/.wh.gone"].isreg() and by["etc/.wh.gone"].size == 0
    assert "opq/.wh..wh..opq" in by
    assert "etc/gone" not in by
    assert by["null"].ischr() and (by["null"].devmajor, by["null"].devminor) == (1, 3)
    assert (by["opq/new"].uid, by["opq/new"].gid) == (1234, 5678)
    dest = tmp_path / "dest"
    dest.mkdir()
    diff_id, _ = unpack_tar(io.BytesIO(gzip.decompress(data)), str(dest), mode="overlay")
    assert diff_id == result.diff_id
    st = os.lstat(dest / "etc" / "gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(dest / "opq", "trusted.overlay.opaque") == b"y"
    assert os.stat(dest / "opq" / "new").st_uid == 1234
    _, again = _tar_of(dest)
    assert again.diff_id == result.diff_id  # unpack -> pack is the identity


@needs_root
def test_file_capabilities_survive(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy("/bin/busybox", src / "ping")
    cap = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_raw=ep (v2)
    os.setxattr(src / "ping", "security.capability", cap)
    data, _ = _tar_of(src)
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_tar(io.BytesIO(gzip.decompress(data)), str(dest))
    assert os.getxattr(dest / "ping", "security.capability") == cap


def test_roundtrip_unprivileged_tree(tmp_path):
    _tree(tmp_path / "src")
    data, result = _tar_of(tmp_path / "src", compression="none")
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_tar(io.BytesIO(data), str(dest))
    assert os.stat(dest / "a.txt").st_ino == os.stat(dest / "b" / "hard").st_ino
    assert os.readlink(dest / "b" / "sym") == "../a.txt"
    assert os.getxattr(dest / "b" / "z", "user.note") == b"v\xff"
    _, again = _tar_of(dest, compression="none")
    assert again.diff_id == result.diff_id


def test_zstd_layer(tmp_path):
    import zstandard
    _tree(tmp_path / "src")
    data, result = _tar_of(tmp_path / "src", compression="zstd")
    assert result.media_type == "application/vnd.oci.image.layer.v1.tar+zstd"
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == result.diff_id
    assert open_decompressed(io.BytesIO(data)).read() == raw


def test_empty_tree_and_is_empty_diff(tmp_path):
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "hosts").write_bytes(b"")
    assert is_empty_diff(str(src), exclude=["/etc/hosts"])
    assert not is_empty_diff(str(src))
    (src / "etc" / "new").write_bytes(b"")
    assert not is_empty_diff(str(src), exclude=["/etc/hosts"])
    empty = tmp_path / "empty"
    empty.mkdir()
    data, result = _tar_of(empty)
    assert result.entries == 0 and gzip.decompress(data) == b"\0" * 1024


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=300_000), max_size=6),
       threads=st.integers(min_value=1, max_value=4), level=st.sampled_from([1, 6]))
def test_parallel_gzip_is_one_valid_stream(sizes, threads, level):
    import random
    rng = random.Random(sum(sizes))
    chunks = [bytes(rng.getrandbits(8) for _ in range(min(n, 2000))) * (n // 2000 + 1) for n in sizes]
    chunks = [c[:n] for c, n in zip(chunks, sizes)]
    out = io.BytesIO()
    gz = ParallelGzip(out, level=level, threads=threads, block=65536)
    for chunk in chunks:
        gz.write(chunk)
    gz.close()
    data = out.getvalue()
    assert gzip.decompress(data) == b"".join(chunks)
    assert open_decompressed(io.BytesIO(data)).read() == b"".join(chunks)
    # one member: zlib stops exactly at the end of the stream
    d = __import__("zlib").decompressobj(31)
    d.decompress(data)
    assert d.eof and d.unused_data == b""


def test_recompress_tar_file(tmp_path):
    _tree(tmp_path / "src")
    plain, result = _tar_of(tmp_path / "src", compression="none")
    out = io.BytesIO()
    again = recompress(io.BytesIO(gzip.compress(plain)), out, "gzip")
    assert again.diff_id == result.diff_id
    with pytest.raises(LayerError, match="not a tar"):
        recompress(io.BytesIO(b"hello" * 200), io.BytesIO())


# ---- unpack safety ---------------------------------------------------------------------------
def _crafted(entries) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, extra in entries:
            info = tarfile.TarInfo(name)
            info.mode = 0o644
            data = b""
            if kind == "file":
                data = extra or b"x"
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
            elif kind == "sym":
                info.type = tarfile.SYMTYPE
                info.linkname = extra
            elif kind == "hard":
                info.type = tarfile.LNKTYPE
                info.linkname = extra
            tf.addfile(info, io.BytesIO(data) if data else None)
    buf.seek(0)
    return buf


def test_dotdot_is_refused(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnpackError, match="escapes the root"):
        unpack_tar(_crafted([("../evil", "file", None)]), str(dest))
    assert not (tmp_path / "evil").exists()


def test_absolute_names_land_inside(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_tar(_crafted([("/abs/file", "file", b"in")]), str(dest))
    assert (dest / "abs" / "file").read_bytes() == b"in"


def test_symlink_traversal_stays_inside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_tar(_crafted([("link", "sym", str(outside)), ("link/pwned", "file", b"x"),
                         ("rel", "sym", "../../../../.."), ("rel/pwned2", "file", b"y")]), str(dest))
    assert os.listdir(outside) == []
    assert (dest / str(outside).lstrip("/") / "pwned").read_bytes() == b"x"
    assert (dest / "pwned2").read_bytes() == b"y"


def test_hardlink_outside_is_refused(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnpackError, match="escapes the root"):
        unpack_tar(_crafted([("h", "hard", "../../etc/passwd")]), str(dest))
    with pytest.raises(UnpackError, match="not found"):
        unpack_tar(_crafted([("h", "hard", "etc/passwd")]), str(dest))


def test_symlink_over_existing_file_is_replaced_not_followed(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_tar(_crafted([("f", "sym", str(target)), ("f", "file", b"new")]), str(dest))
    assert target.read_bytes() == b"keep"
    assert (dest / "f").read_bytes() == b"new" and not (dest / "f").is_symlink()


def test_apply_mode_whiteouts(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack_tar(_crafted([("d", "dir", None), ("d/old", "file", b"1"), ("gone", "file", b"2"),
                         ("o", "dir", None), ("o/lower", "file", b"3")]), str(dest), mode="apply")
    unpack_tar(_crafted([(".wh.gone", "file", None), ("o", "dir", None), ("o/upper", "file", b"4"),
                         ("o/.wh..wh..opq", "file", None), ("d/new", "file", b"5"), ("d/.wh.new", "file", None)]),
               str(dest), mode="apply")
    assert not (dest / "gone").exists()
    assert sorted(os.listdir(dest / "o")) == ["upper"]
    assert sorted(os.listdir(dest / "d")) == ["new", "old"]  # a whiteout never hides its own layer


def test_unknown_mode_and_overlay_xattrs_are_refused(tmp_path):
    with pytest.raises(UnpackError, match="unknown mode"):
        unpack_tar(_crafted([]), str(tmp_path), mode="merge")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("d")
        info.type = tarfile.DIRTYPE
        info.pax_headers = {"SCHILY.xattr.trusted.overlay.redirect": "/etc"}
        tf.addfile(info)
    buf.seek(0)
    with pytest.raises(UnpackError, match="refusing overlay xattr"):
        unpack_tar(buf, str(tmp_path))


def test_tar_header_long_values():
    header = tar_header(b"x" * 300, 0o644, 3_000_000, 1, 0, 0, b"0")
    with tarfile.open(fileobj=io.BytesIO(header + b"\0" * 1024)) as tf:
        [m] = tf.getmembers()
    assert m.name == "x" * 300 and m.uid == 3_000_000


@pytest.mark.skipif(ROOT, reason="root reads any file")
def test_unreadable_file_names_the_path(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "secret").write_bytes(b"x")
    os.chmod(src / "secret", 0)
    with pytest.raises(LayerError, match="secret: Permission denied"):
        _tar_of(src)


def test_vanished_path_names_the_path(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "gone").write_bytes(b"x")
    real_lstat = os.lstat

    def flaky_lstat(path, *args, **kwargs):
        if str(path).endswith("gone"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", flaky_lstat)
    with pytest.raises(LayerError, match="gone: No such file or directory"):
        _tar_of(src)
