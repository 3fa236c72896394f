"""pybuild.volumes: mount planning (-v, --mount, --tmpfs, VOLUME), the volume store, copy-up, sizes.

The store and copy-up tests run as any user on a temp dir (ownership is only checked as root)."""

from __future__ import annotations

import os
import stat

import pytest

from pybuild.volumes import NoSuchVolume, VolumeError, VolumeStore, check_name, volume_names
from pybuild.volumes.copyup import MAX_DEPTH, copy_up, tree_size
from pybuild.volumes.spec import MountError, MountSpec, oci_mount, parse_mount_flag, parse_volume_flag, plan


# ---- planning --------------------------------------------------------------------------------------
def test_volume_flag_forms(tmp_path):
    assert parse_volume_flag("/data") == MountSpec("volume", "/data", anonymous=True)
    assert parse_volume_flag("cache:/var/cache:ro,nocopy") == \
        MountSpec("volume", "/var/cache", "cache", readonly=True, nocopy=True)
    bind = parse_volume_flag(f"{tmp_path}:/in:ro,rshared")
    assert bind == MountSpec("bind", "/in", str(tmp_path), True, ("rshared",))
    assert oci_mount(bind) == {"destination": "/in", "type": "bind", "source": str(tmp_path),
                               "options": ["rbind", "ro", "rshared"]}
    os.chdir(tmp_path)
    assert parse_volume_flag("./:/x").source == str(tmp_path)  # a relative host path, made absolute


@pytest.mark.parametrize("text,message", [
    ("vol:/d:rshared", "unsupported option 'rshared'"),   # propagation is for binds
    ("/tmp:/d:nocopy", "unsupported option 'nocopy'"),    # nocopy is for volumes
    ("vol:/d:z", "unsupported option 'z'"),
    ("a/b:/d", "names must match"),
    ("-x:/d", "names must match"),
    ("vol:relative", "not an absolute path"),
    ("vol:/", "cannot mount over /"),
    ("::", "expected"),
])
def test_volume_flag_errors(text, message):
    with pytest.raises(VolumeError, match=message):
        parse_volume_flag(text)


def test_mount_flag(tmp_path):
    assert parse_mount_flag("type=volume,source=v,target=/d,readonly,volume-nocopy") == \
        MountSpec("volume", "/d", "v", True, nocopy=True)
    assert parse_mount_flag("target=/d") == MountSpec("volume", "/d", anonymous=True)
    assert parse_mount_flag(f"type=bind,src={tmp_path},dst=/b,bind-propagation=rslave,ro=true") == \
        MountSpec("bind", "/b", str(tmp_path), True, ("rslave",))
    tmpfs = parse_mount_flag("type=tmpfs,destination=/t,tmpfs-size=1048576,tmpfs-mode=1777")
    assert oci_mount(tmpfs)["options"] == ["nosuid", "nodev", "noexec", "size=1048576", "mode=1777"]
    for bad, message in (("type=volume,source=v", "target is required"),
                         ("type=volume,source=/abs,target=/d", "a volume source is a volume name"),
                         ("type=bind,target=/d", "source is required"),
                         ("type=npipe,target=/d", "type 'npipe' is not supported"),
                         ("type=volume,target=/d,volume-driver=nfs", "volume driver 'nfs'"),
                         ("type=volume,target=/d,colour=red", "unexpected key 'colour'"),
                         ("type=volume,target=/d,readonly=maybe", "invalid value for readonly"),
                         ("type=tmpfs,target=/d,tmpfs-mode=9", "octal"),
                         ("type=tmpfs,source=x,target=/d", "takes no source")):
        with pytest.raises(MountError, match=message):
            parse_mount_flag(bad)


