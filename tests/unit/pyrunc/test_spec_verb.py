"""`pyrunc spec`: runc's starter config.json, byte for byte, and runc's refusals."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from pyrunc import spec
from pyrunc.errors import PyruncError
from pyrunc.spec_verb import SpecExists, write_spec

RUNC = shutil.which("runc")


def runc_spec(tmp_path, rootless: bool) -> bytes:
    out = tmp_path / ("runc-rootless" if rootless else "runc")
    out.mkdir()
    subprocess.run([RUNC, "spec", "-b", str(out)] + (["--rootless"] if rootless else []), check=True)
    return (out / "config.json").read_bytes()


@pytest.mark.parametrize("rootless", [False, True])
def test_written_config_is_the_default_and_loads(tmp_path, rootless):
    path = write_spec(str(tmp_path), rootless)
    assert path == f"{tmp_path}/config.json"
    assert json.loads((tmp_path / "config.json").read_text()) == spec.default_config(rootless)
    s = spec.load(str(tmp_path))
    assert (s.linux.namespace("user") is not None) == rootless
    assert (s.linux.namespace("network") is None) == rootless


@pytest.mark.skipif(RUNC is None, reason="runc is not installed")
@pytest.mark.parametrize("rootless", [False, True])
def test_same_bytes_as_runc_spec(tmp_path, rootless):
    ours = tmp_path / "ours"
    ours.mkdir()
    write_spec(str(ours), rootless)
    theirs = runc_spec(tmp_path, rootless)
    assert json.loads(theirs) == json.loads((ours / "config.json").read_bytes())
    assert (ours / "config.json").read_bytes() == theirs


def test_rootless_maps_the_current_user():
    import os

    cfg = spec.default_config(rootless=True)
    assert cfg["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert cfg["linux"]["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    assert "resources" not in cfg["linux"]
    assert "gid=5" not in cfg["mounts"][2]["options"]
    assert cfg["mounts"][5] == {"destination": "/sys", "type": "none", "source": "/sys",
                                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}


def test_default_config_is_a_fresh_object_each_time():
    a = spec.default_config()
    a["process"]["args"].append("x")
    assert spec.default_config()["process"]["args"] == ["sh"]


def test_existing_config_is_not_overwritten(tmp_path):
    (tmp_path / "config.json").write_text("mine")
    with pytest.raises(SpecExists) as info:
        write_spec(str(tmp_path), False)
    assert str(info.value) == "File config.json exists. Remove it first"
    assert (tmp_path / "config.json").read_text() == "mine"


def test_dangling_symlink_counts_as_existing(tmp_path):
    (tmp_path / "config.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(SpecExists):
        write_spec(str(tmp_path), False)
    assert not (tmp_path / "elsewhere.json").exists()


def test_missing_bundle(tmp_path):
    with pytest.raises(PyruncError) as info:
        write_spec(str(tmp_path / "nope"), False)
    assert str(info.value) == f"chdir {tmp_path / 'nope'}: no such file or directory"


def test_bundle_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(PyruncError) as info:
        write_spec(str(tmp_path / "f"), False)
    assert str(info.value) == f"chdir {tmp_path / 'f'}: not a directory"


def test_cli_writes_into_the_current_directory(tmp_path, monkeypatch):
    from pyrunc.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["spec"]) == 0
    assert json.loads((tmp_path / "config.json").read_text()) == spec.default_config()


def test_cli_bundle_and_rootless_flags(tmp_path, capsys):
    from pyrunc.cli import main

    assert main(["spec", "--bundle", str(tmp_path), "--rootless"]) == 0
    assert json.loads((tmp_path / "config.json").read_text()) == spec.default_config(True)
    assert main(["spec", "-b", str(tmp_path)]) == 1
    assert "File config.json exists. Remove it first" in capsys.readouterr().err
