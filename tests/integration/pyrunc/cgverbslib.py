"""Shared by the tests of the cgroup verbs (pause/resume, update, events, ps) and of
cgroup limits: a detached busybox container in a cgroup path of its own, on this
host's cgroup v1 controllers."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

V1_ONLY = pytest.mark.skipif(os.geteuid() != 0 or not os.path.isdir("/sys/fs/cgroup/pids")
                                or os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                                reason="needs root and this host's cgroup v1 controllers")


@pytest.fixture
def cgpath() -> str:
    return f"/pyrunc-test-{uuid.uuid4().hex[:8]}"


def _start(runtime, bundle, cid, cgpath, args, resources=None):
    bundle.config["linux"]["cgroupsPath"] = cgpath
    if resources:
        bundle.config["linux"]["resources"] = resources
    bundle.set_args(*args)
    runtime.ids.add(cid)
    # detached: the container keeps its stdio, so no pipes (they would never hit EOF)
    code = subprocess.run([runtime.binary, "--root", runtime.root, "run", "-d", "-b", bundle.path, cid],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=30).returncode
    assert code == 0, f"{runtime.name} run -d failed with {code}"


def _status(runtime, cid) -> str:
    return json.loads(runtime("state", cid, check=True).stdout)["status"]


def _err(proc) -> str:
    text = proc.stderr.decode().strip()
    if text.startswith("time="):  # runc's logrus line: msg="..."
        text = text.split('msg="', 1)[1].rsplit('"', 1)[0]
    return text.removeprefix("pyrunc: ")
