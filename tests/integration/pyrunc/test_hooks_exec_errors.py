"""Hooks (order, stdin state, failures), exec, and bad input that must leave nothing behind."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest


def _hook_script(tmp_path, log) -> str:
    path = tmp_path / "hook.sh"
    path.write_text(f"#!/bin/sh\nstate=$(cat)\necho \"$1 $(echo \"$state\" | tr -d ' ' | "
                    f"grep -o '\"status\":\"[a-z]*\"')\" >> {log}\n")
    path.chmod(0o755)
    return str(path)


def test_hook_order_and_state(runtime, bundle, cid, tmp_path):
    log = tmp_path / "hooks.log"
    script = _hook_script(tmp_path, log)
    # createContainer and startContainer run in the container's mount namespace: the host
    # script must be visible there, so bind it in at the same path.
    bundle.config["mounts"].append({"destination": script, "type": "bind", "source": script,
                                    "options": ["bind", "ro"]})
    bundle.config["mounts"].append({"destination": str(tmp_path), "type": "bind", "source": str(tmp_path),
                                    "options": ["rbind"]})
    kinds = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    bundle.config["hooks"] = {k: [{"path": script, "args": [script, k]}] for k in kinds}
    os.symlink("busybox", os.path.join(bundle.rootfs, "bin", "env")) if not os.path.lexists(
        os.path.join(bundle.rootfs, "bin", "env")) else None
    bundle.set_args("true")
    proc = runtime("run", "-b", bundle.path, cid)
    assert proc.returncode == 0, proc.stderr
    lines = log.read_text().splitlines()
    got = [l.split()[0] for l in lines]
    if runtime.name == "runc":  # runc's start does not wait for execve before poststart
        got[3:5] = sorted(got[3:5], key=kinds.index)
    assert got == kinds
    # create-time hooks run once the environment is made: pyrunc says "created"
    # (crun, runtime-tools hooks_stdin); runc 1.1 says "creating"
    assert lines[0].endswith('"status":"creating"' if runtime.name == "runc" else '"status":"created"')
    assert lines[-1].endswith('"status":"stopped"')


def test_failing_create_runtime_hook_fails_create(pyrunc, bundle, cid, tmp_path):
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    bundle.set_args("true")
    proc = pyrunc("create", "-b", bundle.path, cid)
    assert proc.returncode != 0 and b"createRuntime" in proc.stderr
    assert pyrunc("state", cid).returncode != 0


def test_hook_timeout(pyrunc, bundle, cid, tmp_path):
    bundle.config["hooks"] = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}]}
    bundle.set_args("true")
    t0 = time.monotonic()
    proc = pyrunc("run", "-b", bundle.path, cid)
    assert proc.returncode != 0 and b"timed out" in proc.stderr
    assert time.monotonic() - t0 < 8


def test_exec_in_running_container(runtime, bundle, cid):
    bundle.set_args("sleep", "30")
    runtime("run", "-d", "-b", bundle.path, cid, check=True)
    try:
        proc = runtime("exec", cid, "sh", "-c", "echo $$; hostname; exit 3")
        assert proc.returncode == 3
        pid, host = proc.stdout.decode().split()
        assert int(pid) > 1 and host == "runc"
        proc = runtime("exec", "--user", "1000:1000", "--env", "X=1", "--cwd", "/tmp", cid,
                       "sh", "-c", "id -u; echo $X; pwd")
        assert proc.stdout.decode().split() == ["1000", "1", "/tmp"], proc.stderr
        assert runtime("exec", cid, "/nonexistent").returncode != 0
    finally:
        runtime("delete", "-f", cid)


def test_exec_process_json(pyrunc, bundle, cid, tmp_path):
    bundle.set_args("sleep", "30")
    pyrunc("run", "-d", "-b", bundle.path, cid, check=True)
    spec = tmp_path / "process.json"
    spec.write_text(json.dumps({"args": ["sh", "-c", "grep CapEff /proc/self/status"], "cwd": "/",
                                "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}))
    try:
        proc = pyrunc("exec", "--process", str(spec), cid)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.decode().split() == ["CapEff:", "0000000000000000"]
    finally:
        pyrunc("delete", "-f", cid)


def test_exec_in_stopped_container_fails(pyrunc, bundle, cid):
    bundle.set_args("true")
    pyrunc("run", "--keep", "-b", bundle.path, cid, check=True)
    proc = pyrunc("exec", cid, "true")
    assert proc.returncode != 0 and b"stopped" in proc.stderr
    pyrunc("delete", cid, check=True)


# ------------------------------------------------------------------ bad input
def _expect_clean_failure(rt, cid, *args, needle: bytes) -> None:
    proc = rt(*args)
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert needle in err, err
    assert len(err.splitlines()) == 1, err
    assert rt("state", cid).returncode != 0
    assert not os.path.exists(os.path.join(rt.root, cid))


def test_missing_bundle(pyrunc, cid, tmp_path):
    _expect_clean_failure(pyrunc, cid, "run", "-b", str(tmp_path / "nope"), cid, needle=b"config.json")


def test_missing_rootfs(pyrunc, bundle, cid):
    bundle.config["root"]["path"] = "no-such-rootfs"
    bundle.write()
    _expect_clean_failure(pyrunc, cid, "run", "-b", bundle.path, cid, needle=b".root.path")


def test_invalid_json(pyrunc, bundle, cid):
    with open(os.path.join(bundle.path, "config.json"), "w") as f:
        f.write("{not json")
    _expect_clean_failure(pyrunc, cid, "run", "-b", bundle.path, cid, needle=b"config.json")


def test_schema_violation_names_field(pyrunc, bundle, cid):
    bundle.config["process"]["args"] = []
    bundle.write()
    _expect_clean_failure(pyrunc, cid, "run", "-b", bundle.path, cid, needle=b".process.args")


def test_unknown_namespace_type(pyrunc, bundle, cid):
    bundle.config["linux"]["namespaces"].append({"type": "bogus"})
    bundle.write()
    _expect_clean_failure(pyrunc, cid, "run", "-b", bundle.path, cid, needle=b".linux.namespaces[")


def test_missing_executable_leaves_nothing(pyrunc, bundle, cid):
    bundle.set_args("/no/such/binary")
    _expect_clean_failure(pyrunc, cid, "run", "-b", bundle.path, cid, needle=b"/no/such/binary")


def test_duplicate_id(pyrunc, bundle, cid):
    bundle.set_args("sleep", "30")
    pyrunc("create", "-b", bundle.path, cid, check=True)
    proc = pyrunc("create", "-b", bundle.path, cid)
    assert proc.returncode != 0 and b"exists" in proc.stderr
    assert json.loads(pyrunc("state", cid).stdout)["status"] == "created"
    pyrunc("delete", "-f", cid, check=True)


def test_terminal_without_console_socket(pyrunc, bundle, cid):
    bundle.config["process"]["terminal"] = True
    bundle.write()
    _expect_clean_failure(pyrunc, cid, "run", "-b", bundle.path, cid, needle=b"terminal")


def test_json_log_format(pyrunc, cid, tmp_path):
    log = tmp_path / "log.json"
    proc = pyrunc("--log", str(log), "--log-format", "json", "state", cid)
    assert proc.returncode != 0
    doc = json.loads(log.read_text().splitlines()[-1])
    assert doc["level"] == "error" and "does not exist" in doc["msg"]


def test_preserve_fds_and_closed_fds(pyrunc, bundle, cid, tmp_path):
    """Only stdio plus the --preserve-fds ones reach the container (fds 3, 4 open in the caller)."""
    import subprocess

    bundle.set_args("sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '")
    base = f"{pyrunc.binary} --root {pyrunc.root} run -b {bundle.path}"
    for n, want in ((0, ["0", "1", "2", "3"]), (1, ["0", "1", "2", "3", "4"])):
        script = f"exec 3>{tmp_path}/a 4>{tmp_path}/b; {base} --preserve-fds {n} {cid}{n}"
        proc = subprocess.run(["sh", "-c", script], capture_output=True, stdin=subprocess.DEVNULL)
        pyrunc.ids.add(f"{cid}{n}")
        assert proc.returncode == 0, proc.stderr
        # ls itself holds one fd (the directory it reads): the last number
        assert proc.stdout.decode().split()[:-1] == want[:-1], proc.stdout


def test_console_socket_without_terminal(pyrunc, bundle, cid, tmp_path):
    bundle.set_args("true")
    proc = pyrunc("create", "--console-socket", str(tmp_path / "sock"), "-b", bundle.path, cid)
    assert proc.returncode != 0 and b"console socket" in proc.stderr
    assert pyrunc("state", cid).returncode != 0
