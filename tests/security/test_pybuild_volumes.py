"""Issue 16: every path that touches a volume, or an image's content at a volume path, is an
attacker's. A hostile image (links at and below the volume path, `..` chains), a hostile
container (links left in its volume and upper dir, a swapped /etc/passwd) and hostile names
(`/`, `..`) must never reach a host file: the host tree `victim` must come out unchanged and
nothing outside the store may be read into a volume.
"""

from __future__ import annotations

import json
import os
import tarfile

import pytest
from pbsec import assert_intact, busybox_rootfs, busybox_tar, pb, refused, snapshot_tree, victim  # noqa: F401


def _image(pb, tmp_path, name: str, build) -> str:  # noqa: F811
    """busybox plus what `build(rootfs)` adds, imported as `name` with CMD sh."""
    rootfs = busybox_rootfs(str(tmp_path / f"rootfs-{name}"))
    build(rootfs)
    path = str(tmp_path / f"{name}.tar")
    with tarfile.open(path, "w") as tar:
        tar.add(rootfs, arcname=".")
    pb.ok("import", path, "-t", name, "--change", 'CMD ["sh"]')
    return name


def _run(pb, *args: str):  # noqa: F811
    return pb.ok("run", "--rm", "--network", "none", *args)


def _volume_dir(pb, name: str) -> str:  # noqa: F811
    return os.path.join(pb.root, "volumes", name, "_data")


@pytest.mark.parametrize("kind", ["absolute", "relative", "dotdot"])
def test_link_at_the_volume_path_resolves_inside_the_image(pb, tmp_path, victim, kind):  # noqa: F811
    """/data is a link to the host victim's path: the copy-up reads the image's tree there (the
    image has nothing there), never the host's, and the volume is mounted inside the root."""
    target = {"absolute": victim, "relative": "../" * 12 + victim.lstrip("/"),
              "dotdot": "/etc/../../../../" + victim.lstrip("/")}[kind]
    before = snapshot_tree(victim)
    image = _image(pb, tmp_path, "linked", lambda r: os.symlink(target, os.path.join(r, "data")))
    out = _run(pb, "-v", "newvol:/data", image, "sh", "-c", "ls -A /data; echo in-container > /data/written").stdout
    assert out.split() == []  # nothing of the victim's was copied in
    assert sorted(os.listdir(_volume_dir(pb, "newvol"))) == ["written"]
    assert_intact(victim, before)


def test_link_at_the_volume_path_to_an_image_dir_copies_the_image_s_dir(pb, tmp_path):  # noqa: F811
    def build(root):
        with open(os.path.join(root, "etc", "image-only"), "w") as fh:
            fh.write("image\n")
        os.symlink("/etc", os.path.join(root, "data"))

    image = _image(pb, tmp_path, "etclink", build)
    _run(pb, "-v", "etcvol:/data", image, "true")
    copied = _volume_dir(pb, "etcvol")
    assert open(os.path.join(copied, "image-only")).read() == "image\n"
    with open(os.path.join(copied, "passwd")) as fh, open("/etc/passwd") as host:
        assert fh.read() != host.read()  # the image's passwd, not the host's


def test_links_inside_the_image_tree_are_copied_as_links(pb, tmp_path, victim):  # noqa: F811
    before = snapshot_tree(victim)

    def build(root):
        data = os.path.join(root, "data")
        os.makedirs(os.path.join(data, "d"))
        os.symlink(os.path.join(victim, "canary"), os.path.join(data, "file-link"))
        os.symlink(victim, os.path.join(data, "dir-link"))
        os.symlink("../" * 12 + victim.lstrip("/"), os.path.join(data, "d", "rel-link"))
        os.link(os.path.join(root, "bin", "busybox"), os.path.join(data, "hard"))

    image = _image(pb, tmp_path, "treelinks", build)
    _run(pb, "-v", "tv:/data", image, "true")
    vol = _volume_dir(pb, "tv")
    assert os.readlink(os.path.join(vol, "file-link")) == os.path.join(victim, "canary")
    assert os.readlink(os.path.join(vol, "dir-link")) == victim
    assert os.path.islink(os.path.join(vol, "d", "rel-link"))
    assert not os.path.islink(os.path.join(vol, "hard"))
    df = pb.ok("system", "df").stdout  # sizes never follow the links to the victim
    assert "Local Volumes" in df
    assert_intact(victim, before)


