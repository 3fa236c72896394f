"""Nothing a container uses is removed: `rmi` of the last name of a container's image is refused
(docker's conflict) unless -f, and then neither `prune` nor `rmi` removes the content: the
container's record (its image's manifest digest) is a root of gc. Its lower dirs stay while it
runs; `commit` and `restart` find the image by digest; after `rm`, prune takes it all.
"""

from __future__ import annotations

import os

from pbsec import busybox_tar, pb, refused, write_context  # noqa: F401
from rellib import assert_store_sound


def test_image_of_a_container_outlives_rmi_and_prune(pb, tmp_path) -> None:
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": "FROM busybox\nRUN echo mine > /mine\n"})
    pb.ok("build", "--network", "none", "-t", "app", ctx)
    pb.ok("tag", "app", "app-alias")
    cid = pb.ok("run", "-d", "--name", "c", "--network", "none", "app", "sleep", "600").stdout.strip()
    try:
        pb.ok("rmi", "app-alias")  # another name remains: only a name goes
        refused(pb("rmi", "app"), "conflict", "container", cid[:12], "must force")
        pb.ok("rmi", "-f", "app")
        assert pb.ok("prune").returncode == 0
        layers = os.listdir(os.path.join(pb.root, "layers"))
        assert len(layers) == 2, layers  # busybox's and the RUN step's: the container's lower dirs
        assert pb.ok("exec", "c", "cat", "/mine").stdout == "mine\n"
        pb.ok("commit", "c", "snap")  # finds the untagged image by its manifest digest
        assert_store_sound(pb, "untagged image of a running container")
        pb.ok("restart", "c")
        assert pb.ok("exec", "c", "cat", "/mine").stdout == "mine\n"
    finally:
        pb("rm", "-f", "c")
    pb.ok("rmi", "snap")
    pb.ok("prune")
    assert len(os.listdir(os.path.join(pb.root, "layers"))) == 1  # busybox's: its tag keeps it
    assert_store_sound(pb, "after rm and prune")
