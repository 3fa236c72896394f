"""Issue 19 security, pybuild's half: a rootless user gets nothing through pybuild that their user
namespace does not give them (docs/SECURITY.md §11, B-rows).

B1  setuid: a setuid binary a RUN step makes is, on the host, owned by the user (image root) or a
    subordinate id, never by host root; in the layer it is what the image says (0, 4755).
B2  host files the user cannot read stay unread: a root-only file in the build context makes COPY
    fail with one line (the namespace's root has no DAC override on ids it does not map); nothing
    is left in the store's temp dir.
B3  host files the user cannot write stay unwritten: `-o type=local` into a root-owned directory
    fails with one line and the directory is unchanged; a store (`--root`) in a root-owned
    directory is refused and nothing is made there.
B4  the store is the user's: every file under it belongs to the user or a subordinate id; the
    metadata (blobs, index.json, oci-layout, the layer records) is the user's own and writable by
    no one else.
B5  a RUN step as the image's uid 1000 cannot write the image's root-owned files, and a RUN step
    as the image's root cannot write a root-owned host file bound in (/sys, read-only).
"""

from __future__ import annotations

import os
import shutil
import stat

import pytest

from rootless_buildlib import base_tar_fixture, user_build_fixture
from rootlesslib import rootless_user_fixture


@pytest.fixture(scope="module")
def rootless_user():
    yield from rootless_user_fixture()


@pytest.fixture(scope="module")
def base_tar(rootless_user):
    yield from base_tar_fixture(rootless_user, "base-sec")


@pytest.fixture
def ub(rootless_user, base_tar):
    yield from user_build_fixture(rootless_user, base_tar, import_base=True)


def _one_line_failure(p) -> None:
    assert p.returncode != 0
    assert p.stderr.startswith("pybuild: ") and p.stderr.count("\n") == 1, p.stderr


def test_b1_setuid_binary_is_never_host_root(ub, rootless_user):
    u = rootless_user
    ctx = ub.context({"Dockerfile": "FROM busybox\nRUN cp /bin/busybox /suid && chmod 4755 /suid "
                                    "&& cp /bin/busybox /suid1000 && chown 1000:1000 /suid1000 && chmod 6755 /suid1000\n"})
    ub("build", "-q", "-t", "s", ctx)
    found = {}
    for dirpath, _, files in os.walk(os.path.join(ub.root, "layers")):
        for n in files:
            if n in ("suid", "suid1000"):
                found[n] = os.lstat(os.path.join(dirpath, n))
    assert set(found) == {"suid", "suid1000"}
    assert found["suid"].st_uid == u.uid and found["suid"].st_mode & stat.S_ISUID
    assert found["suid1000"].st_uid == u.subuid[0] + 999 and found["suid1000"].st_gid == u.subgid[0] + 999
    owners = ub.layer_owners("s", skip=1)
    assert owners["suid"][:2] == (0, 0) and owners["suid"][2] & 0o7777 == 0o4755
    assert owners["suid1000"][:2] == (1000, 1000) and owners["suid1000"][2] & 0o7777 == 0o6755


def test_b2_a_root_only_context_file_is_not_read(ub):
    ctx = ub.context({"Dockerfile": "FROM busybox\nCOPY secret /secret\n"})
    secret = os.path.join(ctx, "secret")
    with open(secret, "w") as fh:
        fh.write("root's\n")
    os.chown(secret, 0, 0)
    os.chmod(secret, 0o600)
    p = ub("build", "--progress", "quiet", "-t", "x", ctx, check=False)
    _one_line_failure(p)
    assert "Permission denied" in p.stderr
    assert os.listdir(os.path.join(ub.root, "tmp")) == []
    assert "root's" not in open(os.path.join(ub.root, "index.json")).read()


def test_b3_root_owned_destinations_stay_unwritten(ub, rootless_user, tmp_path):
    closed = os.path.join(rootless_user.home, "closed")
    os.mkdir(closed, 0o755)  # root's: the user may read it, not write it
    try:
        ctx = ub.context({"Dockerfile": "FROM busybox\nRUN echo hi > /hi\n"})
        p = ub("build", "--progress", "quiet", "-o", f"type=local,dest={closed}/out", ctx, check=False)
        _one_line_failure(p)
        assert os.listdir(closed) == []
        p = ub("--root", f"{closed}/store", "images", check=False)
        _one_line_failure(p)
        assert os.listdir(closed) == []
    finally:
        shutil.rmtree(closed)


def test_b4_the_store_is_the_users(ub, rootless_user):
    u = rootless_user
    ctx = ub.context({"Dockerfile": "FROM busybox\nRUN touch /x && chown 1000:1000 /x\n"})
    ub("build", "-q", "-t", "t", ctx)
    subs = range(u.subuid[0], u.subuid[0] + u.subuid[1])
    for dirpath, dirs, files in os.walk(ub.root):
        rel = os.path.relpath(dirpath, ub.root)
        for n in [dirpath] + [os.path.join(dirpath, x) for x in dirs + files]:
            st = os.lstat(n)
            assert st.st_uid == u.uid or st.st_uid in subs, (n, st.st_uid)
            in_tree = rel.split(os.sep)[:1] == ["layers"] and os.sep + "diff" in n
            if not in_tree:  # store metadata: the user's own, and nobody else may write it
                assert st.st_uid == u.uid, n
                assert stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o022, (n, oct(st.st_mode))


def test_b5_steps_cannot_write_what_their_ids_may_not(ub):
    ctx = ub.context({"Dockerfile": "FROM busybox\nUSER app\n"
                                    "RUN (echo x >> /etc/passwd) 2>/dev/null && echo WROTE-PASSWD || echo no-passwd\n"
                                    "USER root\n"
                                    "RUN (echo 1 > /sys/kernel/profiling) 2>/dev/null && echo WROTE-SYS || echo no-sys\n"})
    p = ub("build", "--progress", "plain", "--no-cache", ctx)
    out = p.stdout + p.stderr
    assert "\nno-passwd\n" in out and "\nno-sys\n" in out, out
    assert "\nWROTE-PASSWD\n" not in out and "\nWROTE-SYS\n" not in out
