"""Named and anonymous volumes through `pybuild volume …` and `pybuild run -v/--mount`, with podman
as the oracle (flags, output, exit codes, first-use copy-up), VOLUME in an image, `run --rm` and
`rm -v`, `commit` without volume or bind contents, and `info` / `system df`."""

from __future__ import annotations

import json
import os

import pytest

from netlib import Pb
from podmanlib import add_data, one_line, podman, podman_images, tar_of  # noqa: F401
from test_build_common import make_busybox_rootfs, needs_busybox, needs_root

pytestmark = [needs_root, needs_busybox]


@pytest.fixture
def pb(tmp_path):
    p = Pb(str(tmp_path / "store"))
    tar = tar_of(add_data(make_busybox_rootfs(str(tmp_path / "rootfs"))), str(tmp_path / "bb.tar"))
    p("import", tar, "-t", "busybox", "-c", 'CMD ["sh"]')
    p("import", tar, "-t", "withvol", "-c", 'CMD ["sh"]', "-c", "VOLUME /data")
    yield p
    p.cleanup()


def _volumes(pb: Pb) -> list[str]:
    return pb("volume", "ls", "-q").stdout.split()


def test_volume_cli_as_podman(pb, podman):
    name = f"pbt16v-{os.urandom(4).hex()}"
    podman.volumes.append(name)  # removed at teardown whatever happens
    for p in (lambda *a: pb(*a, check=False), podman):
        assert p("volume", "create", name).stdout == f"{name}\n"
        assert p("volume", "create", name).returncode == 125
        for bad in ("a/b", "..", ".x", "a:b"):
            assert p("volume", "create", bad).returncode == 125, bad
        assert p("volume", "inspect", "nosuch-pbt16").returncode == 125
        assert p("volume", "rm", "nosuch-pbt16").returncode == 1
        assert p("volume", "rm", "-f", "nosuch-pbt16").returncode == 0
        assert name in p("volume", "ls").stdout.split()
        assert name in p("volume", "ls", "-q").stdout.split()
        assert p("volume", "ls").stdout.splitlines()[0].split() == ["DRIVER", "VOLUME", "NAME"]
        assert p("volume", "inspect", "--format", "{{.Name}} {{.Driver}} {{.Scope}}", name).stdout == \
            f"{name} local local\n"
        assert p("volume", "rm", name).stdout == f"{name}\n"
    assert pb("volume", "create", "x1").stdout == pb("volume", "create", "--ignore", "x1").stdout == "x1\n"
    doc = json.loads(pb("volume", "inspect", pb("volume", "create", "--label", "k=v").stdout.strip()).stdout)[0]
    for key in ("Name", "Driver", "Mountpoint", "CreatedAt", "Labels", "Scope", "Options"):
        assert key in doc
    assert doc["Labels"] == {"k": "v"} and os.path.isdir(doc["Mountpoint"])
    res = pb("volume", "create", "-o", "type=tmpfs", "x", check=False)
    assert res.returncode == 125 and "not supported" in one_line(res)
    assert "x" not in _volumes(pb)


def test_volume_in_use_and_rm_force_as_podman(pb, podman):
    pb("volume", "create", "busy")
    pb("run", "--name", "user", "--network", "none", "-v", "busy:/data", "busybox", "true")  # exited, still there
    theirs_vol = podman.volume()
    theirs = podman.run_d("--network", "none", "-v", f"{theirs_vol}:/data")
    assert podman("volume", "rm", theirs_vol).returncode == 2
    res = pb("volume", "rm", "busy", check=False)
    assert res.returncode == 2 and "busy is being used by the following container(s)" in one_line(res)
    assert "busy" in _volumes(pb) and pb("ps", "-aq").stdout.strip()
    assert podman("volume", "rm", "-f", theirs_vol).returncode == 0  # podman's -f: the containers go too
    assert theirs not in podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert pb("volume", "rm", "-f", "busy").stdout == "busy\n"
    assert pb("ps", "-aq").stdout == "" and "busy" not in _volumes(pb)


