"""pybuild.fsck: every kind of damage is an error, every kind of leftover is garbage, --repair removes
garbage and nothing in use; and gc keeps what a container of `pybuild run` uses."""

from __future__ import annotations

import fcntl
import gzip
import io
import json
import os
import tarfile

import pytest

from pybuild.cache import Cache, CacheRecord
from pybuild.containers import Container, ContainerStore, new_id
from pybuild.fsck import check, fsck
from pybuild.image import MT_LAYER_GZIP, Descriptor, chain_ids
from pybuild.layer import commit_layer
from pybuild.mutate import Mutator
from pybuild.store import Store


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "root"))


def _image(store: Store, tmp_path, name: str | None = "img", data: bytes = b"hi"):
    tree = tmp_path / f"tree-{data.hex()[:8]}"
    tree.mkdir()
    (tree / "hello").write_bytes(data)
    desc, digests = commit_layer(store, str(tree))
    m = Mutator(store)
    m.add_layer(desc, digests.diff_id, "test")
    manifest = m.commit()
    if name:
        store.tag(name, manifest)
    image = store.load_image(manifest.digest)
    store.ensure_layers(image.manifest, image.config)
    return image


def _kinds(report) -> list[tuple[str, str]]:
    return [(f.kind, f.what) for f in report.findings]


def test_a_sound_store_is_ok(store, tmp_path):
    _image(store, tmp_path)
    report = check(store)
    assert report.findings == []
    assert report.counts == {"blobs": 3, "index entries": 1, "unpacked layers": 1}


def test_a_flipped_byte_is_an_error_and_repair_removes_the_blob(store, tmp_path):
    image = _image(store, tmp_path)
    layer = image.manifest.layers[0].digest
    path = store.blob_path(layer)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 1
    with open(path, "wb") as fh:
        fh.write(data)
    assert any(k == "error" and f"blob {layer}" in w and "digest mismatch" in w for k, w in _kinds(check(store)))
    report = fsck(store, repair=True)
    assert not os.path.exists(path)
    # the image now lacks a blob: an error that repair does not hide (the tag is rmi's business)
    assert any("is missing" in f.what for f in report.errors)


def test_a_layer_whose_tar_is_not_its_diff_id(store, tmp_path):
    """Digests all valid, but the config names another diffID for the layer blob."""
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        info = tarfile.TarInfo("x")
        tf.addfile(info, io.BytesIO(b""))
    blob = gzip.compress(tar.getvalue())
    digest = store.put_blob(blob)
    m = Mutator(store)
    m.add_layer(Descriptor(MT_LAYER_GZIP, digest, len(blob)), "sha256:" + "ab" * 32, "test")
    store.tag("liar", m.commit())
    errors = [w for k, w in _kinds(check(store)) if k == "error"]
    assert any(f"layer blob {digest}: decompresses to" in w and "ab" * 32 in w for w in errors), errors


def test_unpacked_layer_records_are_checked(store, tmp_path):
    image = _image(store, tmp_path)
    chain = chain_ids(image.config.rootfs.diff_ids)[0]
    meta = os.path.join(store.layers_root, chain[7:], "layer.json")
    doc = json.load(open(meta))
    doc["diff_id"] = "sha256:" + "cd" * 32
    with open(meta, "w") as fh:
        json.dump(doc, fh)
    assert any(k == "error" and f"unpacked layer {chain}" in w for k, w in _kinds(check(store)))
    fsck(store, repair=True)
    assert not store.has_layer(chain)  # derived data: unpacked again when needed
    store.ensure_layers(image.manifest, image.config)
    assert check(store).findings == []