def test_plan_image_volumes_duplicates_and_order(tmp_path):
    specs = plan(["named:/data/sub", "/anon"], ["type=tmpfs,target=/scratch"], [], ["/data", "/anon", "/var/lib/x/"])
    assert [s.destination for s in specs] == ["/anon", "/scratch", "/data", "/data/sub", "/var/lib/x"]
    by_dst = {s.destination: s for s in specs}
    assert by_dst["/data/sub"].source == "named" and not by_dst["/data/sub"].anonymous
    for dst in ("/anon", "/data", "/var/lib/x"):  # -v /anon covers the image's VOLUME /anon
        assert by_dst[dst].anonymous and len(by_dst[dst].source) == 64
    assert len({by_dst[d].source for d in ("/anon", "/data", "/var/lib/x")}) == 3
    with pytest.raises(MountError, match="duplicate mount point: /data"):
        plan(["a:/data", f"{tmp_path}:/data/"], [], [], [])
    assert MountSpec.from_dict(specs[0].to_dict()) == specs[0]


# ---- the store ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a/b", "..", ".hidden", "-x", "", "a b", "/", "é", "a\n"])
def test_names_are_one_safe_component(name):
    with pytest.raises(VolumeError, match="names must match"):
        check_name(name)


def test_store_create_get_list_remove(tmp_path):
    store = VolumeStore(str(tmp_path))
    vol = store.create("v1", {"k": "v"})
    assert vol.mountpoint == str(tmp_path / "volumes" / "v1" / "_data") and os.path.isdir(vol.mountpoint)
    assert stat.S_IMODE(os.stat(store.dir).st_mode) == 0o700
    with pytest.raises(VolumeError, match="volume with name v1 already exists"):
        store.create("v1")
    assert store.create("v1", exist_ok=True).labels == {"k": "v"}
    anon = store.create(anonymous=True)
    assert anon.anonymous and len(anon.name) == 64
    assert sorted(v.name for v in store.list()) == sorted(["v1", anon.name])
    assert store.get("v1").needs_copy_up
    store.mark_populated(vol)
    assert not store.get("v1").needs_copy_up
    store.remove(vol)
    with pytest.raises(NoSuchVolume, match="no such volume: v1"):
        store.get("v1")
    assert not [n for n in os.listdir(store.dir) if n.startswith(".tmp-")]


def test_a_link_planted_at_a_volume_name_is_refused(tmp_path):
    store = VolumeStore(str(tmp_path / "root"))
    store.create("real")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "_data").mkdir(parents=True)
    (elsewhere / "volume.json").write_text('{"name": "evil", "created": 1}')
    os.symlink(elsewhere, os.path.join(store.dir, "evil"))
    with pytest.raises(VolumeError, match="evil"):
        store.get("evil")
    assert [v.name for v in store.list()] == ["real"]


def test_volume_names_of_a_record():
    class C:
        mount_specs = [{"type": "volume", "source": "a"}, {"type": "bind", "source": "/x"},
                       {"type": "volume", "source": "b", "anonymous": True}]
    assert volume_names(C()) == ["a", "b"]


# ---- copy-up and sizes ---------------------------------------------------------------------------
def _image(root):
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/:/bin/sh\n")
    data = root / "srv" / "data"
    (data / "sub" / "deeper").mkdir(parents=True)
    (data / "file").write_text("content")
    os.chmod(data / "file", 0o640)
    (data / "sub" / "deeper" / "x").write_text("x")
    os.link(data / "file", data / "sub" / "hard")
    os.symlink("/etc/shadow-on-host", data / "abs-link")
    os.symlink("../../../../../../etc", data / "rel-link")
    os.mkfifo(data / "fifo")
    with open(data / "sparse", "wb") as fh:
        fh.truncate(1 << 24)
    return data


