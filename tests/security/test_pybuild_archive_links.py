"""Issue 11 finding 3: ADD of a tar whose later entry replaces a directory with a symlink.

A tar with `dd/` then `dd -> /host/file`: the final directory-mtime pass followed the link and
changed a host file's mtime. The variants: absolute and relative links, to a host file and a
host dir, a replaced parent, --chown, hard links through links, and the same attacks through
COPY (context and --from). The host's files must keep mode, owner, content and mtime.
"""

from __future__ import annotations

import os

import pytest
from pbsec import (Entry, assert_intact, busybox_tar, pb, refused, snapshot_tree, tar_bytes,  # noqa: F401
                   victim, write_context)


def _root_stat(path: str) -> tuple:
    st = os.stat(path)
    return (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns)


def _links(victim: str) -> dict[str, str]:
    return {"abs-file": os.path.join(victim, "canary"), "abs-dir": victim,
            "rel-file": "../" * 12 + os.path.join(victim, "canary").lstrip("/"),
            "rel-dir": "../" * 12 + victim.lstrip("/")}


@pytest.mark.parametrize("kind", ["abs-file", "abs-dir", "rel-file", "rel-dir"])
@pytest.mark.parametrize("chown", [False, True], ids=["owners", "chown"])
def test_add_tar_directory_replaced_by_a_link(pb, tmp_path, victim, kind, chown):
    link = _links(victim)[kind]
    archive = tar_bytes([
        Entry("dd", "dir", mode=0o700, mtime=123), Entry("dd/f", data=b"x", mode=0o4755, mtime=123),
        Entry("dd", "symlink", target=link, mtime=456),
        Entry("p", "dir", mtime=123), Entry("p/q", "dir", mode=0o700, mtime=123),
        Entry("p", "symlink", target=link, mtime=456),   # a replaced parent of a dir with its own time
        Entry("s", "dir", mode=0o777, mtime=123), Entry("s", "symlink", target=link),
    ])
    before, root = snapshot_tree(victim), _root_stat(victim)
    flag = "--chown=1:1 " if chown else ""
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": f"FROM busybox\nADD {flag}evil.tar /x/\n",
                                                  "evil.tar": archive})
    res = pb.build(ctx, "-t", "added")
    assert res.returncode == 0, res.stderr[-3000:]
    assert_intact(victim, before)
    assert _root_stat(victim) == root
    out = tmp_path / "out"
    res = pb.build(write_context(str(tmp_path / "ctx2"), {"Dockerfile": "FROM added\nLABEL a=b\n"}),
                   "-o", f"type=local,dest={out}")
    assert res.returncode == 0, res.stderr[-3000:]
    assert os.readlink(out / "x" / "dd") == link  # the archive's last word, as a link
    assert_intact(victim, before)


def test_add_tar_hard_links_stay_in_the_archive(pb, tmp_path, victim):
    before = snapshot_tree(victim)
    for i, (entries, needle) in enumerate([
        ([Entry("h", "hardlink", target="../../../../" + os.path.join(victim, "canary").lstrip("/"))], "escapes"),
        ([Entry("h", "hardlink", target=os.path.join(victim, "canary"))], "not found"),
        ([Entry("l", "symlink", target=victim), Entry("h", "hardlink", target="l/canary")], "not found"),
    ]):
        ctx = write_context(str(tmp_path / f"ctx{i}"), {"Dockerfile": "FROM busybox\nADD evil.tar /x/\n",
                                                          "evil.tar": tar_bytes(entries)})
        refused(pb.build(ctx), "Dockerfile:2", needle)
    assert_intact(victim, before)


@pytest.mark.parametrize("name", [".wh.bin", ".wh...", "d/.wh..wh..opq"])
def test_add_tar_with_whiteout_names_is_refused(pb, tmp_path, name):
    archive = tar_bytes([Entry("d", "dir"), Entry(name)])
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": "FROM busybox\nADD evil.tar /\n", "evil.tar": archive})
    refused(pb.build(ctx), "Dockerfile:2", ".wh.")


def test_add_of_a_fifo_or_device_source_does_not_hang(pb, tmp_path):
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": "FROM busybox\nADD pipe /p\n"})
    os.mkfifo(os.path.join(ctx, "pipe"))
    res = pb.build(ctx, timeout=60)
    assert "Traceback" not in res.stderr


def test_copy_from_a_stage_with_planted_links(pb, tmp_path, victim):
    """The destination image holds links to the host (absolute, relative) where COPY --from writes
    directories and files: everything lands inside the image."""
    before, root = snapshot_tree(victim), _root_stat(victim)
    rel = "../" * 12 + victim.lstrip("/")
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": (
        "FROM busybox AS src\nRUN mkdir -p /src/d/e /src/g && echo x > /src/d/e/f && echo y > /src/canary "
        "&& touch -d @123 /src/d /src/d/e && chmod 700 /src/d\n"
        "FROM busybox\n"
        f"RUN mkdir /dst && ln -s {victim} /dst/d && ln -s {rel} /dst/g && ln -s {victim}/canary /dst/canary\n"
        "COPY --from=src /src/ /dst/\n")})
    res = pb.build(ctx, "-t", "copied")
    assert res.returncode == 0, res.stderr[-3000:]
    assert_intact(victim, before)
    assert _root_stat(victim) == root


def test_copy_context_tree_over_planted_links(pb, tmp_path, victim):
    before, root = snapshot_tree(victim), _root_stat(victim)
    ctx = write_context(str(tmp_path / "ctx"), {
        "Dockerfile": (f"FROM busybox\nRUN mkdir /app && ln -s {victim} /app/sub && ln -s {victim}/canary /app/canary\n"
                       "COPY tree/ /app/\n"),
        "tree/sub/data": "new\n", "tree/canary": "new\n"})
    os.utime(os.path.join(ctx, "tree", "sub"), (5, 5))
    res = pb.build(ctx, "-t", "copied")
    assert res.returncode == 0, res.stderr[-3000:]
    assert_intact(victim, before)
    assert _root_stat(victim) == root


@pytest.mark.parametrize("runtime", ["pyrunc", "runc"])
def test_device_nodes_from_an_archive_are_not_usable_in_run(pb, tmp_path, runtime):
    """ADD recreates device nodes as docker does (root builds); the RUN container's device cgroup
    must still deny them: the host's root disk named by an archive entry cannot be read."""
    import shutil

    if runtime != "pyrunc" and not shutil.which(runtime):
        pytest.skip(f"{runtime} is not installed")
    dev = os.stat("/").st_dev
    archive = tar_bytes([Entry("disk", "blk", dev=(os.major(dev), os.minor(dev)), mode=0o666),
                         Entry("mem", "chr", dev=(1, 1), mode=0o666)])
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": (
        "FROM busybox\nADD evil.tar /d/\n"
        "RUN for f in /d/disk /d/mem; do if head -c 1 $f >/dev/null 2>&1; then echo READ $f; exit 1; fi; done\n"),
        "evil.tar": archive})
    res = pb("--runtime", runtime, "build", "--progress", "plain", ctx)
    assert res.returncode == 0 and "READ /d/" not in res.stderr, res.stderr[-3000:]
