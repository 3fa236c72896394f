"""Issue 10: the first commands after a boot, through the commands pip installs.

Every test here runs its sequence in a private mount namespace whose /run is a
new, empty tmpfs: the machine as it is after a reboot (no per-boot state of any
earlier pyrunc or pybuild), without touching this machine's real /run. The very
first pyrunc of that "boot" is started by a RUN step of `pybuild build`, inside
pybuild's own private mount namespace -- the case that once left every later
pyrunc call exiting 0 without doing anything. After it, from the host side:
`--version` answers, `state` of a missing ID fails with runc's message, and a
real `run` runs. The same sequence runs through the editable install of this
checkout (.venv/bin) and through a wheel installed into a new venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile

import pytest

from testlib import REPO

SEQUENCE = r"""
set -u
mount -t tmpfs -o mode=755 fresh-boot /run || exit 90
B=$1; STORE=$2; TAR=$3; CTX=$4; PARENT=$5
"$B/pybuild" --root "$STORE" import "$TAR" -t busybox >/dev/null || exit 91
"$B/pybuild" --root "$STORE" build --progress plain -t fresh "$CTX" > "$PARENT/build.log" 2>&1
echo "BUILD_RC=$?"
echo "VERSION=$("$B/pyrunc" --version 2>&1)"
"$B/pyrunc" state no-such-id > "$PARENT/state.out" 2> "$PARENT/state.err"
echo "STATE_RC=$?"
cd "$PARENT" && "$B/pyrunc" run bundle > "$PARENT/run.out" 2> "$PARENT/run.err"
echo "RUN_RC=$?"
echo "LIST=$("$B/pyrunc" list -q 2>&1 | tr '\n' ' ')"
ls /run > "$PARENT/run-dir.txt"
"""


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory) -> str:
    """`pip install` of a wheel of this checkout into a new venv (dependencies from the test venv)."""
    d = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(d / "dist"), REPO],
                   check=True, capture_output=True, cwd=str(d), timeout=300)
    shutil.rmtree(os.path.join(REPO, "build"), ignore_errors=True)
    venv = d / "venv"
    subprocess.run([os.path.realpath(sys.executable), "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    v = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    with open(venv / "lib" / v / "site-packages" / "deps.pth", "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")  # click, jsonschema, prctl, ... (not pyrunc)
    wheel = next((d / "dist").glob("pyrunc-*.whl"))
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return str(venv)


def _install(kind: str, request) -> str:
    if kind == "checkout":
        return os.path.dirname(sys.executable)
    return os.path.join(request.getfixturevalue("wheel_venv"), "bin")


@pytest.mark.parametrize("kind", ["checkout", "wheel"])
def test_first_commands_after_boot(kind, request, tmp_path, busybox_rootfs) -> None:
    bindir = _install(kind, request)
    if kind == "wheel":
        first = open(os.path.join(bindir, "pyrunc-boot")).readline()
        assert first == f"#!{os.path.join(bindir, 'python')}\n" or first.startswith(f"#!{bindir}/python"), first
        assert not os.path.islink(os.path.join(bindir, "pyrunc"))
    tar = tmp_path / "busybox.tar"
    with tarfile.open(tar, "w") as t:
        t.add(busybox_rootfs, arcname=".")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo built > /built && cat /proc/self/mountinfo | wc -l\n")
    parent = tmp_path / "parent"
    bundle = parent / "bundle"
    bundle.mkdir(parents=True)
    shutil.copytree(busybox_rootfs, bundle / "rootfs", symlinks=True)
    subprocess.run([os.path.join(bindir, "pyrunc"), "spec", "--bundle", str(bundle)], check=True, timeout=60)
    cfg = (bundle / "config.json").read_text().replace('"terminal": true', '"terminal": false')
    cfg = cfg.replace('"sh"\n', '"sh", "-c", "echo ran-after-boot"\n')
    (bundle / "config.json").write_text(cfg)
    store = tmp_path / "store"
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", SEQUENCE, "sh",
                          bindir, str(store), str(tar), str(ctx), str(parent)],
                         capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    facts = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    build_log = (parent / "build.log").read_text() if (parent / "build.log").exists() else ""
    assert out.returncode == 0 and facts.get("BUILD_RC") == "0", (out.returncode, out.stderr, build_log[-2000:])
    assert facts["VERSION"].startswith("pyrunc, version"), facts
    assert facts["STATE_RC"] == "1", facts
    assert (parent / "state.err").read_text().strip() == 'pyrunc: container "no-such-id" does not exist'
    assert (parent / "state.out").read_text() == ""
    assert facts["RUN_RC"] == "0", (parent / "run.err").read_text()
    assert (parent / "run.out").read_text().strip() == "ran-after-boot"
    assert facts["LIST"].strip() == "", facts  # `run` deleted its container
    # the guard left nothing under /run: only the state roots of the runtime and the builder
    left = set((parent / "run-dir.txt").read_text().split())
    assert left <= {"pyrunc", "pybuild"}, left