def test_leftovers_are_garbage_and_repair_removes_them(store, tmp_path):
    _image(store, tmp_path)
    root = store.root
    planted = [os.path.join(store.blob_dir, ".tmp-abc123"), os.path.join(root, ".index.json." + "0" * 24 + ".tmp"),
               os.path.join(root, "ingest", "ab" * 32), os.path.join(root, "sources", "ef" * 32)]
    for sub in ("ingest", "sources", "tmp"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    for path in planted:
        with open(path, "wb") as fh:
            fh.write(b"partial")
    dead = os.path.join(root, "tmp", "build-999999999-abcd")   # no such pid
    live = os.path.join(root, "tmp", f"export-{os.getpid()}-xyz")   # this process: in use
    layer_tmp = os.path.join(store.layers_root, ".tmp-half")
    for d in (dead, live, layer_tmp):
        os.makedirs(os.path.join(d, "sub"))
    report = check(store)
    assert {k for k, _ in _kinds(report)} == {"garbage"} and len(report.findings) == 6, _kinds(report)
    assert not any(live in (f.path or "") for f in report.findings)
    after = fsck(store, repair=True)
    assert after.findings == [] and len(after.removed) == 6
    assert not any(os.path.lexists(p) for p in planted + [dead, layer_tmp]) and os.path.isdir(live)


def test_a_download_another_pull_holds_is_left_to_it(store, tmp_path):
    os.makedirs(os.path.join(store.root, "ingest"))
    partial = os.path.join(store.root, "ingest", "12" * 32)
    with open(partial, "wb") as fh:
        fh.write(b"half")
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        report = fsck(store, repair=True)
        assert os.path.exists(partial) and len(report.garbage) == 1
    assert fsck(store, repair=True).findings == [] and not os.path.exists(partial)


def test_orphans_versus_cache_and_container_roots(store, tmp_path):
    kept_by_cache = _image(store, tmp_path, name=None, data=b"cache")
    kept_by_container = _image(store, tmp_path, name=None, data=b"container")
    orphan = _image(store, tmp_path, name=None, data=b"orphan")
    Cache(store.root).record("sha256:" + "11" * 32, CacheRecord(
        config=json.loads(store.read_blob(kept_by_cache.id)),
        layers=[d.to_dict() for d in kept_by_cache.manifest.layers]))
    c = Container(id=new_id(), name="c", image="x", image_id=kept_by_container.id,
                  image_digest=kept_by_container.descriptor.digest, created=0.0, command=["sh"], runtime=["pyrunc"])
    ContainerStore(store.root).create(c)
    garbage = [w for k, w in _kinds(check(store)) if k == "garbage"]
    orphan_blobs = {orphan.descriptor.digest, orphan.id, orphan.manifest.layers[0].digest}
    # the cache keeps its layer blob (not its manifest/config: records hold the config inline)
    expected = orphan_blobs | {kept_by_cache.descriptor.digest, kept_by_cache.id}
    assert {w.split()[2] for w in garbage if w.startswith("orphan blob")} == expected
    assert len([w for w in garbage if w.startswith("orphan unpacked layer")]) == 1  # orphan's own
    # gc: the container's image stays although no tag names it
    store.gc()
    assert store.has_blob(kept_by_container.manifest.layers[0].digest)
    assert store.has_layer(chain_ids(kept_by_container.config.rootfs.diff_ids)[0])
    assert not store.has_blob(orphan.manifest.layers[0].digest)


def test_a_stale_cache_record_is_garbage(store, tmp_path):
    Cache(store.root).record("sha256:" + "22" * 32, CacheRecord(
        config={"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "33" * 32]}},
        layers=[{"mediaType": MT_LAYER_GZIP, "digest": "sha256:" + "44" * 32, "size": 1}]))
    assert [k for k, _ in _kinds(check(store))] == ["garbage"]
    assert fsck(store, repair=True).findings == []


def test_an_unreadable_index_keeps_every_blob(store, tmp_path):
    image = _image(store, tmp_path)
    with open(store.index_path, "w") as fh:
        fh.write("{not json")
    report = fsck(store, repair=True)
    assert any(w.startswith("index.json:") for k, w in _kinds(report) if k == "error")
    assert store.has_blob(image.manifest.layers[0].digest) and store.has_blob(image.descriptor.digest)
