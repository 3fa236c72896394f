"""baseimage.py: FROM references, imports from OCI layouts/archives and docker archives, pybuild import."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile

import pytest

from pybuild.baseimage import import_rootfs, resolve, unpack_layers
from pybuild.errors import DigestMismatch, ImageNotFound, StoreError
from pybuild.store import Store


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _config(diff_ids: list[str], cmd: list[str] | None = None) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": cmd or ["sh"]},
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()


def _make_layout(path, images: dict[str, dict[str, bytes]]) -> dict[str, str]:
    """A hand-written OCI layout (independent of pybuild's writer); returns tag -> manifest digest."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def put(data: bytes) -> str:
        digest = _sha(data)
        (blobs / digest[7:]).write_bytes(data)
        return digest

    manifests, out = [], {}
    for tag, files in images.items():
        raw = _layer_tar(files)
        layer = gzip.compress(raw)
        config = _config([_sha(raw)])
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": put(config), "size": len(config)},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                           "digest": put(layer), "size": len(layer)}]}).encode()
        digest = put(manifest)
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
                          "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": tag}})
        out[tag] = digest
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": manifests}))
    return out


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "store"))


def test_scratch_and_missing(store):
    assert resolve(store, "scratch") is None
    assert unpack_layers(store, None) == []
    with pytest.raises(ImageNotFound):
        resolve(store, "nothere")


def test_oci_layout_by_tag(store, tmp_path):
    digests = _make_layout(tmp_path / "lay", {"one": {"a": b"1"}, "two": {"b": b"2"}})
    image = resolve(store, f"oci:{tmp_path / 'lay'}:two")
    assert image.descriptor.digest == digests["two"]
    assert store.has_blob(digests["two"]) and store.has_blob(image.id)
    [layer_dir] = unpack_layers(store, image)
    assert open(os.path.join(layer_dir, "b"), "rb").read() == b"2"
    with pytest.raises(StoreError, match="holds 2 images"):
        resolve(store, f"oci:{tmp_path / 'lay'}")
    with pytest.raises(ImageNotFound):
        resolve(store, f"oci:{tmp_path / 'lay'}:three")


def test_oci_layout_with_corrupt_blob_stores_nothing(store, tmp_path):
    _make_layout(tmp_path / "lay", {"one": {"a": b"1"}})
    blobs = tmp_path / "lay" / "blobs" / "sha256"
    biggest = max(blobs.iterdir(), key=lambda p: p.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[:-3] + b"xyz")
    with pytest.raises(DigestMismatch):
        resolve(store, f"oci:{tmp_path / 'lay'}")
    assert store.list_refs() == []


def test_oci_archive(store, tmp_path):
    digests = _make_layout(tmp_path / "lay", {"v1": {"x": b"x"}})
    archive = tmp_path / "img.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(tmp_path / "lay", arcname=".")
    image = resolve(store, f"oci-archive:{archive}:v1")
    assert image.descriptor.digest == digests["v1"]
    image2 = resolve(store, f"oci-archive:{archive}")
    assert image2.id == image.id


def _docker_archive(path, files: dict[str, bytes], tags=("img:1",), tamper: bool = False,
                    symlinked: bool = False) -> str:
    raw = _layer_tar(files)
    config = _config([_sha(raw)], ["echo"])
    config_name = _sha(config)[7:] + ".json"
    with tarfile.open(path, "w") as tf:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        add(config_name, config)
        layer_data = raw if not tamper else raw.replace(b"x", b"y")
        if symlinked:
            add("blobs/sha256/" + _sha(raw)[7:], layer_data)
            link = tarfile.TarInfo("abc/layer.tar")
            link.type = tarfile.SYMTYPE
            link.linkname = "../blobs/sha256/" + _sha(raw)[7:]
            tf.addfile(link)
        else:
            add("abc/layer.tar", layer_data)
        add("manifest.json", json.dumps([{"Config": config_name, "RepoTags": list(tags),
                                          "Layers": ["abc/layer.tar"]}]).encode())
    return _sha(config)


