"""Issue 11 finding 9: a `root.path` that is (or passes through) a symlink.

runc's validator resolves the rootfs and refuses it unless the resolved path
is the cleaned path itself ("invalid rootfs: not an absolute path, or a
symlink"); pyrunc followed the link, so a bundle whose rootfs is a link to
`/` ran its container on the host's root. The bundle directory itself may be
reached through a link (runc chdirs into it and sees it resolved).
"""

from __future__ import annotations

import os
import shutil

import pytest

REFUSED = "not an absolute path, or a symlink"


def _no_state(rt) -> None:
    assert not os.path.isdir(rt.root) or os.listdir(rt.root) == [], os.listdir(rt.root)


def _move_rootfs(b, rel: str) -> str:
    """Move the bundle's rootfs to bundle/REL; returns the new absolute path."""
    dest = os.path.join(b.path, rel)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    shutil.move(b.rootfs, dest)
    return dest


@pytest.mark.parametrize("variant", ["link-to-rootfs", "link-to-host-root", "link-in-the-middle",
                                     "absolute-through-link", "dangling-link", "link-to-file"])
def test_symlinked_root_is_refused(rt, make_bundle, host, host_dir, variant: str) -> None:
    b = make_bundle()
    b.sh(f"echo pwned > /{os.path.basename(host_dir)}-pwned; true")
    if variant == "link-to-rootfs":
        real = _move_rootfs(b, "real-rootfs")
        os.symlink(real, b.rootfs)
    elif variant == "link-to-host-root":
        shutil.rmtree(b.rootfs)
        os.symlink("/", b.rootfs)
    elif variant == "link-in-the-middle":
        _move_rootfs(b, "dir/rootfs")
        os.symlink("dir", os.path.join(b.path, "link"))
        b.config["root"]["path"] = "link/rootfs"
    elif variant == "absolute-through-link":
        _move_rootfs(b, "dir/rootfs")
        os.symlink(os.path.join(b.path, "dir"), os.path.join(host_dir, "link"))
        b.config["root"]["path"] = os.path.join(host_dir, "link", "rootfs")
    elif variant == "dangling-link":
        shutil.rmtree(b.rootfs)
        os.symlink(os.path.join(host_dir, "nothing-here"), b.rootfs)
    else:
        shutil.rmtree(b.rootfs)
        os.symlink(host.canary(os.path.join(host_dir, "victim")), b.rootfs)
    b.write()
    out = rt.run(b)
    assert out.returncode != 0, out.stdout
    assert "invalid rootfs" in out.stderr, out.stderr
    if variant not in ("dangling-link",):
        assert REFUSED in out.stderr or "not a directory" in out.stderr, out.stderr
    if rt.name == "pyrunc":
        assert out.stderr.strip().count("\n") == 0 and "Traceback" not in out.stderr
        assert ".root.path" in out.stderr
    assert not os.path.exists(f"/{os.path.basename(host_dir)}-pwned")
    _no_state(rt)


@pytest.mark.parametrize("variant", ["bundle-through-link", "dotdot-over-a-real-dir", "dotdot-over-a-link",
                                     "absolute-real"])
def test_plain_roots_still_run(rt, make_bundle, host, host_dir, variant: str) -> None:
    b = make_bundle()
    b.args("true")
    bundle_arg = b.path
    if variant == "bundle-through-link":
        bundle_arg = os.path.join(host_dir, "bundle-link")
        os.symlink(b.path, bundle_arg)
    elif variant == "dotdot-over-a-real-dir":
        os.mkdir(os.path.join(b.path, "sub"))
        b.config["root"]["path"] = "sub/../rootfs"
    elif variant == "dotdot-over-a-link":  # cleaned lexically first, as runc's filepath.Join does
        os.symlink("/", os.path.join(b.path, "sub"))
        b.config["root"]["path"] = "sub/../rootfs"
    else:
        b.config["root"]["path"] = b.rootfs
    b.write()
    out = rt("run", "-b", bundle_arg, rt.new_id())
    assert out.returncode == 0, out.stderr
    _no_state(rt)