def test_copy_up_copies_the_tree_without_following_links(tmp_path):
    root = tmp_path / "rootfs"
    _image(root)
    dest = tmp_path / "vol"
    dest.mkdir()
    assert copy_up(str(root), "/srv/data", str(dest))
    assert (dest / "file").read_text() == "content" and stat.S_IMODE(os.stat(dest / "file").st_mode) == 0o640
    assert os.stat(dest / "file").st_ino == os.stat(dest / "sub" / "hard").st_ino  # still one file
    assert os.readlink(dest / "abs-link") == "/etc/shadow-on-host"
    assert os.readlink(dest / "rel-link") == "../../../../../../etc"
    assert stat.S_ISFIFO(os.lstat(dest / "fifo").st_mode)
    assert (dest / "sub" / "deeper" / "x").read_text() == "x"
    assert os.stat(dest / "sparse").st_size == 1 << 24 and os.stat(dest / "sparse").st_blocks < 64  # holes kept
    assert tree_size(str(dest)) == len("content") + 1 + (1 << 24) + len("/etc/shadow-on-host") + \
        len("../../../../../../etc")


def test_copy_up_resolves_the_path_inside_the_image(tmp_path):
    """/data -> /srv/data (absolute) and -> ../../../srv/data (climbing out) both name the
    image's /srv/data, never a host path."""
    root = tmp_path / "rootfs"
    _image(root)
    os.symlink("/srv/data", root / "data")
    os.symlink("../../../../../../../srv/data", root / "rel")
    host = tmp_path / "srv" / "data"  # what the links would name on the host, from tmp_path
    host.mkdir(parents=True)
    (host / "HOST-ONLY").write_text("secret")
    for path in ("/data", "/rel", "/srv/../../data"):
        dest = tmp_path / f"vol{abs(hash(path))}"
        dest.mkdir()
        assert copy_up(str(root), path, str(dest))
        assert sorted(os.listdir(dest)) == sorted(os.listdir(root / "srv" / "data"))
        assert not (dest / "HOST-ONLY").exists()


def test_copy_up_of_nothing_a_file_or_into_a_non_empty_volume(tmp_path):
    root = tmp_path / "rootfs"
    _image(root)
    dest = tmp_path / "vol"
    dest.mkdir()
    assert not copy_up(str(root), "/absent", str(dest))
    assert not copy_up(str(root), "/etc/passwd", str(dest))
    (dest / "mine").write_text("kept")
    assert not copy_up(str(root), "/srv/data", str(dest))
    assert os.listdir(dest) == ["mine"]


def test_copy_up_refuses_a_tree_too_deep(tmp_path):
    root = tmp_path / "rootfs"
    deep = root / "d"
    deep.mkdir(parents=True)
    fd = os.open(deep, os.O_RDONLY)
    try:
        for _ in range(MAX_DEPTH + 2):
            os.mkdir("n", dir_fd=fd)
            nfd = os.open("n", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
    finally:
        os.close(fd)
    dest = tmp_path / "vol"
    dest.mkdir()
    with pytest.raises(VolumeError, match="nested directories"):
        copy_up(str(root), "/d", str(dest))


@pytest.mark.skipif(os.geteuid() != 0, reason="ownership needs root")
def test_copy_up_keeps_owners_and_takes_the_directory_s_owner(tmp_path):
    root = tmp_path / "rootfs"
    data = _image(root)
    os.chown(data, 1000, 1001)
    os.chmod(data, 0o750)
    os.lchown(data / "abs-link", 7, 8)
    os.chown(data / "file", 33, 34)
    dest = tmp_path / "vol"
    dest.mkdir()
    copy_up(str(root), "/srv/data", str(dest))
    st = os.stat(dest)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1001, 0o750)
    assert os.lstat(dest / "abs-link").st_uid == 7 and os.stat(dest / "file").st_gid == 34


def test_tree_size_never_follows_links(tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    (big / "f").write_bytes(b"x" * 100000)
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "small").write_bytes(b"12345")
    os.symlink(big, vol / "to-big")
    os.symlink("/", vol / "to-root")
    assert tree_size(str(vol)) == 5 + len(str(big)) + 1
    assert tree_size(str(tmp_path / "absent")) == 0
