"""export.py, mutate.py, bundle.py: archives round-trip through the importers, flattening, bundle config."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

import pytest

from pybuild.baseimage import import_reference, import_rootfs
from pybuild.bundle import BundleError, bundle_config, make_bundle
from pybuild.errors import DigestMismatch, StoreError
from pybuild.export import ExportError, export_image, flatten, parse_output, write_output
from pybuild.image import ContainerConfig, Descriptor, chain_ids
from pybuild.layer import commit_layer, recompress
from pybuild.mutate import Mutator
from pybuild.store import Store


@pytest.fixture
def store(tmp_path):
    return Store(str(tmp_path / "store"))


def _two_layer_image(store: Store, tmp_path, name="app"):
    base_dir = tmp_path / "l1"
    (base_dir / "etc").mkdir(parents=True)
    (base_dir / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    (base_dir / "etc" / "group").write_text("root:x:0:\napp:x:1000:\nextra:x:2000:app\n")
    (base_dir / "old").write_bytes(b"old")
    (base_dir / "keep").write_bytes(b"keep")
    base = import_rootfs(store, str(base_dir), "base")
    # layer 2 as OCI tar entries: a whiteout of /old and a new file (a plain dir cannot hold a
    # `.wh.` file for commit_layer to pass on: it refuses such names, issue 11)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in ((".wh.old", b""), ("new", b"new")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    buf.seek(0)
    m = Mutator(store, base)
    with store.blob_writer() as writer:
        digests = recompress(buf, writer)
        writer.commit(digests.digest)
    desc = Descriptor(digests.media_type, digests.digest, digests.size)
    m.add_layer(desc, digests.diff_id, "RUN rm /old && echo new > /new")
    m.add_history("ENV A=1", empty_layer=True)
    m.update(env=("A=1",), cmd=("/bin/app", "--flag"), entrypoint=("/entry",), user="app",
             working_dir="/srv")
    manifest = m.commit()
    store.tag(name, manifest)
    return store.load_image(name)


def test_mutator_keeps_layers_history_and_diff_ids_in_step(store, tmp_path):
    image = _two_layer_image(store, tmp_path)
    assert len(image.manifest.layers) == len(image.config.rootfs.diff_ids) == 2
    assert [h.empty_layer for h in image.config.history] == [False, False, True]
    assert image.config.config.user == "app"


def test_mutator_refuses_missing_blob(store):
    from pybuild.image import Descriptor, MT_LAYER_GZIP
    m = Mutator(store)
    with pytest.raises(StoreError, match="not in the store"):
        m.add_layer(Descriptor(MT_LAYER_GZIP, "sha256:" + "0" * 64, 1), "sha256:" + "0" * 64, "x")


def test_flatten_applies_whiteouts(store, tmp_path):
    image = _two_layer_image(store, tmp_path)
    out = tmp_path / "flat"
    flatten(store, image, str(out))
    assert sorted(os.listdir(out)) == ["etc", "keep", "new"]


def test_oci_archive_roundtrip(store, tmp_path):
    image = _two_layer_image(store, tmp_path)
    export_image(store, image, str(tmp_path / "img.tar"), "oci", "app")
    with tarfile.open(tmp_path / "img.tar") as tf:
        names = tf.getnames()
        index = json.load(tf.extractfile("index.json"))
    assert names[:2] == ["oci-layout", "index.json"]
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "app"
    other = Store(str(tmp_path / "other"))
    again = import_reference(other, f"oci-archive:{tmp_path / 'img.tar'}:app")
    assert again.descriptor.digest == image.descriptor.digest
    data = (tmp_path / "img.tar").read_bytes()
    export_image(store, image, str(tmp_path / "img2.tar"), "oci", "app")
    assert (tmp_path / "img2.tar").read_bytes() == data  # deterministic


def test_docker_archive_roundtrip_and_chain_ids(store, tmp_path):
    image = _two_layer_image(store, tmp_path)
    export_image(store, image, str(tmp_path / "d.tar"), "docker", "app")
    with tarfile.open(tmp_path / "d.tar") as tf:
        [entry] = json.load(tf.extractfile("manifest.json"))
        assert entry["RepoTags"] == ["app:latest"]
        diff_ids = ["sha256:" + hashlib.sha256(tf.extractfile(p).read()).hexdigest() for p in entry["Layers"]]
    assert diff_ids == list(image.config.rootfs.diff_ids)
    chain = [diff_ids[0]]
    chain.append("sha256:" + hashlib.sha256(f"{chain[0]} {diff_ids[1]}".encode()).hexdigest())
    assert chain == chain_ids(diff_ids)
    other = Store(str(tmp_path / "other"))
    again = import_reference(other, f"docker-archive:{tmp_path / 'd.tar'}")
    assert again.id == image.id


def test_export_refuses_corrupt_blob_and_leaves_no_file(store, tmp_path):
    image = _two_layer_image(store, tmp_path)
    path = store.blob_path(image.manifest.layers[1].digest)
    data = bytearray(open(path, "rb").read())
    data[20] ^= 1
    open(path, "wb").write(bytes(data))
    with pytest.raises(DigestMismatch):
        export_image(store, image, str(tmp_path / "x.tar"), "oci")
    assert not [p for p in os.listdir(tmp_path) if "x.tar" in p]


def test_outputs(store, tmp_path):
    image = _two_layer_image(store, tmp_path)
    write_output(store, image, f"type=local,dest={tmp_path / 'loc'}")
    assert (tmp_path / "loc" / "new").read_bytes() == b"new"
    write_output(store, image, f"type=tar,dest={tmp_path / 'fs.tar'}")
    with tarfile.open(tmp_path / "fs.tar") as tf:
        assert sorted(n for n in tf.getnames() if "/" not in n) == ["etc", "keep", "new"]
    write_output(store, image, {"type": "docker", "dest": str(tmp_path / "d.tar")}, "app")
    assert tarfile.is_tarfile(tmp_path / "d.tar")
    assert parse_output("out") == {"type": "local", "dest": "out"}
    with pytest.raises(ExportError, match="type must be one of"):
        parse_output("type=registry,dest=x")
    with pytest.raises(ExportError, match="dest= is required"):
        parse_output("type=tar")


def test_bundle_config_from_image(store, tmp_path):
    image = _two_layer_image(store, tmp_path)
    config_path = make_bundle(store, image, str(tmp_path / "b"), hostname="app")
    spec = json.load(open(config_path))
    proc = spec["process"]
    assert proc["args"] == ["/entry", "/bin/app", "--flag"]
    assert proc["env"][0].startswith("PATH=") and "A=1" in proc["env"]
    assert proc["cwd"] == "/srv"
    assert proc["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [2000]}
    assert proc["terminal"] is False and spec["root"] == {"path": "rootfs", "readonly": False}
    assert sorted(os.listdir(tmp_path / "b" / "rootfs")) == ["etc", "keep", "new"]
    with pytest.raises(BundleError, match="not empty"):
        make_bundle(store, image, str(tmp_path / "b"))


def test_bundle_refuses_image_without_command(tmp_path):
    from pybuild.image import ImageConfig
    with pytest.raises(BundleError, match="nothing to run"):
        bundle_config(ImageConfig(config=ContainerConfig()), str(tmp_path))


def test_open_dest_never_renames_or_chmods_a_swapped_name(tmp_path, monkeypatch):
    """Someone who can write the destination directory swaps pybuild's temp file for a link to a
    file of theirs (or of root's) while the export is written: the export fails, the link is
    neither chmodded through nor renamed into place (issue 11 finding 6)."""
    import pyrunc.fsutil as fsutil
    from pybuild import export

    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.chmod(victim, 0o600)
    made: list[str] = []
    real_create = fsutil.create_temp

    def create(dir_fd, name, mode):
        tmp, fd = real_create(dir_fd, name, mode)
        made.append(tmp)
        return tmp, fd

    monkeypatch.setattr(fsutil, "create_temp", create)
    dest = tmp_path / "out.tar"
    with pytest.raises(ExportError, match="replaced"):
        with export._open_dest(str(dest)) as out:
            out.write(b"data")
            os.rename(tmp_path / made[0], tmp_path / "moved-away")   # the attacker's swap
            os.symlink(victim, tmp_path / made[0])
    assert not dest.exists()
    assert victim.read_text() == "precious" and (os.stat(victim).st_mode & 0o777) == 0o600
    assert os.path.islink(tmp_path / made[0])  # not ours: left alone
