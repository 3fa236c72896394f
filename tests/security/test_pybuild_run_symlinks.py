"""Issue 11 finding 2: cleanup after a RUN step that follows symlinks the step planted.

After `RUN --mount=type=tmpfs,target=/m/victim sh -c 'mv /m /m2 && ln -s /host/dir /m'`, the
mount-stub pruning walked `upper/m/victim` by path and removed the host's empty `/host/dir/victim`
(BuildKit had the same bug: CVE-2024-23652). Here every kind of stub a RUN step gets (tmpfs,
secret, bind, cache targets, the runtime's own /etc/hosts, a deep chain) is attacked with
absolute and relative links, and the host tree the links name must come out unchanged.
"""

from __future__ import annotations

import os

import pytest
from pbsec import assert_intact, busybox_tar, pb, snapshot_tree, victim, write_context  # noqa: F401


def _rel_link(target: str, depth: int = 12) -> str:
    return "../" * depth + target.lstrip("/")


CASES = {
    "tmpfs": ("--mount=type=tmpfs,target=/m/empty-dir", "mv /m /m2 && ln -s {link} /m", "sub"),
    "secret": ("--mount=type=secret,id=tok,target=/s/empty-file", "mv /s /s2 && ln -s {link} /s", ""),
    "bind": ("--mount=type=bind,target=/b/empty-dir", "mv /b /b2 && ln -s {link} /b", "sub"),
    "cache": ("--mount=type=cache,target=/c/empty-dir,id=sec-{tag}", "mv /c /c2 && ln -s {link} /c", "sub"),
    "deep": ("--mount=type=tmpfs,target=/d/sub/empty-dir", "mv /d /d2 && ln -s {link} /d", ""),
    "runtime-hosts": ("", "mv /etc /etc2 && ln -s {link} /etc", ""),
}


def _image_without_etc(pb, tmp_path) -> str:
    import shutil
    import tarfile

    from pbsec import busybox_rootfs

    rootfs = busybox_rootfs(str(tmp_path / "noetc"))
    shutil.rmtree(os.path.join(rootfs, "etc"))
    path = str(tmp_path / "noetc.tar")
    with tarfile.open(path, "w") as tar:
        tar.add(rootfs, arcname=".")
    pb.ok("import", path, "-t", "noetc")
    return "noetc"


@pytest.mark.parametrize("relative", [False, True], ids=["abs", "rel"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_stub_pruning_never_follows_a_planted_link(pb, tmp_path, victim, case, relative):
    flag, script, sub = CASES[case]
    target = os.path.join(victim, sub) if sub else victim
    base = "busybox"
    if case == "runtime-hosts":
        with open(os.path.join(victim, "hosts"), "w"):
            pass  # an empty file named like the runtime's /etc/hosts stub
        base = _image_without_etc(pb, tmp_path)  # so the runtime makes /etc (a lower /etc cannot be renamed)
    before = snapshot_tree(victim)
    link = _rel_link(target) if relative else target
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret\n")
    df = (f"FROM {base}\n"  # the base has no /etc/hosts, /etc/resolv.conf: the runtime makes stubs
          
          f"RUN {flag} sh -c '{script.format(link=link)}'\n")
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": df.replace("{tag}", os.urandom(4).hex())})
    res = pb.build(ctx, "-t", "planted", "--secret", f"id=tok,src={secret}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert_intact(victim, before)


def test_stubs_still_pruned_when_nothing_was_moved(pb, tmp_path):
    """The fix keeps the feature: stubs of every kind stay out of the layer."""
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret\n")
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": (
        "FROM busybox\n"
        "RUN --mount=type=tmpfs,target=/m/t --mount=type=secret,id=tok,target=/run/secrets/tok "
        "--mount=type=bind,target=/b/ctx echo done > /work.txt\n")})
    res = pb.build(ctx, "-t", "clean", "--secret", f"id=tok,src={secret}")
    assert res.returncode == 0, res.stderr[-3000:]
    out = tmp_path / "out"
    res = pb.build(write_context(str(tmp_path / "ctx2"), {"Dockerfile": "FROM clean\nLABEL x=y\n"}),
                   "-o", f"type=local,dest={out}")
    assert res.returncode == 0, res.stderr[-3000:]
    for stub in ("m", "b", "run/secrets", "etc/hosts", "etc/resolv.conf"):
        assert not os.path.lexists(out / stub), stub
    assert (out / "work.txt").read_text() == "done\n"
