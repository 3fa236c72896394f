"""Bad input: one clear line, non-zero exit, nothing left behind, the store as before."""

from __future__ import annotations

import os
import subprocess

import pytest

from test_build_common import base_image_tar, pb, write_context  # noqa: F401


def _store_state(root: str) -> tuple[bytes, list[str]]:
    with open(os.path.join(root, "index.json"), "rb") as fh:
        index = fh.read()
    tmp = os.path.join(root, "tmp")
    return index, sorted(os.listdir(tmp)) if os.path.isdir(tmp) else []


def _mounts_under(root: str) -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        return [line.split()[4] for line in fh if line.split()[4].startswith(root)]


def _one_clear_line(res) -> str:  # type: ignore[no-untyped-def]
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    lines = [l for l in res.stderr.splitlines() if l.startswith("pybuild: ")]
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_failing_run_names_line_and_exit_code_and_keeps_output(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": (
        "FROM busybox\nRUN echo fine\n\n# comment\nRUN echo 'about to fail' && \\\n    exit 3\n")})
    before = _store_state(pb.root)
    res = pb.build(ctx, "-t", "bad", check=False)
    line = _one_clear_line(res)
    assert line == "pybuild: Dockerfile:5: RUN echo 'about to fail' && exit 3: exit code 3"
    assert "about to fail" in res.stderr
    assert _store_state(pb.root) == before
    assert _mounts_under(pb.root) == []


@pytest.mark.parametrize("dockerfile,expected", [
    ("FROM nosuch\n", "Dockerfile:1: FROM nosuch: image not found"),
    ("FROM busybox\nCOPY ../outside /x\n", "Dockerfile:2: COPY ../outside: path outside the build context"),
    ("FROM busybox\nCOPY link /x\n", "Dockerfile:2: COPY link: resolves outside the build context"),
    ("FROM busybox\nCOPY missing /x\n", "Dockerfile:2: COPY missing: not found in the build context"),
    ("FROM busybox\nCOPY *.none /x\n", "Dockerfile:2: COPY *.none: no source files match"),
    ("FROM busybox\nBOGUS x\n", "Dockerfile:2: unknown instruction: BOGUS"),
    ("FROM busybox\nCOPY onlyone\n", "Dockerfile:2:"),
    ("FROM busybox\nRUN --mount=type=nope,target=/x true\n", "Dockerfile:2:"),
])
def test_bad_input(pb, tmp_path, dockerfile, expected):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": dockerfile, "present": "x"})
    os.symlink("/etc/passwd", os.path.join(ctx, "link"))
    before = _store_state(pb.root)
    res = pb.build(ctx, "-t", "bad", check=False)
    assert expected in _one_clear_line(res)
    assert _store_state(pb.root) == before
    assert _mounts_under(pb.root) == []


def test_runtime_not_found(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nRUN true\n"})
    for runtime, words in (("no-such-runtime", "not on PATH"), ("/no/such/path", "no executable")):
        tool = type(pb)(pb.root, runtime)
        res = tool.build(ctx, check=False)
        line = _one_clear_line(res)
        assert f"runtime not found: {runtime}" in line and words in line


def test_corrupted_blob_is_refused(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nRUN echo x > /x\n"})
    pb.build(ctx, "-t", "good")
    layer = pb.manifest("busybox")["layers"][0]["digest"]
    # drop the unpacked copy so the blob has to be read again, then corrupt the blob
    import shutil

    for name in os.listdir(os.path.join(pb.root, "layers")):
        shutil.rmtree(os.path.join(pb.root, "layers", name))
    path = os.path.join(pb.root, "blobs", "sha256", layer.split(":")[1])
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    os.chmod(path, 0o644)
    with open(path, "wb") as fh:
        fh.write(data)
    res = pb.build(ctx, "-t", "good", "--no-cache", check=False)
    line = _one_clear_line(res)
    assert "digest mismatch" in line or "invalid" in line.lower() or "corrupt" in line.lower()
    assert _mounts_under(pb.root) == []


def test_sigkill_mid_step_leaves_a_valid_store(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": (
        "FROM busybox\nRUN echo first > /first\nRUN echo started && sleep 30\n")})
    import signal
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "pybuild", "--root", pb.root, "--runtime", pb.runtime,
                             "build", "--progress", "plain", "-t", "killed", ctx],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    seen = ""
    while "started" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.readline()
    assert "started" in seen
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()
    # the next build (with a fixed last step) cleans up the dead build and reuses the finished layer
    with open(os.path.join(ctx, "Dockerfile"), "w") as fh:
        fh.write("FROM busybox\nRUN echo first > /first\nRUN echo done > /done\n")
    time.sleep(0.5)
    res = pb.build(ctx, "-t", "killed")
    assert res.stderr.count("--> CACHED") == 1
    assert pb.flatten("killed")["first"][1] == b"first\n"
    assert _mounts_under(pb.root) == []
    assert os.listdir(os.path.join(pb.root, "tmp")) == []


def test_sigterm_mid_step_stops_the_container_and_cleans_up(pb, tmp_path):
    import signal
    import sys
    import time

    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nRUN echo started && sleep 29\n"})
    before = _store_state(pb.root)
    proc = subprocess.Popen([sys.executable, "-m", "pybuild", "--root", pb.root, "--runtime", pb.runtime,
                             "build", "--progress", "plain", "-t", "stopped", ctx],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = ""
    deadline = time.monotonic() + 60
    while "started" not in seen and time.monotonic() < deadline:
        seen += proc.stderr.readline()
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert "pybuild: build stopped by SIGTERM" in err
    assert _store_state(pb.root) == before
    assert subprocess.run(["pgrep", "-f", "sleep 29"], capture_output=True).stdout == b""