def test_prune_removes_only_unused(pb):
    for name in ("a", "b", "c"):
        pb("volume", "create", name)
    pb("run", "-d", "--name", "keep", "--network", "none", "-v", "b:/data", "busybox", "sleep", "600")
    res = pb("volume", "prune", input="n\n")
    assert sorted(_volumes(pb)) == ["a", "b", "c"] and "a" in res.stderr  # asked, said no
    assert sorted(pb("volume", "prune", "-f").stdout.split()) == ["a", "c"]
    assert _volumes(pb) == ["b"]


def test_first_use_copies_the_image_content_as_podman(pb, podman):
    """A new volume gets the image's files at its path, once; a volume with content does not."""
    podman_vol = podman.volume()
    out = podman("run", "--rm", "--network", "none", *__import__("podmanlib").ULIMITS, "-v", f"{podman_vol}:/data",
                 podman.image, "sh", "-c", "cat /data/f /data/sub/g", check=True).stdout
    mine = pb("run", "--rm", "--network", "none", "-v", "fresh:/data", "busybox", "sh", "-c",
              "cat /data/f /data/sub/g; echo mine > /data/f")
    assert mine.stdout == out == "from-image\ndeep\n"
    again = pb("run", "--rm", "--network", "none", "-v", "fresh:/data", "busybox", "cat", "/data/f")
    assert again.stdout == "mine\n"  # not copied a second time
    assert pb("run", "--rm", "--network", "none", "-v", "fresh2:/data:nocopy", "busybox", "ls", "/data").stdout == ""
    assert pb("run", "--rm", "--network", "none", "--mount", "type=volume,src=fresh3,dst=/data,volume-nocopy",
              "busybox", "ls", "/data").stdout == ""
    assert pb("run", "--rm", "--network", "none", "--mount", "type=volume,source=fresh4,target=/data,readonly",
              "busybox", "sh", "-c", "cat /data/f; touch /data/x 2>/dev/null || echo read-only").stdout == \
        "from-image\nread-only\n"
    # a volume at a path the image does not have: the runtime makes the mount point
    assert pb("run", "--rm", "--network", "none", "-v", "fresh5:/new/place", "busybox", "ls", "-a",
              "/new/place").stdout.split() == [".", ".."]


