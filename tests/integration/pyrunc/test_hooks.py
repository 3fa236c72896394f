"""Hooks: their order, the state on their stdin, failures and timeouts."""

from __future__ import annotations

import os
import time


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