@pytest.mark.parametrize("how", ["volume-rm", "rm-v", "run-rm", "prune", "rm-f-volume"])
def test_links_a_container_left_in_a_volume_are_never_followed(pb, tmp_path, victim, how):  # noqa: F811
    before = snapshot_tree(victim)
    plant = (f"ln -s {victim} /data/escape; ln -s / /data/root; mkdir -p /data/d; "
             f"ln -s {victim}/sub /data/d/sub; ln -s ../../../../../../../..{victim} /data/rel")
    if how == "run-rm":  # the anonymous volume of VOLUME /data goes with the container
        image = _image(pb, tmp_path, "vimg", lambda r: None)
        pb.ok("run", "--rm", "--network", "none", "-v", "/data", image, "sh", "-c", plant)
        assert pb.ok("volume", "ls", "-q").stdout == ""
    elif how == "rm-v":
        pb.ok("run", "--name", "c", "--network", "none", "-v", "/data", "busybox", "sh", "-c", plant)
        pb.ok("rm", "-v", "c")
        assert pb.ok("volume", "ls", "-q").stdout == ""
    else:
        pb.ok("run", "--name", "c", "--network", "none", "-v", "hostile:/data", "busybox", "sh", "-c", plant)
        assert _df(pb)["Local Volumes"].endswith(("0B", "kB")) and not _df(pb)["Local Volumes"].endswith("MB")
        if how == "rm-f-volume":
            pb.ok("volume", "rm", "-f", "hostile")
        else:
            pb.ok("rm", "c")
            pb.ok(*(("volume", "rm", "hostile") if how == "volume-rm" else ("volume", "prune", "-f")))
        assert "hostile" not in pb.ok("volume", "ls", "-q").stdout
    assert_intact(victim, before)


def test_system_df_never_walks_a_link_out_of_a_container(pb, victim):  # noqa: F811
    with open(os.path.join(victim, "big"), "wb") as fh:
        fh.truncate(0)
        fh.write(b"x" * (3 << 20))
    before = snapshot_tree(victim)
    pb.ok("run", "--name", "c", "--network", "none", "busybox", "sh", "-c", f"ln -s {victim} /up; ln -s / /root-link")
    size = _df(pb)["Containers"]
    assert size.endswith("B") and not size.endswith(("MB", "GB")), size  # the links' own bytes only
    pb.ok("rm", "c")
    assert_intact(victim, before)


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "/abs", ".", "x/../../y", "-rf"])
def test_volume_names_cannot_leave_the_store(pb, tmp_path, name):  # noqa: F811
    top = set(os.listdir(tmp_path))
    for args in (("volume", "create", "--", name), ("volume", "inspect", "--", name), ("volume", "rm", "--", name),
                 ("run", "--rm", "--network", "none", "--mount", f"type=volume,source={name},target=/d", "busybox",
                  "true")):
        refused(pb(*args))
    if not name.startswith(("/", ".")):  # a path-looking -v source is a bind mount, by docker's rule
        refused(pb("run", "--rm", "--network", "none", "-v", f"{name}:/d", "busybox", "true"))
    assert set(os.listdir(tmp_path)) == top
    volumes = os.path.join(pb.root, "volumes")
    assert not os.path.isdir(volumes) or set(os.listdir(volumes)) <= {".lock"}


@pytest.mark.parametrize("plant", ["absolute", "relative", "fifo"])
def test_exec_user_lookup_stays_inside_the_container(pb, tmp_path, plant):  # noqa: F811
    """The container swaps its /etc/passwd for a link to a host file naming a user it lacks
    (or a fifo that would block a reader): `exec -u` must not find that user, nor hang."""
    host_db = tmp_path / "host-passwd"
    host_db.write_text("hostonly:x:4242:4242::/:/bin/sh\n")
    pb.ok("run", "-d", "--name", "c", "--network", "none", "busybox", "sleep", "600")
    try:
        link = {"absolute": str(host_db), "relative": "../" * 12 + str(host_db).lstrip("/")}.get(plant)
        swap = f"ln -sf {link} /etc/passwd" if link else "rm /etc/passwd && mkfifo /etc/passwd"
        pb.ok("exec", "c", "sh", "-c", swap)
        res = pb("exec", "-u", "hostonly", "c", "id", timeout=60)
        refused(res, "unable to find user hostonly")
        assert "4242" not in res.stdout
        if plant != "fifo":  # (a fifo there blocks the runtime's own HOME lookup: the container's own doing)
            assert pb.ok("exec", "-u", "0", "c", "id", "-u").stdout == "0\n"
    finally:
        pb("rm", "-f", "c")


def test_commit_leaves_out_what_volumes_and_binds_hold(pb, tmp_path):  # noqa: F811
    secret = tmp_path / "host-bind"
    secret.mkdir()
    (secret / "host-secret").write_text("do not commit\n")
    pb.ok("run", "--name", "c", "--network", "none", "-v", f"{secret}:/mnt/bind:ro", "-v", "cv:/data", "busybox", "sh",
          "-c", "echo vol > /data/vol-secret")
    pb.ok("commit", "c", "snap")
    out = tmp_path / "out"
    res = pb("build", "--progress", "plain", "-o", f"type=local,dest={out}",
             _context(tmp_path, "FROM snap\nLABEL x=y\n"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert not (out / "mnt" / "bind" / "host-secret").exists() and not (out / "data" / "vol-secret").exists()
    history = json.loads(pb.ok("inspect", "snap").stdout)[0]["History"]
    assert "pybuild commit" in history[-1]["created_by"]
    pb("rm", "-v", "c")


def _df(pb) -> dict[str, str]:  # noqa: F811
    rows = pb.ok("system", "df", "--format", "{{.Type}}={{.Size}}").stdout.splitlines()
    return dict(r.split("=", 1) for r in rows)


def _context(tmp_path, dockerfile: str) -> str:
    d = tmp_path / "ctx"
    d.mkdir(exist_ok=True)
    (d / "Dockerfile").write_text(dockerfile)
    return str(d)
