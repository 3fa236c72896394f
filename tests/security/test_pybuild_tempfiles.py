"""Issue 11 finding 6 (pybuild's side): files pybuild creates at names someone else can predict.

- `--iidfile PATH` wrote through a symlink planted at PATH (root writing the image ID into any
  file); now the file is replaced atomically, as pyrunc's --pid-file.
- RUN --mount=type=cache made its directory at `<store>/cache-mounts/<key>.tmp<pid>`: a name
  planted there made the build fail with a traceback (mkdir EEXIST), and chmod/chown followed a
  link; now mkdtemp (random, 0700) with mode and owner set on an O_NOFOLLOW fd.
- export/--output files: the temp name is random, O_EXCL|O_NOFOLLOW relative to the directory's
  fd, mode set on the fd, renamed only while the name is still the file written (unit test in
  tests/unit/pybuild/test_export.py::test_open_dest_never_renames_or_chmods_a_swapped_name).
(pyrunc.fsutil.atomic_write, which pybuild uses for stores, caches and bundle config.json, is the
pyrunc section's: tests/security/test_tempfiles.py.)
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from pbsec import assert_intact, busybox_tar, pb, refused, snapshot_tree, victim, write_context  # noqa: F401


def test_iidfile_replaces_a_planted_link(pb, tmp_path, victim):
    before = snapshot_tree(victim)
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": "FROM busybox\nLABEL a=b\n"})
    for i, target in enumerate((os.path.join(victim, "canary"), os.path.join(victim, "new-file"))):
        iid = tmp_path / f"iid{i}"
        os.symlink(target, iid)  # an existing file, and a dangling link that would create one
        res = pb.build(ctx, "--iidfile", str(iid))
        assert res.returncode == 0, res.stderr[-2000:]
        assert not iid.is_symlink() and iid.read_text().startswith("sha256:")
    assert not os.path.exists(os.path.join(victim, "new-file"))
    assert_intact(victim, before)


def test_cache_mount_directory_name_cannot_be_predicted(pb, tmp_path, victim):
    """The old temp name was `<key>.tmp<pid>`: a shell plants it for its own pid, then execs pybuild
    (same pid)."""
    before = snapshot_tree(victim)
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": (
        "FROM busybox\nRUN --mount=type=cache,target=/c,id=sec-predict,mode=0777 touch /c/x\n")})
    key = hashlib.sha256(b"sec-predict").hexdigest()[:32]
    cache = os.path.join(pb.root, "cache-mounts")
    os.makedirs(cache, exist_ok=True)
    script = (f'ln -s {victim} {cache}/{key}.tmp$$ && exec {sys.executable} -m pybuild --root {pb.root} '
              f'build --progress plain {ctx}')
    res = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    assert os.path.isdir(os.path.join(cache, key)) and not os.path.islink(os.path.join(cache, key))
    assert_intact(victim, before)
    for name in os.listdir(cache):
        if name.startswith(f"{key}.tmp"):
            os.unlink(os.path.join(cache, name))


def test_cache_mount_directory_that_is_a_link_is_refused(pb, tmp_path, victim):
    key = hashlib.sha256(b"sec-link").hexdigest()[:32]
    cache = os.path.join(pb.root, "cache-mounts")
    os.makedirs(cache, exist_ok=True)
    os.symlink(victim, os.path.join(cache, key))
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": (
        "FROM busybox\nRUN --mount=type=cache,target=/c,id=sec-link touch /c/planted\n")})
    refused(pb.build(ctx), "Dockerfile:2", "not a directory")
    assert not os.path.exists(os.path.join(victim, "planted"))


def test_export_replaces_a_link_at_its_destination(pb, tmp_path, victim):
    before = snapshot_tree(victim)
    dest = tmp_path / "out.tar"
    os.symlink(os.path.join(victim, "canary"), dest)
    pb.ok("export", "busybox", "-o", str(dest))
    assert not dest.is_symlink() and dest.stat().st_size > 0
    assert_intact(victim, before)
