"""docs/SECURITY.md 4a, issue 10: the interpreter guard keeps no state and never fails silently.

Failures are injected for real: the runtime is started under a seccomp filter
(loaded by a small wrapper, inherited across exec) that refuses the syscalls the
guard uses. Refusing open_tree or mount_setattr must fall back to the sealed
memfd; refusing both ways must make create/run/exec fail with one line naming
both causes and leave nothing behind -- never run a container from a writable
interpreter, never exit 0 without running it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pyrunc import exeguard
from pyrunc.seccomp import compile_profile
from pyrunc.spec import parse_seccomp

WRAPPER = """
import os, sys
from pyrunc import syscalls
with open(sys.argv[1], "rb") as f:
    syscalls.seccomp_set_mode_filter(f.read())
os.execv(sys.argv[2], sys.argv[2:])
"""


@pytest.fixture
def denying(tmp_path):
    """denying(*syscalls) -> argv prefix that runs a command with those syscalls refused (EPERM)."""
    def make(*names: str) -> list[str]:
        profile = {"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": list(names), "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}
        _, program, _ = compile_profile(parse_seccomp(profile))
        path = tmp_path / ("filter-" + "-".join(names))
        path.write_bytes(program)
        return [sys.executable, "-I", "-c", WRAPPER, str(path)]
    return make


def _cli(pyrunc_rt, *args: str) -> list[str]:
    return [pyrunc_rt.binary, "--root", pyrunc_rt.root, *args]


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    """Files, not pipes: a created container's init holds stdout/stderr until it exits."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, timeout=60, **kw)
        out.seek(0)
        err.seek(0)
        proc.stdout, proc.stderr = out.read(), err.read()
    return proc


def _create(pyrunc_rt, make_bundle, prefix: list[str], *extra: str) -> tuple[subprocess.CompletedProcess, str]:
    b = make_bundle().args("sleep", "30")
    cid = pyrunc_rt.new_id()
    return _run([*prefix, *_cli(pyrunc_rt, *extra, "create", "-b", b.path, cid)]), cid


@pytest.mark.parametrize("refused", [("open_tree",), ("mount_setattr",)])
def test_mount_refused_falls_back_to_sealed_memfd(pyrunc_rt, make_bundle, host, denying, refused) -> None:
    out, cid = _create(pyrunc_rt, make_bundle, denying(*refused))
    assert out.returncode == 0, out.stderr
    assert exeguard.exe_guard(pyrunc_rt.init_pid(cid)) == "sealed-memfd"


def test_no_refusal_uses_the_detached_mount(pyrunc_rt, make_bundle, host) -> None:
    before = open("/proc/self/mountinfo").read()
    out, cid = _create(pyrunc_rt, make_bundle, [])
    assert out.returncode == 0, out.stderr
    pid = pyrunc_rt.init_pid(cid)
    assert exeguard.exe_guard(pid) == "ro-mount"
    assert os.readlink(f"/proc/{pid}/exe") == "/"  # the root of a mount attached nowhere
    assert [l for l in open("/proc/self/mountinfo").read().splitlines() if "python" in l] == \
        [l for l in before.splitlines() if "python" in l]


@pytest.mark.parametrize("verb", ["create", "run"])
def test_every_way_refused_fails_loudly(pyrunc_rt, make_bundle, host, denying, verb) -> None:
    b = make_bundle().args("sh", "-c", "echo RAN > /ran")
    cid = pyrunc_rt.new_id()
    out = _run([*denying("open_tree", "memfd_create"), *_cli(pyrunc_rt, verb, "-b", b.path, cid)])
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "read-only copy of the interpreter" in lines[0]
    assert "open_tree" in lines[0] and "memfd" in lines[0] and "Operation not permitted" in lines[0]
    assert not os.path.exists(os.path.join(b.rootfs, "ran"))
    state = subprocess.run(_cli(pyrunc_rt, "state", cid), capture_output=True, text=True, timeout=60)
    assert state.returncode != 0 and "does not exist" in state.stderr
    assert not os.path.isdir(os.path.join(pyrunc_rt.root, cid))


def test_exec_refused_fails_loudly(pyrunc_rt, make_bundle, host, denying) -> None:
    out, cid = _create(pyrunc_rt, make_bundle, [])
    assert out.returncode == 0, out.stderr
    assert _run(_cli(pyrunc_rt, "start", cid)).returncode == 0
    ex = _run([*denying("open_tree", "memfd_create"), *_cli(pyrunc_rt, "exec", cid, "touch", "/x")])
    assert ex.returncode == 1 and "read-only copy of the interpreter" in ex.stderr, ex.stderr


def test_refusal_reaches_the_json_log(pyrunc_rt, make_bundle, host, denying, tmp_path) -> None:
    log = tmp_path / "log.json"
    out, _cid = _create(pyrunc_rt, make_bundle, denying("open_tree", "memfd_create"),
                        "--log", str(log), "--log-format", "json")
    assert out.returncode == 1
    entries = [json.loads(l) for l in log.read_text().splitlines()]
    assert entries and entries[-1]["level"] == "error"
    assert "read-only copy of the interpreter" in entries[-1]["msg"]


def test_forged_guard_marker_is_refused(pyrunc_rt, make_bundle, host) -> None:
    """The re-exec marker in the environment does not make an unguarded process pass as guarded."""
    b = make_bundle().args("true")
    cid = pyrunc_rt.new_id()
    out = _run(_cli(pyrunc_rt, "run", "-b", b.path, cid), env={**os.environ, exeguard.GUARD_ENV: "1"})
    assert out.returncode == 1 and "read-only interpreter" in out.stderr, out.stderr


def test_guard_marker_does_not_reach_hooks_or_the_container(pyrunc_rt, make_bundle, host) -> None:
    b = make_bundle()
    hook_out = os.path.join(b.path, "hook-env")
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", f"env > {hook_out}"]}]}
    b.args("sh", "-c", "env > /env.txt")
    out = pyrunc_rt.run(b)
    assert out.returncode == 0, out.stderr
    assert exeguard.GUARD_ENV not in open(hook_out).read()
    assert exeguard.GUARD_ENV not in b.read("/env.txt")
