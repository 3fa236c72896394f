"""RUN --mount=type=secret: visible to its step only, never in a layer, the config,
the history or the cache records."""

from __future__ import annotations

import hashlib
import os

from test_build_common import base_image_tar, pb, write_context  # noqa: F401

SECRET = "s3cr3t-value-9f8e7d"


def _all_store_bytes(root: str) -> bytes:
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as fh:
                out.append(fh.read())
    return b"\0".join(out)


def test_secret_reaches_the_step_but_no_layer(pb, tmp_path):
    secret_file = tmp_path / "token.txt"
    secret_file.write_text(SECRET)
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": (
        "FROM busybox\n"
        "RUN --mount=type=secret,id=token sha256sum /run/secrets/token | cut -d' ' -f1 > /secret-sha"
        " && wc -c < /run/secrets/token > /secret-length\n"
        "RUN --mount=type=secret,id=token,target=/etc/tok,mode=0444,uid=1000 "
        "stat -c '%a %u' /etc/tok > /secret-meta\n"
        "RUN --mount=type=secret,id=token,env=TOKEN printf %s \"$TOKEN\" | sha256sum | cut -d' ' -f1 > /env-sha\n"
        "RUN test ! -e /run/secrets/token && echo absent > /later\n")})
    pb.build(ctx, "-t", "sec", "--secret", f"id=token,src={secret_file}")
    files = pb.flatten("sec")
    assert files["secret-length"][1].strip() == str(len(SECRET)).encode()
    assert files["secret-meta"][1].strip() == b"444 1000"
    digest = hashlib.sha256(SECRET.encode()).hexdigest().encode() + b"\n"
    assert files["secret-sha"][1] == digest and files["env-sha"][1] == digest
    assert files["later"][1] == b"absent\n"
    assert not any(p.startswith(("run/secrets", "etc/tok")) for p in files)
    for tar in pb.layer_tars("sec"):
        for m in tar.getmembers():
            assert "secrets" not in m.name and m.name != "etc/tok"
            if m.isreg():
                assert SECRET.encode() not in tar.extractfile(m).read()
    # nowhere in the store: blobs (layers, config with history), cache records, unpacked layers
    assert SECRET.encode() not in _all_store_bytes(pb.root)


def test_missing_required_secret_fails_clearly(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": (
        "FROM busybox\nRUN --mount=type=secret,id=nope,required=true cat /run/secrets/nope\n")})
    res = pb.build(ctx, check=False)
    assert res.returncode != 0
    assert "Dockerfile:2:" in res.stderr and "secret nope was not given" in res.stderr
    assert "Traceback" not in res.stderr


def test_optional_secret_absent_is_skipped(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": (
        "FROM busybox\nRUN --mount=type=secret,id=opt test ! -e /run/secrets/opt && touch /fine\n")})
    pb.build(ctx, "-t", "opt")
    assert "fine" in pb.flatten("opt")
