"""store.py: atomic verified blobs, tags in index.json, unpacked layers by chainID, gc."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os

import pytest

from pybuild.errors import DigestMismatch, ImageNotFound, StoreError
from pybuild.image import MT_MANIFEST, Descriptor, chain_ids
from pybuild.layer import commit_layer
from pybuild.mutate import Mutator
from pybuild.store import Store, normalize_name


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "root"))


def _image(store: Store, tree, name: str | None = None, files: dict[str, bytes] | None = None):
    for rel, data in (files or {"hello": b"hi"}).items():
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    desc, digests = commit_layer(store, str(tree))
    m = Mutator(store)
    m.add_layer(desc, digests.diff_id, "test")
    m.update(cmd=("sh",))
    manifest = m.commit()
    if name:
        store.tag(name, manifest)
    return manifest, digests


def test_layout_files(store):
    assert json.loads(open(os.path.join(store.root, "oci-layout")).read()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(open(store.index_path).read())
    assert index["schemaVersion"] == 2 and index["manifests"] == []
    assert os.path.isdir(store.blob_dir)


def test_put_and_read_blob_verified(store):
    digest = store.put_blob(b"data")
    assert digest == _digest(b"data")
    assert store.read_blob(digest) == b"data"
    with open(store.blob_path(digest), "wb") as f:
        f.write(b"evil")
    with pytest.raises(DigestMismatch, match="digest mismatch"):
        store.read_blob(digest)
    with pytest.raises(DigestMismatch), store.open_blob(digest) as reader:
        reader.drain()


def test_digest_is_validated_before_use_as_a_path(store):
    for bad in ("sha256:../../etc/passwd", "md5:abc", "sha256:" + "A" * 64, ""):
        with pytest.raises(StoreError, match="invalid digest"):
            store.blob_path(bad)


def test_blob_writer_leaves_nothing_on_mismatch_or_abort(store):
    with store.blob_writer() as writer:
        writer.write(b"abc")
        with pytest.raises(DigestMismatch):
            writer.commit(_digest(b"xyz"))
    with store.blob_writer() as writer:
        writer.write(b"abc")  # never committed
    assert os.listdir(store.blob_dir) == []


def test_ingest_checks_expected_digest(store):
    with pytest.raises(DigestMismatch):
        store.ingest(io.BytesIO(b"abc"), _digest(b"abd"))
    assert os.listdir(store.blob_dir) == []
    assert store.ingest(io.BytesIO(b"abc"), _digest(b"abc")) == (_digest(b"abc"), 3)


def test_tag_resolve_untag(store, tmp_path):
    manifest, _ = _image(store, tmp_path / "t", "app")
    assert store.resolve("app") == store.resolve("app:latest")
    assert store.resolve("app").digest == manifest.digest
    image = store.load_image("app")
    assert image.name == "app"
    assert store.resolve(image.id[7:19]).digest == manifest.digest  # image ID prefix
    assert store.resolve(manifest.digest).digest == manifest.digest
    store.tag("app:2", manifest)
    refs = [name for name, _ in store.list_refs()]
    assert refs == ["app", "app:2"]
    store.untag("app")
    with pytest.raises(ImageNotFound, match="image not found: app"):
        store.resolve("app")
    with pytest.raises(ImageNotFound):
        store.untag("nope")


def test_retag_replaces(store, tmp_path):
    first, _ = _image(store, tmp_path / "a", "x", {"f": b"1"})
    second, _ = _image(store, tmp_path / "b", "x", {"f": b"2"})
    refs = store.list_refs()
    assert len(refs) == 1 and refs[0][1].digest == second.digest


def test_normalize_name():
    assert normalize_name("a:latest") == "a"
    assert normalize_name("reg:5000/a") == "reg:5000/a"
    assert normalize_name("reg:5000/a:latest") == "reg:5000/a"
    with pytest.raises(StoreError):
        normalize_name("a b")


def _tag_many(root: str, worker: int, digest: str, size: int) -> None:
    store = Store(root)
    for i in range(10):
        store.tag(f"w{worker}:{i}", Descriptor(MT_MANIFEST, digest, size))


def test_concurrent_tags_are_all_kept(store):
    digest = store.put_blob(b"{}")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_tag_many, args=(store.root, w, digest, 2)) for w in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert len(store.list_refs()) == 60


def test_ensure_layer_unpacks_once_and_verifies(store, tmp_path):
    manifest, digests = _image(store, tmp_path / "t", "app", {"dir/file": b"content"})
    image = store.load_image("app")
    [path] = store.ensure_layers(image.manifest, image.config)
    assert open(os.path.join(path, "dir", "file"), "rb").read() == b"content"
    record = store.layer_record(digests.diff_id)
    assert record.diff_id == digests.diff_id and record.parent is None
    assert record.size == digests.uncompressed_size
    assert os.path.basename(os.path.dirname(path)) == digests.diff_id[7:]  # no ':' (overlay option separator)
    again = store.ensure_layers(image.manifest, image.config)
    assert again == [path]


def test_ensure_layer_refuses_wrong_diff_id(store, tmp_path):
    _, digests = _image(store, tmp_path / "t", "app")
    image = store.load_image("app")
    wrong = _digest(b"not the diff")
    with pytest.raises(DigestMismatch, match="diffID"):
        store.ensure_layer(wrong, None, wrong, image.manifest.layers[0])
    assert not store.has_layer(wrong)
    assert [e for e in os.listdir(store.layers_root)] == []


def test_ensure_layer_refuses_corrupt_blob(store, tmp_path):
    _, digests = _image(store, tmp_path / "t", "app")
    image = store.load_image("app")
    path = store.blob_path(image.manifest.layers[0].digest)
    data = bytearray(open(path, "rb").read())
    data[-12] ^= 0xFF  # inside the deflate stream's tail / crc
    open(path, "wb").write(bytes(data))
    with pytest.raises(DigestMismatch, match=image.manifest.layers[0].digest):
        store.ensure_layers(image.manifest, image.config)
    assert os.listdir(store.layers_root) == []


def test_layer_parent_chain(store, tmp_path):
    _image(store, tmp_path / "a", "base", {"a": b"1"})
    base = store.load_image("base")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "b").write_bytes(b"2")
    desc, digests = commit_layer(store, str(tmp_path / "b"))
    m = Mutator(store, base)
    m.add_layer(desc, digests.diff_id, "RUN b")
    store.tag("child", m.commit())
    child = store.load_image("child")
    dirs = store.ensure_layers(child.manifest, child.config)
    chains = chain_ids(child.config.rootfs.diff_ids)
    assert len(dirs) == 2
    assert store.layer_record(chains[1]).parent == chains[0]


def test_gc_removes_unreferenced_and_temp(store, tmp_path):
    _image(store, tmp_path / "a", "keep", {"a": b"1"})
    _image(store, tmp_path / "b", "drop", {"b": b"2"})
    for name in ("keep", "drop"):
        image = store.load_image(name)
        store.ensure_layers(image.manifest, image.config)
    store.untag("drop")
    os.mkdir(os.path.join(store.layers_root, ".tmp-killed"))
    open(os.path.join(store.blob_dir, ".tmp-killed"), "wb").write(b"half")
    stats = store.gc()
    assert stats.blobs_removed == 3 and stats.layers_removed == 1
    keep = store.load_image("keep")
    refs = {keep.descriptor.digest, keep.id, *(l.digest for l in keep.manifest.layers)}
    assert set(os.listdir(store.blob_dir)) == {d[7:] for d in refs}
    assert os.listdir(store.layers_root) == [keep.config.rootfs.diff_ids[0][7:]]
    store.verify_blob(keep.id)


def test_gc_keeps_extra_roots(store, tmp_path):
    manifest, digests = _image(store, tmp_path / "a")
    stats = store.gc(extra_blobs=[manifest.digest])
    assert stats.blobs_removed == 2  # config and layer: only the manifest was kept
    assert store.has_blob(manifest.digest)


def test_load_image_checks_layer_count(store):
    cfg = store.put_json({"architecture": "amd64", "os": "linux", "config": {},
                          "rootfs": {"type": "layers", "diff_ids": [_digest(b"x")]}}, "application/vnd.oci.image.config.v1+json")
    manifest = store.put_json({"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": cfg.to_dict(), "layers": []},
                              MT_MANIFEST)
    store.tag("bad", manifest)
    with pytest.raises(StoreError, match="0 layers but config has 1 diff_ids"):
        store.load_image("bad")


def test_open_without_create_needs_a_layout(tmp_path):
    with pytest.raises(StoreError, match="not an OCI image layout"):
        Store(str(tmp_path), create=False)
