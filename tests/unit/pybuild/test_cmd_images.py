"""The image verbs through pybuild's CLI entry point (cli.main), on a temp store."""

from __future__ import annotations

import json
import os

import pytest

from pybuild.cli import main


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def root(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin" / "hello").write_text("#!/bin/sh\necho hi\n")
    return str(tmp_path / "store"), str(rootfs)


def test_import_images_inspect_tag_rmi_prune(capsys, root, tmp_path):
    store, rootfs = root
    code, out, _ = _run(capsys, "--root", store, "import", rootfs, "-t", "hello:1",
                        "-c", 'CMD ["/bin/hello"]', "-c", "ENV A=1 B=2", "-c", "EXPOSE 80", "-c", "WORKDIR /w")
    assert code == 0 and out.startswith("sha256:")
    image_id = out.strip()
    code, out, _ = _run(capsys, "--root", store, "images")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["REPOSITORY", "TAG", "IMAGE"]
    assert lines[1].split()[:3] == ["hello", "1", image_id[7:19]]
    code, out, _ = _run(capsys, "--root", store, "inspect", "hello:1")
    [doc] = json.loads(out)
    cfg = doc["Config"]
    assert cfg["Cmd"] == ["/bin/hello"] and cfg["Env"] == ["A=1", "B=2"]
    assert cfg["ExposedPorts"] == {"80/tcp": {}} and cfg["WorkingDir"] == "/w"
    assert doc["Id"] == image_id and doc["ChainIDs"] == doc["RootFS"]["Layers"]
    assert _run(capsys, "--root", store, "tag", "hello:1", "other")[0] == 0
    code, out, _ = _run(capsys, "--root", store, "images", "-q")
    assert out.split() == [image_id[7:19]] * 2
    assert _run(capsys, "--root", store, "rmi", "hello:1")[0] == 0
    assert len(os.listdir(os.path.join(store, "blobs", "sha256"))) == 3  # still named "other"
    assert _run(capsys, "--root", store, "rmi", "other")[0] == 0
    assert os.listdir(os.path.join(store, "blobs", "sha256")) == []
    code, _, err = _run(capsys, "--root", store, "inspect", "other")
    assert code == 125 and err.strip() == "pybuild: no such object: other"  # podman inspect
    code, out, _ = _run(capsys, "--root", store, "prune")
    assert code == 0 and out.startswith("Removed 0 blobs")


def test_export_and_bundle_errors(capsys, root, tmp_path):
    store, rootfs = root
    _run(capsys, "--root", store, "import", rootfs, "-t", "nocmd")
    code, _, err = _run(capsys, "--root", store, "bundle", "nocmd", str(tmp_path / "b"))
    assert code == 1 and "nothing to run" in err
    code, _, _ = _run(capsys, "--root", store, "export", "nocmd", "-o", str(tmp_path / "x.tar"), "--format", "docker")
    assert code == 0 and os.path.getsize(tmp_path / "x.tar") > 0
    code, _, err = _run(capsys, "--root", store, "import", rootfs, "-c", "FROM x")
    assert code == 1 and "unsupported" in err


def test_import_from_stdin(capsys, root, tmp_path, monkeypatch):
    import io
    import sys
    import tarfile
    store, rootfs = root
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        tf.add(rootfs, arcname=".")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(buf.getvalue())))
    code, out, err = _run(capsys, "--root", store, "import", "-", "-t", "piped")
    assert code == 0, err
    code, out, _ = _run(capsys, "--root", store, "inspect", "piped")
    assert json.loads(out)[0]["History"][0]["comment"] == "Imported from -"