@pytest.mark.parametrize("symlinked", [False, True])
def test_docker_archive(store, tmp_path, symlinked):
    config_digest = _docker_archive(tmp_path / "d.tar", {"x": b"x"}, symlinked=symlinked)
    image = resolve(store, f"docker-archive:{tmp_path / 'd.tar'}")
    assert image.id == config_digest  # the image ID survives the import
    assert image.config.config.cmd == ("echo",)
    [layer_dir] = unpack_layers(store, image)
    assert open(os.path.join(layer_dir, "x"), "rb").read() == b"x"
    assert resolve(store, f"docker-archive:{tmp_path / 'd.tar'}:img:1").id == config_digest
    with pytest.raises(ImageNotFound):
        resolve(store, f"docker-archive:{tmp_path / 'd.tar'}:other:1")


def test_docker_archive_tampered_layer(store, tmp_path):
    _docker_archive(tmp_path / "d.tar", {"x": b"x"}, tamper=True)
    with pytest.raises(DigestMismatch):
        resolve(store, f"docker-archive:{tmp_path / 'd.tar'}")


def test_import_rootfs_dir_and_tar(store, tmp_path):
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"#!/bin/sh\n")
    image = import_rootfs(store, str(root), "fromdir", source_date_epoch=0)
    assert image.config.created == "1970-01-01T00:00:00Z"
    assert len(image.config.history) == 1 and not image.config.history[0].empty_layer
    assert store.resolve("fromdir").digest == image.descriptor.digest
    again = import_rootfs(store, str(root), None, source_date_epoch=0)
    assert again.descriptor.digest == image.descriptor.digest  # reproducible
    tarball = tmp_path / "rootfs.tar.gz"
    with tarfile.open(tarball, "w:gz") as tf:
        tf.add(root, arcname=".")
    from_tar = import_rootfs(store, str(tarball), "fromtar")
    [layer_dir] = unpack_layers(store, from_tar)
    assert open(os.path.join(layer_dir, "bin", "tool"), "rb").read() == b"#!/bin/sh\n"
    with pytest.raises(StoreError, match="no such file"):
        import_rootfs(store, str(tmp_path / "missing"))


def _tagged_archive(path, files: dict[str, bytes], tag: str) -> None:
    raw = _layer_tar(files)
    config = _config([_sha(raw)])
    manifest = json.dumps([{"Config": "config.json", "RepoTags": [tag], "Layers": ["l/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tf:
        for name, data in (("manifest.json", manifest), ("config.json", config), ("l/layer.tar", raw)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_entering_images_are_unpacked_unless_told_not_to(store, tmp_path):
    """import and load unpack as the image enters (issue 17 goal 5); unpack=False stores blobs only."""
    from pybuild.baseimage import load_archive

    root = tmp_path / "rootfs"
    root.mkdir()
    (root / "f").write_bytes(b"f\n")
    kept = import_rootfs(store, str(root), "kept", unpack=False)
    assert not store.has_layer(kept.chain_ids[0])
    image = import_rootfs(store, str(root), "unpacked")
    [chain] = image.chain_ids
    assert store.has_layer(chain) and open(os.path.join(store.layer_dir(chain), "f"), "rb").read() == b"f\n"
    _tagged_archive(tmp_path / "d.tar", {"etc/x": b"x\n"}, "arch:1")
    [(moved, names)] = load_archive(store, str(tmp_path / "d.tar"), unpack=False)
    assert names == ["arch:1"] and not store.has_layer(moved.chain_ids[0])
    [(loaded, _)] = load_archive(store, str(tmp_path / "d.tar"))
    assert store.has_layer(loaded.chain_ids[0])


def test_entering_image_whose_unpack_fails_leaves_no_layer(store, tmp_path):
    """A config whose diffID is not the layer's tar (an OCI archive may say so; docker-archives are
    checked at ingest) is found by the unpack: a one-line error naming the layer, no layer and no
    temp dir left."""
    from pyrunc.record import replace

    from pybuild.baseimage import load_archive, unpack_entering

    _tagged_archive(tmp_path / "d.tar", {"etc/x": b"x\n" * 1000}, "liar:1")
    [(image, _)] = load_archive(store, str(tmp_path / "d.tar"), unpack=False)
    lying = replace(image, config=replace(
        image.config, rootfs=replace(image.config.rootfs, diff_ids=("sha256:" + "1" * 64,))))
    with pytest.raises(StoreError, match=r"^load x: unpacking layer 1 of 1 \(sha256:[0-9a-f]{12}\): .*digest mismatch"):
        unpack_entering(store, lying, "load x")
    assert os.listdir(store.layers_root) == []
