"""The same Dockerfile built by buildah and by pybuild: image config and file trees must agree.

buildah runs with a private storage root (vfs driver) under the test's temp dir,
FROM the very busybox image pybuild uses (exported as an OCI archive), and its
result is pushed to an OCI layout that this test reads with the same code as
pybuild's store. Layer boundaries may differ (buildah folds WORKDIR into the next
layer); what an image *is* — its config and its flattened tree — may not.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

import pytest

from test_build_common import Pybuild, base_image_tar, pb, write_context  # noqa: F401

pytestmark = [pytest.mark.peer,
              pytest.mark.skipif(shutil.which("buildah") is None, reason="buildah is not installed")]

DOCKERFILE = """\
FROM {base}
ARG VERSION=2.1
LABEL org.example.name="peer test" org.example.version=$VERSION
ENV APP_HOME=/srv/app LANG=C.UTF-8
WORKDIR $APP_HOME
COPY app.txt ./
COPY --chmod=0700 tool.sh /usr/local/bin/tool
COPY --chown=1000:1000 conf/ /etc/peer/
RUN mkdir -p /var/lib/peer && echo "$VERSION" > /var/lib/peer/version && rm -f /bin/vi /bin/ed \\
 && ln -s /srv/app/app.txt /srv/app/link && mkdir -p /tmp/gone && rm -rf /tmp/gone
USER 1000:1000
EXPOSE 8080/tcp 53/udp
VOLUME /data
STOPSIGNAL SIGTERM
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /srv/app/app.txt"]
"""


def _tree(files) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    out = {}
    for path, (info, data) in files.items():
        kind = "d" if info.isdir() else "l" if info.issym() else "f" if info.isreg() else "o"
        out[path] = (kind, info.mode & 0o7777 if kind != "l" else 0, info.uid, info.gid,
                     hashlib.sha256(data).hexdigest() if data is not None else info.linkname)
    return out


def _buildah(storage: str, *args: str) -> subprocess.CompletedProcess:
    cmd = ["buildah", "--root", os.path.join(storage, "root"), "--runroot", os.path.join(storage, "run"),
           "--storage-driver", "vfs", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{' '.join(cmd)}:\n{res.stdout}\n{res.stderr}"
    return res


def test_buildah_and_pybuild_agree(pb, tmp_path):
    files = {"app.txt": "hello from the peer test\n", "tool.sh": "#!/bin/sh\necho tool\n",
             "conf/a.conf": "a=1\n", "conf/sub/b.conf": "b=2\n"}
    ours = write_context(tmp_path / "ours", {**files, "Dockerfile": DOCKERFILE.format(base="busybox")})
    pb.build(ours, "-t", "peer")

    archive = str(tmp_path / "busybox-oci.tar")
    pb.run("export", "busybox", "-o", archive, "--format", "oci")
    theirs = write_context(tmp_path / "theirs",
                           {**files, "Dockerfile": DOCKERFILE.format(base=f"oci-archive:{archive}")})
    storage = str(tmp_path / "buildah")
    try:
        _buildah(storage, "bud", "--layers", "-t", "peer", theirs)
        layout = str(tmp_path / "buildah-out")
        _buildah(storage, "push", "peer", f"oci:{layout}:peer")
    finally:
        subprocess.run(["buildah", "--root", os.path.join(storage, "root"), "--runroot",
                        os.path.join(storage, "run"), "--storage-driver", "vfs", "rm", "--all"],
                       capture_output=True)
        subprocess.run(["umount", "-R", os.path.join(storage, "root")], capture_output=True)
    peer = Pybuild(layout, pb.runtime)

    ours_cfg = pb.config("peer")["config"]
    their_cfg = peer.config("peer")["config"]
    their_cfg.get("Labels", {}).pop("io.buildah.version", None)
    for key in ("Env", "Entrypoint", "Cmd", "WorkingDir", "User", "ExposedPorts", "Volumes", "StopSignal",
                "Labels"):
        assert ours_cfg.get(key) == their_cfg.get(key), key

    ours_tree = _tree(pb.flatten("peer"))
    their_tree = _tree(peer.flatten("peer"))
    # buildah 1.28 leaves the mount stubs of RUN (dev, proc, sys, run, etc/hosts...) in its layer; BuildKit
    # and pybuild remove them, so only those may be extra on buildah's side.
    stubs = {"dev", "proc", "sys", "run", "etc/hosts", "etc/hostname", "etc/resolv.conf"}
    assert sorted(set(ours_tree) - set(their_tree)) == []
    assert sorted(set(their_tree) - set(ours_tree) - stubs) == []
    differing = {p: (ours_tree[p], their_tree[p]) for p in ours_tree if ours_tree[p] != their_tree[p]}
    assert differing == {}
    assert json.loads(json.dumps(ours_cfg))  # plain JSON
