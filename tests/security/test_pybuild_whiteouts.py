"""Issue 11 finding 1: whiteout names that point outside their directory.

A layer entry (or a context file that becomes one) named `.wh...` made the unpacker remove `..`:
`pybuild bundle` emptied the bundle dir, `--output type=local,dest=D` emptied D's parent,
`--output type=tar` emptied the store's tmp dir holding other builds. Every place that reads
whiteouts is attacked here, with the variants: `.wh.`, `.wh..`, `.wh...`, nested, through a
symlinked parent, a whiteout of a symlink to a host dir, a dest holding the user's own files and
a bind mount. Expected: a one-line refusal naming the entry, and nothing outside the tree touched.
umoci 0.4.7 (installed) removes the bundle dir for `.wh...` and the rootfs for `.wh.`/`.wh..`
before failing; containerd (BuildKit's unpacker) refuses with "invalid whiteout name".
"""

from __future__ import annotations

import os
import subprocess

import pytest
from pbsec import (Entry, assert_intact, busybox_tar, pb, refused, snapshot_tree, tar_bytes,  # noqa: F401
                   victim, write_context)

BAD_NAMES = [".wh...", ".wh..", ".wh.", "sub/.wh...", "sub/.wh..", "sub/deeper/.wh.", "sub/deeper/.wh..."]


def _hostile_layer(name: str) -> bytes:
    return tar_bytes([Entry("sub", "dir"), Entry("sub/deeper", "dir"), Entry("sub/file", data=b"x\n"),
                      Entry(name)])


@pytest.fixture
def parent(host_dir) -> str:
    """The directory above the one pybuild writes into, with canaries at each level."""
    p = os.path.join(host_dir, "parent")
    os.makedirs(os.path.join(p, "sibling"))
    for rel in ("canary", "sibling/data"):
        with open(os.path.join(p, rel), "w") as fh:
            fh.write("mine\n")
    return p


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bundle_refuses_invalid_whiteouts(pb, tmp_path, parent, name):
    pb.import_tar(_hostile_layer(name), "evil", str(tmp_path), 'CMD ["sh"]')
    bundle = os.path.join(parent, "bundle")
    os.makedirs(bundle)
    with open(os.path.join(bundle, "notes"), "w") as fh:
        fh.write("the user's file beside rootfs\n")
    before = snapshot_tree(parent)
    res = pb("bundle", "evil", bundle)
    refused(res, "invalid whiteout name", name.rsplit("/", 1)[-1])
    assert not os.path.exists(os.path.join(bundle, "rootfs")), "a failed bundle leaves its rootfs behind"
    # the bundle dir's own mtime changes (rootfs made and removed there); nothing else may
    assert_intact(parent, {k: v for k, v in before.items() if k != "bundle"})


@pytest.mark.parametrize("name", [".wh...", "sub/.wh..", ".wh."])
def test_local_and_tar_outputs_refuse_invalid_whiteouts(pb, tmp_path, parent, name):
    """FROM an image with the hostile layer and only metadata steps: the layer reaches the output
    flattening (apply mode) without ever being unpacked as an overlay lower dir."""
    pb.import_tar(_hostile_layer(name), "evil", str(tmp_path))
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": "FROM evil\nLABEL x=1\n"})
    # another build's temp dir in the store's tmp (a live pid, so no cleaner takes it)
    other = os.path.join(pb.root, "tmp", f"build-keep-{os.getpid()}")
    os.makedirs(other)
    with open(os.path.join(other, "work"), "w") as fh:
        fh.write("another build\n")
    before, store_before = snapshot_tree(parent), snapshot_tree(other)
    dest = os.path.join(parent, "out")
    refused(pb.build(ctx, "-o", f"type=local,dest={dest}"), "invalid whiteout name")
    refused(pb.build(ctx, "-o", f"type=tar,dest={os.path.join(parent, 'out.tar')}"), "invalid whiteout name")
    assert not os.path.exists(os.path.join(parent, "out.tar"))
    assert_intact(parent, {k: v for k, v in before.items()})
    assert_intact(other, store_before)
    os.unlink(os.path.join(other, "work"))
    os.rmdir(other)


@pytest.mark.parametrize("name", [".wh...", "sub/.wh.."])
def test_base_layer_unpack_refuses_invalid_whiteouts(pb, tmp_path, name):
    """FROM the hostile image with a RUN: the layer is unpacked into the store (overlay form)."""
    pb.import_tar(_hostile_layer(name), "evil", str(tmp_path))
    layers = os.path.join(pb.root, "layers")
    before = snapshot_tree(layers)
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": "FROM evil\nRUN true\n"})
    refused(pb.build(ctx), "invalid whiteout name")
    assert_intact(layers, before)
    assert not [n for n in os.listdir(layers) if n.startswith(".tmp-")]


