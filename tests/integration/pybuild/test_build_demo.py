"""The README demo end to end: make the python base (demo/make-python-base.sh),
build demo/flaskdemo with pybuild, unpack it with `pybuild bundle` and run it
with each runtime, asking the app for /health from inside the container."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from test_build_common import RUNTIMES

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
DEMO = os.path.join(REPO, "demo")

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/python3.11") or os.geteuid() != 0,
                                reason="needs root and Debian's python3.11 for the demo base")


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("demo") / "store")
    env = dict(os.environ, PYBUILD=f"{sys.executable} -m pybuild --root {root}")
    res = subprocess.run(["sh", os.path.join(DEMO, "make-python-base.sh")], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return root


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_flaskdemo_builds_and_serves(demo_store, runtime, tmp_path):
    pybuild = [sys.executable, "-m", "pybuild", "--root", demo_store, "--runtime", runtime]
    res = subprocess.run([*pybuild, "-t", "flaskdemo", "--progress", "plain", os.path.join(DEMO, "flaskdemo")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    bundle = str(tmp_path / "bundle")
    res = subprocess.run([*pybuild, "bundle", "flaskdemo", bundle], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    try:
        with open(os.path.join(bundle, "config.json")) as fh:
            config = json.load(fh)
        assert config["process"]["args"] == ["python3", "/app/app.py"]
        assert config["process"]["user"]["uid"] == 1000 and config["process"]["cwd"] == "/app"
        config["process"]["args"] = ["/bin/sh", "-c", "python3 /app/app.py & for i in 1 2 3 4 5 6 7 8 9 10; do "
                                     "wget -q -O- http://127.0.0.1:8080/ && exit 0; sleep 0.3; done; exit 1"]
        config["process"]["terminal"] = False
        with open(os.path.join(bundle, "config.json"), "w") as fh:
            json.dump(config, fh)
        runtime_bin = os.path.join(os.path.dirname(sys.executable), "pyrunc") if runtime == "pyrunc" else runtime
        state = str(tmp_path / "state")
        res = subprocess.run([runtime_bin, "--root", state, "run", "-b", bundle, f"demo-{os.getpid()}"],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        answer = json.loads(res.stdout.strip().splitlines()[-1])
        assert answer["app"] == "flaskdemo" and answer["version"] == "1.0" and answer["user"] == 1000
        assert answer["build"] == "built at version 1.0"
    finally:
        shutil.rmtree(bundle, ignore_errors=True)
