"""pybuild run / commit / rm against a container that plants links to the host (issue 13).

A container controls everything in its overlay's upper dir, which `commit` reads and `rm` removes
on the host, and it can write the generated /etc files pybuild bind-mounts into it. Here it
replaces its /etc (holding those mounts) and other paths with absolute and relative links to a host
tree, writes through the generated files, and the host tree must come out unchanged; the committed
image must hold the links as links and none of the generated files.
"""

from __future__ import annotations

import os

import pytest
from pbsec import assert_intact, busybox_tar, pb, snapshot_tree, victim  # noqa: F401


def _rel(target: str) -> str:
    return "../" * 12 + target.lstrip("/")


@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_links_in_a_container_reach_nothing_on_commit_and_rm(pb, victim, form):  # noqa: F811
    link = victim if form == "absolute" else _rel(victim)
    before = snapshot_tree(victim)
    script = (f"echo hostile >> /etc/hosts; echo hostile > /etc/hostname; echo hostile > /etc/resolv.conf; "
              f"ln -s {link} /escape; ln -s {link}/canary /canary-link; mkdir -p /d && ln -s {link}/sub /d/sub; "
              f"mv /etc /etc2 2>/dev/null; ln -s {link} /etc 2>/dev/null; true")
    pb.ok("run", "--network", "none", "--name", "hostile", "busybox", "sh", "-c", script)
    image = pb.ok("commit", "hostile", "hostile-img").stdout.strip()
    assert image.startswith("sha256:")
    assert_intact(victim, before)
    out = pb.ok("run", "--rm", "--network", "none", "hostile-img", "sh", "-c",
                "readlink /escape; grep -c hostile /etc/hosts /etc/hostname /etc/resolv.conf 2>/dev/null; true").stdout
    assert out.splitlines()[0] == link
    assert "hostile" not in out.replace("/etc", "")
    pb.ok("rm", "hostile")
    assert_intact(victim, before)
    assert not os.path.exists(os.path.join(pb.root, "containers")) or os.listdir(
        os.path.join(pb.root, "containers")) in ([], [".lock"])


def test_a_container_cannot_write_the_hosts_etc_files(pb, victim):  # noqa: F811
    with open("/etc/hosts", "rb") as fh:
        hosts = fh.read()
    with open("/etc/resolv.conf", "rb") as fh:
        resolv = fh.read()
    res = pb("run", "--rm", "busybox", "sh", "-c",
             "echo hostile >> /etc/hosts; echo nameserver 6.6.6.6 > /etc/resolv.conf; "
             "rm -f /etc/hosts; ln -sf /proc/1/root/etc/shadow /etc/hosts; cat /etc/hostname")
    assert res.returncode == 0, res.stderr
    with open("/etc/hosts", "rb") as fh:
        assert fh.read() == hosts
    with open("/etc/resolv.conf", "rb") as fh:
        assert fh.read() == resolv
    assert pb.ok("ps", "-aq").stdout == ""


def test_container_names_and_refs_are_not_paths(pb, victim):  # noqa: F811
    for bad in ("../x", "a/b", ".hidden", "-x"):
        res = pb("run", "--rm", "--name", bad, "--network", "none", "busybox", "true")
        assert res.returncode != 0 and "--name" in res.stderr.splitlines()[-1]
    for ref in ("../../etc", "/etc/passwd", victim):
        res = pb("rm", "-f", ref)
        assert res.returncode != 0 and "no such container" in res.stderr