def test_whiteouts_never_follow_links_out_of_the_tree(pb, tmp_path, victim):
    """Layer 1 plants symlinks to the host victim dir; layer 2 whites out the link itself and
    names below it. Only the links go; the victim dir, reached by no path inside the tree, stays."""
    before = snapshot_tree(victim)
    layer = tar_bytes([Entry("abs", "symlink", target=victim), Entry("rel", "symlink", target="../../../../../.." + victim),
                       Entry("dir", "dir"), Entry("dir/up", "symlink", target="../../../../../../../../" + victim)])
    pb.import_tar(layer, "links", str(tmp_path))
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": (
        "FROM links\n"
        # symlinks resolve inside the image: these whiteouts name nothing that exists there
        "COPY --from=busybox /bin/busybox /bin/busybox\n"
        "RUN [\"/bin/busybox\", \"rm\", \"-f\", \"/abs\", \"/rel\", \"/dir/up\"]\n")})
    res = pb.build(ctx, "-t", "unlinked", "-o", f"type=local,dest={tmp_path / 'out'}")
    assert res.returncode == 0, res.stderr[-2000:]
    out = tmp_path / "out"
    assert not os.path.lexists(out / "abs") and not os.path.lexists(out / "dir" / "up")
    assert_intact(victim, before)
    # whiteouts of names below a symlinked dir resolve inside the tree, never on the host
    layer2 = tar_bytes([Entry("abs", "symlink", target=victim), Entry("abs/.wh.canary"), Entry("abs/sub/.wh..wh..opq"),
                        Entry("rel", "symlink", target="../../../../../.." + victim), Entry("rel/.wh.sub")])
    pb.import_tar(layer2, "links2", str(tmp_path), 'CMD ["sh"]')
    res = pb("bundle", "links2", str(tmp_path / "bundle2"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert_intact(victim, before)


def _two_layer_image(pb, tmp_path, name: str) -> None:
    ctx = write_context(str(tmp_path / f"ctx-{name}"), {"Dockerfile": (
        "FROM busybox\nRUN mkdir -p /keep /mnt && echo img > /keep/img.txt && echo img > /mnt/img.txt\n"
        "RUN rm -rf /keep /mnt/img.txt\n")})
    assert pb.build(ctx, "-t", name).returncode == 0


def test_output_into_a_user_directory_removes_only_what_it_wrote(pb, tmp_path):
    """--output type=local into a directory holding the user's own files: a whiteout in a later
    layer takes what an earlier layer of the export wrote, never the user's files (BuildKit copies
    the finished tree and deletes nothing in dest)."""
    _two_layer_image(pb, tmp_path, "two")
    dest = tmp_path / "dest"
    (dest / "keep").mkdir(parents=True)
    (dest / "keep" / "mine.txt").write_text("the user's\n")
    (dest / "mine-too").write_text("the user's\n")
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": "FROM two\nLABEL a=b\n"})
    res = pb.build(ctx, "-o", f"type=local,dest={dest}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert (dest / "keep" / "mine.txt").read_text() == "the user's\n"
    assert (dest / "mine-too").read_text() == "the user's\n"
    assert not (dest / "keep" / "img.txt").exists() and not (dest / "mnt" / "img.txt").exists()
    assert (dest / "bin" / "busybox").exists()


def test_output_removal_never_crosses_a_mount(pb, tmp_path, victim):
    """dest/mnt is a bind mount of a host dir: the image writes mnt/img.txt into it, then a whiteout
    must remove it: pybuild refuses to remove across the mount (one line), the host dir keeps its
    own files."""
    _two_layer_image(pb, tmp_path, "two")
    dest = tmp_path / "dest"
    (dest / "mnt").mkdir(parents=True)
    before = snapshot_tree(victim)
    subprocess.run(["mount", "--bind", victim, str(dest / "mnt")], check=True)
    try:
        ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": "FROM two\nLABEL a=b\n"})
        res = pb.build(ctx, "-o", f"type=local,dest={dest}")
        refused(res, "mount")
    finally:
        subprocess.run(["umount", "-l", str(dest / "mnt")], check=False)
    leftover = os.path.join(victim, "img.txt")
    if os.path.exists(leftover):  # written by layer 2 through the mount the user gave as dest: expected
        os.unlink(leftover)
    assert_intact(victim, {k: v for k, v in before.items() if k != "."})


@pytest.mark.parametrize("name", [".wh...", ".wh..", ".wh.", ".wh.etc", ".wh..wh..opq", "sub/.wh.bin"])
def test_context_files_named_like_whiteouts_are_refused(pb, tmp_path, parent, name):
    files = {"Dockerfile": "FROM busybox\nCOPY . /ctx/\n", name: "x\n", "ok.txt": "fine\n"}
    ctx = write_context(str(tmp_path / "ctx"), files)
    before = snapshot_tree(parent)
    res = pb.build(ctx, "-o", f"type=local,dest={os.path.join(parent, 'out')}")
    refused(res, "Dockerfile:2", name.rsplit("/", 1)[-1], ".wh.")
    assert_intact(parent, before)
    # named directly, and by a wildcard
    single = dict(files, Dockerfile=f"FROM busybox\nCOPY {name} /x/\n")
    refused(pb.build(write_context(str(tmp_path / "ctx2"), single)), "Dockerfile:2", ".wh.")


@pytest.mark.parametrize("df", [
    "FROM busybox\nRUN touch /.wh.etc\n",
    "FROM busybox\nRUN mkdir /d && touch '/d/.wh...' \n",
    "FROM busybox\nCOPY ok.txt /tmp/.wh.bin\n",
    "FROM busybox\nCOPY <<EOF /etc/.wh..\nx\nEOF\n",
])
def test_steps_cannot_write_whiteout_names_into_a_layer(pb, tmp_path, df):
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": df, "ok.txt": "x\n"})
    refused(pb.build(ctx, "-t", "wh"), "Dockerfile:2", ".wh.")


def test_a_valid_whiteout_still_works_everywhere(pb, tmp_path):
    """The fix refuses names, not whiteouts: deletions still show in bundles and outputs."""
    _two_layer_image(pb, tmp_path, "two")
    bundle = tmp_path / "bundle"
    pb.ok("bundle", "two", str(bundle))
    assert not (bundle / "rootfs" / "keep").exists() and (bundle / "rootfs" / "mnt").is_dir()
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": "FROM two\nRUN test ! -e /keep && test -d /mnt\n"})
    assert pb.build(ctx).returncode == 0
