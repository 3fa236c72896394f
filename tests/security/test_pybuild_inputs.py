"""Issue 11 finding 8 (pybuild): input that reached a traceback instead of a one-line error.

A RUN line with invalid UTF-8 ran its step, then crashed in the image config writer (runc), or
failed in the runtime (pyrunc). Now every instruction, RUN heredoc and command-line value that
must become JSON is checked before anything runs; the runtime is never called. Image inputs (an
OCI layout given to FROM) with fields of the wrong type, JSON nested 100k deep, or escaped lone
surrogates get a one-line error naming the field, or are read as Go reads them (U+FFFD).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from pbsec import busybox_tar, pb, refused, write_context  # noqa: F401


@pytest.fixture
def spy_runtime(tmp_path) -> tuple[str, str]:
    """A 'runtime' that records that it was called: a refused build must never call it."""
    marker = str(tmp_path / "runtime-was-called")
    path = tmp_path / "spy-runtime"
    path.write_text(f"#!/bin/sh\ntouch {marker}\nexit 99\n")
    path.chmod(0o755)
    return str(path), marker


BAD_DOCKERFILES = {
    "run": (b"FROM busybox\nRUN echo caf\xe9 > /x\n", 2, "RUN: invalid UTF-8 (byte 0xE9) at column 13"),
    "run-exec": (b'FROM busybox\nRUN ["echo", "\xff"]\n', 2, "byte 0xFF"),
    "run-heredoc": (b"FROM busybox\nRUN <<EOF\necho \xc3\x28\nEOF\n", 2, "heredoc <<EOF"),
    "run-nul": (b"FROM busybox\nRUN echo a\x00b\n", 2, "a NUL byte"),
    "label": (b"FROM busybox\nRUN true\nLABEL a=b\nLABEL who=Jos\xe9\n", 4, "LABEL: invalid UTF-8"),
    "cmd-shell": (b"FROM busybox\nRUN true\nCMD echo \xa0\n", 3, "CMD: invalid UTF-8"),
    "env": (b"FROM busybox\nRUN true\nENV A=\xed\xa0\x80\n", 3, "ENV: invalid UTF-8"),
    "workdir": (b"FROM busybox\nRUN true\nWORKDIR /d\xff\n", 3, "WORKDIR"),
    "onbuild": (b"FROM busybox\nRUN true\nONBUILD RUN echo \xfe\n", 3, "ONBUILD"),
    "second-stage": (b"FROM busybox AS a\nRUN true\nFROM a\nUSER \xff\n", 4, "USER"),
}


@pytest.mark.parametrize("case", sorted(BAD_DOCKERFILES))
def test_dockerfile_bytes_that_no_config_can_hold_are_refused_before_running(pb, tmp_path, spy_runtime, case):
    data, line, needle = BAD_DOCKERFILES[case]
    runtime, marker = spy_runtime
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": data})
    res = pb("--runtime", runtime, "build", "--progress", "plain", ctx)
    refused(res, f"Dockerfile:{line}: ", needle)
    assert not os.path.exists(marker), "the runtime ran a step of a Dockerfile that is then refused"
    res = pb("--runtime", shutil.which("runc") or runtime, "build", "--progress", "plain", ctx)
    refused(res, f"Dockerfile:{line}: ")


def test_copy_heredoc_bodies_keep_any_bytes(pb, tmp_path):
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": b"FROM busybox\nCOPY <<EOF /latin1.txt\ncaf\xe9\nEOF\n"})
    res = pb.build(ctx, "-t", "bytes", "-o", f"type=local,dest={tmp_path / 'out'}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "out" / "latin1.txt").read_bytes() == b"caf\xe9\n"


@pytest.mark.parametrize("flag", ["--build-arg", "--label", "-t"])
def test_command_line_values_that_no_config_can_hold(pb, tmp_path, spy_runtime, flag):
    runtime, marker = spy_runtime
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": "FROM busybox\nARG V\nRUN echo $V\n"})
    value = os.fsdecode(b"V=caf\xe9") if flag != "-t" else os.fsdecode(b"img\xe9")
    res = subprocess.run([sys.executable, "-m", "pybuild", "--root", pb.root, "--runtime", runtime, "build",
                          flag, value, ctx], capture_output=True, timeout=120)
    err = res.stderr.decode(errors="replace")
    assert res.returncode != 0 and "Traceback" not in err, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("pybuild: "), err[-2000:]
    assert not os.path.exists(marker)


def _layout(tmp_path, pb, mutate) -> str:
    """An OCI layout of the busybox image whose config `mutate` rewrites (raw bytes or a dict)."""
    import hashlib

    archive = str(tmp_path / "bb-oci.tar")
    pb.ok("export", "busybox", "-o", archive, "--format", "oci")
    layout = tmp_path / "layout"
    layout.mkdir()
    subprocess.run(["tar", "-C", str(layout), "-xf", archive], check=True)
    index = json.loads((layout / "index.json").read_text())
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_text())
    config = json.loads((blobs / manifest["config"]["digest"][7:]).read_text())
    raw = mutate(config)
    raw = raw if isinstance(raw, bytes) else json.dumps(raw).encode()
    digest = hashlib.sha256(raw).hexdigest()
    (blobs / digest).write_bytes(raw)
    manifest["config"] = {"mediaType": manifest["config"]["mediaType"], "digest": "sha256:" + digest,
                          "size": len(raw)}
    mraw = json.dumps(manifest).encode()
    mdigest = hashlib.sha256(mraw).hexdigest()
    (blobs / mdigest).write_bytes(mraw)
    index["manifests"][0].update(digest="sha256:" + mdigest, size=len(mraw))
    (layout / "index.json").write_text(json.dumps(index))
    return str(layout)


def _set(path: str, value):
    def mutate(cfg):
        node = cfg
        keys = path.split("/")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
        return cfg
    return mutate


@pytest.mark.parametrize("mutate,needle", [
    (_set("history", "not a list"), "image config.history: expected an array"),
    (_set("history", [1, 2]), "image config.history[0]: expected an object"),
    (_set("rootfs", ["x"]), "image config.rootfs: expected an object"),
    (_set("rootfs/diff_ids", [5]), "image config.rootfs.diff_ids[0]: expected a string"),
    (_set("config/Env", {"A": "1"}), "image config.config.Env: expected an array"),
    (_set("config/Labels", {"a": ["x"]}), "image config.config.Labels.a: expected a string"),
    (_set("config/ExposedPorts", ["80/tcp"]), "image config.config.ExposedPorts: expected an object"),
    (lambda cfg: b'{"config":' * 100000 + b"{}" + b"}" * 100000, "nested too deeply"),
])
def test_image_configs_of_the_wrong_shape_are_one_line_errors(pb, tmp_path, mutate, needle):
    layout = _layout(tmp_path, pb, mutate)
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": f"FROM oci:{layout}\nLABEL a=b\n"})
    refused(pb.build(ctx), needle)


def test_escaped_lone_surrogates_read_as_go_reads_them(pb, tmp_path):
    def mutate(cfg):
        cfg.setdefault("config", {})["Env"] = ["PATH=/bin", "X=\ud800"]
        return json.dumps(cfg).encode()   # ensure_ascii: the surrogate is written as an escape
    layout = _layout(tmp_path, pb, mutate)
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": f"FROM oci:{layout}\nLABEL a=b\nRUN true\n"})
    res = pb.build(ctx, "-t", "derived")
    assert res.returncode == 0, res.stderr[-2000:]
    index = json.loads(open(os.path.join(pb.root, "index.json")).read())
    blobs = os.path.join(pb.root, "blobs", "sha256")
    desc = [d for d in index["manifests"] if d["annotations"]["org.opencontainers.image.ref.name"] == "derived"][0]
    manifest = json.load(open(os.path.join(blobs, desc["digest"][7:])))
    config = json.load(open(os.path.join(blobs, manifest["config"]["digest"][7:])))
    assert "X=\ufffd" in config["config"]["Env"]
