"""pybuild run's pure parts: -v (binds), --tmpfs, -e, and docker's override rules for the image config."""

from __future__ import annotations

import pytest

from pybuild.image import ContainerConfig, ImageConfig
from pybuild.commands.run import RunError, RunRequest, parse_env, run_config
from pybuild.volumes import VolumeError
from pybuild.volumes.spec import MountError, oci_mount, parse_tmpfs_flag, parse_volume_flag


def test_parse_volume(tmp_path):
    """-v of a host path: a bind mount (volumes are in test_volumes.py)."""
    m = oci_mount(parse_volume_flag(f"{tmp_path}:/data:ro"))
    assert m == {"destination": "/data", "type": "bind", "source": str(tmp_path),
                 "options": ["rbind", "ro", "rprivate"]}
    assert oci_mount(parse_volume_flag(f"{tmp_path}/:/data/"))["options"][1] == "rw"
    for bad, msg in ((f"{tmp_path}:/d:rx", "unsupported option 'rx'"), ("a:b:c:d", "expected"),
                     ("na/med:/d", "names must match"), (f"{tmp_path}:rel", "not an absolute path"),
                     (f"{tmp_path}/absent:/d", "does not exist")):
        with pytest.raises(VolumeError, match=msg):
            parse_volume_flag(bad)


def test_parse_tmpfs():
    assert parse_tmpfs_flag("/scratch").options == ("nosuid", "nodev", "noexec")
    assert oci_mount(parse_tmpfs_flag("/run:exec,size=1m,mode=1777"))["options"] == \
        ["nosuid", "nodev", "size=1m", "mode=1777"]
    with pytest.raises(MountError, match="not an absolute path"):
        parse_tmpfs_flag("scratch")


def test_parse_env(monkeypatch):
    monkeypatch.setenv("FROM_HOST", "yes")
    monkeypatch.delenv("UNSET_HERE", raising=False)
    assert parse_env(("A=1", "FROM_HOST", "UNSET_HERE", "B=")) == ["A=1", "FROM_HOST=yes", "B="]
    with pytest.raises(RunError):
        parse_env(("=x",))


class _Image:
    def __init__(self, cfg: ContainerConfig) -> None:
        self.config = ImageConfig(config=cfg)


def test_run_config_follows_docker():
    image = _Image(ContainerConfig(entrypoint=("/entry",), cmd=("serve",), env=("A=1", "B=2"), working_dir="/app",
                                   user="app"))
    cfg = run_config(image, RunRequest("img")).config
    assert (cfg.entrypoint, cfg.cmd) == (("/entry",), ("serve",))
    cfg = run_config(image, RunRequest("img", command=("sh",))).config
    assert (cfg.entrypoint, cfg.cmd) == (("/entry",), ("sh",))
    cfg = run_config(image, RunRequest("img", entrypoint="/bin/echo")).config
    assert (cfg.entrypoint, cfg.cmd) == (("/bin/echo",), ())  # --entrypoint resets CMD
    cfg = run_config(image, RunRequest("img", entrypoint="", command=("ls",))).config
    assert (cfg.entrypoint, cfg.cmd) == ((), ("ls",))
    cfg = run_config(image, RunRequest("img", env=("B=3", "C=4"), workdir="/tmp", user="0")).config
    assert cfg.env == ("A=1", "B=3", "C=4") and cfg.working_dir == "/tmp" and cfg.user == "0"
    with pytest.raises(RunError, match="must be absolute"):
        run_config(image, RunRequest("img", workdir="rel"))
