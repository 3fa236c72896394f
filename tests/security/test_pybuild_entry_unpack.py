"""Hostile layers through the import-time unpack (issue 17 goal 5): `pybuild import`, `pybuild load`
and `pybuild pull` now unpack an image's layers as it enters the store, before anything names it.

A new entry point to the unpacker, and one that runs on an image nobody has chosen to build from
yet. The attacks of test_pybuild_whiteouts.py and test_pybuild_archive_links.py go through it:
whiteout names that point outside their directory, whiteouts below a symlink to a host dir, links
(symbolic and hard) that leave the tree, a device node. Expected: what the unpacker refuses is a
one-line refusal naming the image and the layer, nothing is tagged, no layer (whole or half) is
left, the host's files are unchanged; what it accepts stays inside the layer dir.
"""

from __future__ import annotations

import os
import tarfile

import pytest
from pbsec import Entry, assert_intact, busybox_tar, pb, refused, snapshot_tree, tar_bytes, victim  # noqa: F401

from pybuild.store import Store


def _docker_archive(path: str, layer: bytes, tag: str) -> None:
    """A docker-archive (`docker save` layout) of one image whose only layer is `layer`."""
    import hashlib
    import io
    import json

    from pybuild.image import host_platform

    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": host_platform()["architecture"], "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["layer/layer.tar"]}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in (("manifest.json", manifest), (config_name, config), ("layer/layer.tar", layer)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _enter(pb, tmp_path, verb: str, layer: bytes, name: str):
    """Bring an image with `layer` into the store by `verb` (import or load), unpacking it."""
    path = str(tmp_path / f"{name}-{verb}.tar")
    if verb == "import":
        with open(path, "wb") as fh:
            fh.write(layer)
        return pb("import", path, "-t", name)
    _docker_archive(path, layer, f"{name}:latest")
    return pb("load", "-i", path)


def _layers(pb) -> list[str]:
    return sorted(os.listdir(os.path.join(pb.root, "layers")))


@pytest.mark.parametrize("verb", ["import", "load"])
@pytest.mark.parametrize("name", [".wh...", ".wh..", "sub/.wh...", "sub/deeper/.wh.."])
def test_entry_unpack_refuses_invalid_whiteouts(pb, tmp_path, host_dir, verb, name):
    layers_before = _layers(pb)
    before = snapshot_tree(host_dir)
    layer = tar_bytes([Entry("sub", "dir"), Entry("sub/deeper", "dir"), Entry("sub/file", data=b"x\n"), Entry(name)])
    res = _enter(pb, tmp_path, verb, layer, "evil")
    refused(res, "unpacking layer 1 of 1", "invalid whiteout name")
    assert "evil" not in {n for n, _ in Store(pb.root).list_refs()}
    assert _layers(pb) == layers_before, "a refused unpack left a layer (or half of one)"
    assert_intact(host_dir, before)


@pytest.mark.parametrize("verb", ["import", "load"])
def test_entry_unpack_keeps_links_and_whiteouts_inside_the_layer(pb, tmp_path, victim, verb):
    """Symlinks to the host and whiteouts below them: the links are stored as links, the whiteouts
    resolve inside the layer (where the container would see them: the link's target path in the
    tree) and become overlay whiteouts there; nothing of the host is touched."""
    import stat

    before = snapshot_tree(victim)
    rel = "../" * 12 + victim.lstrip("/")
    layer = tar_bytes([Entry("abs", "symlink", target=victim), Entry("rel", "symlink", target=rel),
                       Entry("abs/.wh.canary"), Entry("rel/.wh.sub")])
    res = _enter(pb, tmp_path, verb, layer, "links")
    assert res.returncode == 0, res.stderr[-2000:]
    store = Store(pb.root)
    [chain] = store.load_image("links").chain_ids
    diff = store.layer_dir(chain)
    assert os.readlink(os.path.join(diff, "abs")) == victim
    assert os.readlink(os.path.join(diff, "rel")) == rel
    for name in ("canary", "sub"):
        st = os.lstat(os.path.join(diff, victim.lstrip("/"), name))
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, name  # an overlay whiteout, in the tree
    assert_intact(victim, before)


@pytest.mark.parametrize("verb", ["import", "load"])
def test_entry_unpack_hard_link_out_of_the_tree_is_refused(pb, tmp_path, victim, verb):
    """A hard link whose target is a host path (absolute, or up through `..`), or a path through a
    symlink of the layer to the host: never a link to the host's inode."""
    before = snapshot_tree(victim)
    canary = os.path.join(victim, "canary")
    for i, entries in enumerate((
            [Entry("h", "hardlink", target=canary)],
            [Entry("h", "hardlink", target="../" * 12 + canary.lstrip("/"))],
            [Entry("v", "symlink", target=victim), Entry("h", "hardlink", target="v/canary")])):
        res = _enter(pb, tmp_path, verb, tar_bytes(entries), f"hard{i}")
        if res.returncode == 0:  # resolved inside the layer: there is no such file there
            pytest.fail(f"case {i}: a hard link to a file the layer does not have was accepted")
        refused(res, "unpacking layer 1 of 1")
    st = os.stat(canary)
    assert st.st_nlink == 1, "the host file got a hard link"
    assert_intact(victim, before)
