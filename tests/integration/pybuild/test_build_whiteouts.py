"""Deletions in a later step: OCI whiteouts in the tar, gone in the flattened image and the bundle."""

from __future__ import annotations

import json
import os

from test_build_common import base_image_tar, pb, write_context  # noqa: F401


def test_deleted_files_and_replaced_dirs(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": (
        "FROM busybox\n"
        "RUN mkdir -p /data/old /keep && echo 1 > /data/old/a && echo 2 > /data/b && echo k > /keep/k\n"
        "RUN rm -rf /data/old /bin/vi && rm /data/b\n"
        "RUN rm -rf /keep && mkdir /keep && echo new > /keep/fresh\nCMD [\"sh\"]\n")})
    pb.build(ctx, "-t", "wh")
    tars = pb.layer_tars("wh")
    names = [set(m.name.rstrip("/") for m in t.getmembers()) for t in tars]
    assert {"data/.wh.old", "data/.wh.b", "bin/.wh.vi"} <= names[2]
    assert "keep/.wh..wh..opq" in names[3]   # a replaced directory is opaque
    files = pb.flatten("wh")
    assert "data/old/a" not in files and "data/b" not in files and "bin/vi" not in files
    assert "keep/k" not in files and files["keep/fresh"][1] == b"new\n"
    assert "data" in files

    bundle = str(tmp_path / "bundle")
    pb.run("bundle", "wh", bundle)
    try:
        rootfs = os.path.join(bundle, "rootfs")
        assert not os.path.exists(os.path.join(rootfs, "data", "old"))
        assert not os.path.lexists(os.path.join(rootfs, "bin", "vi"))
        assert os.listdir(os.path.join(rootfs, "keep")) == ["fresh"]
        with open(os.path.join(bundle, "config.json")) as fh:
            assert json.load(fh)["root"]["path"]
    finally:
        import shutil

        shutil.rmtree(bundle)


def test_a_run_that_changes_nothing_adds_no_layer(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nRUN true\nRUN ls / > /dev/null\n"})
    pb.build(ctx, "-t", "noop")
    cfg = pb.config("noop")
    assert len(cfg["rootfs"]["diff_ids"]) == 1
    assert [h.get("empty_layer", False) for h in cfg["history"]][-2:] == [True, True]