def test_image_volume_is_anonymous_and_goes_with_rm(pb):
    before = set(_volumes(pb))
    res = pb("run", "--rm", "--network", "none", "withvol", "sh", "-c", "cat /data/f; grep -c ' /data ' /proc/mounts")
    assert res.stdout == "from-image\n1\n"
    assert set(_volumes(pb)) == before  # --rm removed the anonymous volume
    pb("run", "--name", "kept", "--network", "none", "withvol", "sh", "-c", "echo x > /data/x")
    [anon] = set(_volumes(pb)) - before
    assert len(anon) == 64
    doc = json.loads(pb("volume", "inspect", anon).stdout)[0]
    assert doc["Anonymous"] is True
    mounts = json.loads(pb("inspect", "kept").stdout)[0]["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [("volume", anon, "/data")]
    pb("rm", "kept")
    assert anon in _volumes(pb)  # docker's rule: rm without -v keeps it
    pb("volume", "rm", anon)
    pb("run", "--name", "gone", "--network", "none", "-v", "/data", "-v", "named:/other", "busybox", "true")
    anon2 = set(_volumes(pb)) - before - {"named"}
    assert len(anon2) == 1
    pb("rm", "-v", "gone")
    assert set(_volumes(pb)) == before | {"named"}  # -v: the anonymous one, never a named one
    # a -v at the image's VOLUME path replaces the anonymous volume
    pb("run", "--rm", "--network", "none", "-v", "named:/data", "withvol", "true")
    assert set(_volumes(pb)) == before | {"named"}


def test_commit_never_includes_volumes_or_binds(pb, tmp_path):
    host = tmp_path / "bind"
    host.mkdir()
    pb("run", "--name", "c", "--network", "none", "-v", "cv:/data", "-v", f"{host}:/in", "--mount",
       "type=volume,target=/anon/dir", "--tmpfs", "/scratch", "busybox", "sh", "-c",
       "echo v > /data/new; echo b > /in/new; echo a > /anon/dir/new; echo t > /scratch/new; echo keep > /kept")
    pb("commit", "c", "committed")
    out = pb("run", "--rm", "--network", "none", "committed", "sh", "-c",
             "cat /kept; ls /data; ls -a /in /anon/dir /scratch 2>&1 | grep -c new; true").stdout.split()
    assert out == ["keep", "f", "sub", "0"]  # the image's own /data, nothing the volumes held
    assert (host / "new").read_text() == "b\n"
    pb("rm", "-v", "c")


def test_bad_input_leaves_nothing(pb, tmp_path):
    before_vols = set(_volumes(pb))
    for args, needle in ((("-v", "bad/name:/d"), "names must match"),
                         (("-v", "ok:/d", "-v", "ok2:/d"), "duplicate mount point: /d"),
                         (("--mount", "type=volume,target=/d,bogus=1"), "unexpected key 'bogus'"),
                         (("-v", f"{tmp_path}/absent:/d"), "does not exist"),
                         (("-v", "vol:relative"), "not an absolute path"),
                         (("-v", "vol:/d", "no-such-image"), "no-such-image")):
        image = () if args[-1] == "no-such-image" else ("busybox",)
        res = pb("run", "--rm", "--network", "none", *args, *image, "true", check=False)
        assert res.returncode == 125 and needle in one_line(res), args
    assert set(_volumes(pb)) == before_vols and pb("ps", "-aq").stdout == ""
    for args, code, needle in ((("inspect", "nosuch"), 125, "no such volume: nosuch"),
                               (("rm", "nosuch"), 1, "no such volume: nosuch"),
                               (("rm", "a/b"), 125, "names must match"),
                               (("inspect", "../containers"), 125, "names must match")):
        res = pb("volume", *args, check=False)
        assert res.returncode == code and needle in one_line(res), args


def test_info_and_system_df(pb):
    info = pb("info").stdout
    for line in ("Storage Driver: overlay", f"Store Root: {pb.root}", "Default Runtime: pyrunc",
                 "Images: 2", "Cgroup Version: "):
        assert line in info, line
    assert "Seccomp: " in info and "Rootless: " in info
    data = json.loads(pb("info", "--format", "json").stdout)
    cgroup2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    assert data["CgroupVersion"] == ("2" if cgroup2 else "1") and data["Driver"] == "overlay"
    assert data["RuntimeVersion"].startswith("pyrunc") and isinstance(data["Layers"], int)
    assert pb("--runtime", "runc", "info", "-f", "{{.DefaultRuntime}} {{.RuntimeVersion}}").stdout.startswith(
        "runc runc version")
    pb("run", "-d", "--name", "up", "--network", "none", "-v", "dfv:/data", "busybox", "sh", "-c",
       "head -c 100000 /dev/zero > /data/z; head -c 50000 /dev/zero > /big; sleep 600")
    import time

    for _ in range(100):  # the container writes its files as it starts
        rows = {line.split()[0]: line.split() for line in pb("system", "df").stdout.splitlines()[1:]}
        if rows["Local"][4].startswith("100") and rows["Containers"][3].startswith(("50", "51")):
            break
        time.sleep(0.1)
    header = pb("system", "df").stdout.splitlines()[0].split()
    assert header == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    assert rows["Images"][1:3] == ["2", "1"] and rows["Containers"][1:3] == ["1", "1"]
    assert rows["Local"][2:4] == ["1", "1"] and rows["Local"][4].startswith("100")
    assert rows["Containers"][3].startswith(("50", "51"))
    assert pb("system", "df", "--format", "{{.Type}}={{.Total}}").stdout.splitlines()[:2] == ["Images=2",
                                                                                             "Containers=1"]
