"""Fuzzing image archives and layer tars (issue 18): truncated, wrong digests, hostile tar headers.

- `load_archive` (pybuild load, FROM docker-archive:/oci-archive:) on mutated docker and OCI archives:
  a PybuildError (one line) or a correct result; never another exception; what it stored is sound
  (fsck finds no error: a blob is only kept whole and verified); nothing is written outside the store.
- `unpack_tar` (every layer pybuild unpacks) on generated hostile tars: `..` and absolute names,
  links out of the tree and entries through them, hard links to outside, devices, sizes that lie,
  truncation: an UnpackError/PybuildError or a tree that stays inside dest; a canary tree beside
  dest is never touched.

PYRUNC_FUZZ_EXAMPLES=N runs N examples per test (default: a short run).
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import shutil
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybuild.baseimage import load_archive
from pybuild.errors import PybuildError
from pybuild.export import write_docker_archive, write_oci_archive
from pybuild.fsck import check
from pybuild.layer import commit_layer
from pybuild.mutate import Mutator
from pybuild.store import Store
from pybuild.unpack import unpack_tar

EXAMPLES = int(os.environ.get("PYRUNC_FUZZ_EXAMPLES", "0")) or None
FUZZ = settings(max_examples=EXAMPLES or 60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def _tree(tmp_path_factory) -> dict[str, bytes]:
    """One valid docker-archive and one OCI archive of a two-layer image."""
    base = tmp_path_factory.mktemp("fuzz-archives")
    store = Store(str(base / "store"))
    m = Mutator(store)
    for i, files in enumerate(({"bin/sh": b"#!x\n" * 50, "etc/passwd": b"root:x:0:0::/:/bin/sh\n"},
                               {"data/blob": os.urandom(3000), "data/link": None})):
        tree = base / f"layer{i}"
        for rel, data in files.items():
            path = tree / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if data is None:
                os.symlink("blob", path)
            else:
                path.write_bytes(data)
        desc, digests = commit_layer(store, str(tree))
        m.add_layer(desc, digests.diff_id, f"layer {i}")
    manifest = m.commit()
    store.tag("fuzz:1", manifest)
    image = store.load_image("fuzz:1")
    out = {}
    for name, writer in (("docker", write_docker_archive), ("oci", write_oci_archive)):
        buf = io.BytesIO()
        writer(store, [(image, ["fuzz:1"])], buf)
        out[name] = buf.getvalue()
    return out


class _Archives(dict):
    def __repr__(self) -> str:  # hypothesis prints its arguments when an example fails
        return f"<archives {', '.join(f'{k}: {len(v)} bytes' for k, v in self.items())}>"


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, bytes]:
    return _Archives(_tree(tmp_path_factory))


def _mutate(data: bytes, draw) -> bytes:  # type: ignore[no-untyped-def]
    """Truncate, flip bytes, or rewrite a tar header field (names, sizes, types, link names)."""
    out = bytearray(data)
    kind = draw(st.sampled_from(["truncate", "flip", "header", "json"]))
    if kind == "truncate":
        return bytes(out[:draw(st.integers(0, len(out)))])
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            pos = draw(st.integers(0, len(out) - 1))
            out[pos] ^= draw(st.integers(1, 255))
        return bytes(out)
    headers = [i for i in range(0, len(out) - 512, 512) if out[i + 257:i + 262] == b"ustar"]
    if kind == "json":  # change a digest or a size inside manifest.json / index.json / a manifest blob
        text = out.decode("latin-1")
        spots = [i for i in range(len(text)) if text.startswith(("sha256:", '"size":'), i)]
        if spots:
            pos = draw(st.sampled_from(spots)) + 8
            out[pos] = ord(draw(st.sampled_from("0123456789abcdef")))
        return bytes(out)
    if not headers:
        return bytes(out)
    at = draw(st.sampled_from(headers))
    field = draw(st.sampled_from([(0, 100), (124, 12), (156, 1), (157, 100)]))  # name, size, type, linkname
    value = draw(st.sampled_from([b"../../../escape", b"/etc/passwd", b"77777777777", b"2", b"1", b"5",
                                  b"blobs/sha256/" + b"0" * 64, b"manifest.json", b"\xff\xfe", b""]))
    out[at + field[0]:at + field[0] + field[1]] = value[:field[1]].ljust(field[1], b"\0")
    chk = sum(out[at:at + 148]) + 8 * 32 + sum(out[at + 156:at + 512])  # keep the checksum valid
    out[at + 148:at + 156] = b"%06o\0 " % chk
    return bytes(out)


@FUZZ
@given(st.sampled_from(["docker", "oci"]), st.data())
def test_load_of_a_damaged_archive(archives, tmp_path_factory, fmt: str, data) -> None:
    work = tmp_path_factory.mktemp("load")
    path = str(work / "image.tar")
    with open(path, "wb") as fh:
        fh.write(_mutate(archives[fmt], data.draw))
    store = Store(str(work / "store"))
    try:
        loaded = load_archive(store, path)
    except PybuildError as err:
        assert "\n" not in str(err) and str(err)
    else:
        for image, _names in loaded:  # a correct result: a whole, verified image
            assert len(image.manifest.layers) == len(image.config.rootfs.diff_ids)
            for layer in image.manifest.layers:
                store.verify_blob(layer.digest)
    assert check(store).errors == []
    assert sorted(os.listdir(work)) == ["image.tar", "store"]


# ---- hostile layer tars ----------------------------------------------------------------------------
# A host file at a fixed path, so that absolute link targets can name it: never changed, never linked.
HOST_CANARY = f"/tmp/pybuild-fuzz-canary-{os.getuid()}/file"
NAMES = st.sampled_from(["a", "a/b", "../a", "../../x", "/abs", "./a/../../y", "link", "link/z", "dir", "dir/f",
                         "hl", ".wh.a", "a/.wh..wh..opq", ".wh...", "é/ü", "x" * 255, "d/" * 40 + "deep", "", ".",
                         "out", "out/pwn", "../canary/file", "link/file", HOST_CANARY, ".wh.file", "link/.wh.file"])
TARGETS = st.sampled_from(["/", "..", "../..", "../canary", "../canary/file", "out", "dir", "a", "/etc/passwd", "link",
                           "missing", "", HOST_CANARY, os.path.dirname(HOST_CANARY), "link/file"])


@st.composite
def hostile_tar(draw) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    fmt = draw(st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]))
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for _ in range(draw(st.integers(1, 8))):
            name = draw(NAMES)
            kind = draw(st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                                         tarfile.CHRTYPE, tarfile.FIFOTYPE]))
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = draw(st.sampled_from([0o644, 0o4755, 0o777, 0o000]))
            target = draw(TARGETS)
            info.linkname = target
            if kind == tarfile.CHRTYPE:
                info.devmajor, info.devminor = 1, 3
            data = draw(st.binary(max_size=64)) if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            try:
                tf.addfile(info, io.BytesIO(data) if data else None)
            except (ValueError, tarfile.TarError):
                continue  # a name ustar cannot hold: the generator's limit, not the unpacker's
    raw = buf.getvalue()
    if draw(st.booleans()):
        raw = raw[:draw(st.integers(0, len(raw)))]
    return raw


@pytest.fixture(scope="module", autouse=True)
def _remove_host_canary():
    yield
    shutil.rmtree(os.path.dirname(HOST_CANARY), ignore_errors=True)


@FUZZ
@given(hostile_tar(), st.sampled_from(["overlay", "apply"]))
def test_unpack_of_a_hostile_layer_stays_inside(tmp_path_factory, raw: bytes, mode: str) -> None:
    work = tmp_path_factory.mktemp("unpack")
    canaries = [work / "canary", pathlib.Path(os.path.dirname(HOST_CANARY))]
    for canary in canaries:
        canary.mkdir(exist_ok=True)
        (canary / "file").write_bytes(b"host\n")
    dest = work / "dest"
    dest.mkdir()
    try:
        unpack_tar(io.BytesIO(raw), str(dest), mode=mode)
    except PybuildError as err:
        assert "\n" not in str(err)
    assert sorted(os.listdir(work)) == ["canary", "dest"], "written outside dest"
    for canary in canaries:
        assert os.listdir(canary) == ["file"] and (canary / "file").read_bytes() == b"host\n", canary
        assert os.lstat(canary / "file").st_nlink == 1, "a hard link to a host file was made"
    for dirpath, dirs, files in os.walk(dest):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            assert os.path.realpath(os.path.dirname(full)).startswith(str(dest)), full


def test_the_fuzzer_starts_from_loadable_archives(archives, tmp_path) -> None:
    for fmt, data in archives.items():
        path = tmp_path / f"{fmt}.tar"
        path.write_bytes(data)
        loaded = load_archive(Store(str(tmp_path / f"store-{fmt}")), str(path))
        assert [names for _, names in loaded] == [["fuzz:1"]] or fmt == "oci", loaded
        assert json.dumps([i.id for i, _ in loaded])
