"""exeguard and the launchers: verb detection, boot code, import seal, -I -S isolation,
and every way the launcher can find a broken installation (one line, exit 1)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from pyrunc import exeguard
from pyrunc.exeguard import needs_guard
from pyrunc.verbs import GLOBAL_OPTS
from testlib import install_commands

ENV = {"PATH": "/usr/bin:/bin"}


@pytest.mark.parametrize(("argv", "expected"), [
    (["run", "-b", "x", "id"], True), (["create", "id"], True), (["exec", "id", "ls"], True),
    (["--root", "/r", "run", "id"], True), (["--root=/r", "--debug", "exec", "id"], True),
    (["--log", "run", "state", "id"], False), (["state", "id"], False), (["list"], False),
    (["--help"], False), ([], False), (["delete", "run"], False),
    (["--log-format", "json", "create", "x"], True),
])
def test_needs_guard(argv: list[str], expected: bool) -> None:
    assert needs_guard(argv) is expected


def test_value_flags_follow_the_cli_table() -> None:
    assert exeguard.VALUE_FLAGS == {n for o in GLOBAL_OPTS if o.kind != "flag" for n in o.names}


def test_boot_code_runs_the_cli_with_explicit_paths() -> None:
    code = exeguard.boot_code(exeguard.runtime_sys_path())
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, "--help"], capture_output=True, text=True,
                         env=ENV, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout


def test_seal_imports_refuses_new_modules_only() -> None:
    code = ("import json, sys\n"
            "from pyrunc import exeguard\n"
            "exeguard.seal_imports()\n"
            "import json\n"  # already loaded: fine
            "json.dumps({})\n"
            "try:\n"
            "    import xml.dom.minidom\n"
            "except ImportError as err:\n"
            "    print('refused', err.name)\n"
            "else:\n"
            "    print('imported')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "refused xml", out.stderr


@pytest.fixture
def prefix(tmp_path) -> str:
    """An installation of the commands for (a symlink to) this interpreter, as pip lays it out."""
    p = tmp_path / "inst"
    (p / "bin").mkdir(parents=True)
    os.symlink(os.path.realpath(sys.executable), p / "bin" / "python3")
    install_commands(str(p), str(p / "bin" / "python3"))
    return str(p)


@pytest.mark.parametrize("tool", ["pyrunc", "pybuild"])
def test_launcher_runs_the_tool(prefix, tool) -> None:
    out = subprocess.run([os.path.join(prefix, "bin", tool), "--version"], capture_output=True, text=True,
                         env=ENV, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith(f"{tool}, version"), out.stderr


def test_launcher_through_a_symlink_elsewhere(prefix, tmp_path) -> None:
    link = tmp_path / "runc"
    os.symlink(os.path.join(prefix, "bin", "pyrunc"), link)
    out = subprocess.run([str(link), "--version"], capture_output=True, text=True, env=ENV, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("pyrunc, version"), out.stderr


def test_launcher_ignores_python_env(prefix, tmp_path) -> None:
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "marker"
    (evil / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('site')\n")
    (evil / "click.py").write_text(f"open({str(marker)!r}, 'w').write('click')\n")
    (evil / "pyrunc").mkdir()
    (evil / "pyrunc" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('pyrunc')\n")
    env = {**ENV, "PYTHONPATH": str(evil), "PYTHONHOME": str(evil), "PYTHONUSERBASE": str(evil),
           "PYTHONSTARTUP": str(evil / "sitecustomize.py"), "PYTHONINSPECT": "1"}
    out = subprocess.run([os.path.join(prefix, "bin", "pyrunc"), "--help"], capture_output=True, text=True,
                         env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout
    assert not marker.exists()
    # the control: a plain interpreter honours the same environment, so the check above can fail
    subprocess.run([sys.executable, "-c", "pass"], env={**env, "PYTHONHOME": ""}, timeout=60)
    assert marker.exists()


def _broken(prefix: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([os.path.join(prefix, "bin", "pyrunc"), *argv], capture_output=True, text=True,
                          env=ENV, timeout=60, stdin=subprocess.DEVNULL)


def _one_line(out: subprocess.CompletedProcess, *words: str) -> None:
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyrunc: broken installation:"), out.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert "Traceback" not in out.stderr


def test_interpreter_missing(prefix) -> None:
    os.unlink(os.path.join(prefix, "bin", "python3"))
    _one_line(_broken(prefix, "--version"), "is missing", "reinstall pyrunc")


def test_interpreter_replaced_by_a_directory(prefix) -> None:
    os.unlink(os.path.join(prefix, "bin", "python3"))
    os.mkdir(os.path.join(prefix, "bin", "python3"))
    _one_line(_broken(prefix, "--version"), "is missing")


def test_boot_program_missing(prefix) -> None:
    os.unlink(os.path.join(prefix, "bin", "pyrunc-boot"))
    _one_line(_broken(prefix, "state", "x"), "pyrunc-boot")


def test_boot_program_without_interpreter_line(prefix) -> None:
    with open(os.path.join(prefix, "bin", "pyrunc-boot"), "r+") as f:
        rest = f.read().split("\n", 1)[1]
        f.seek(0)
        f.write("#!python\n" + rest)
        f.truncate()
    _one_line(_broken(prefix, "--version"), "no interpreter named")


def test_package_missing(prefix) -> None:
    site = next(os.path.join(d, n) for d, _, files in os.walk(prefix) for n in files if n == "checkout.pth")
    os.unlink(site)
    _one_line(_broken(prefix, "--version"), "cannot import pyrunc")


def test_module_missing(prefix, tmp_path) -> None:
    """A package with one module gone: the verb that needs it fails in one line."""
    pkg = tmp_path / "pkgcopy"
    shutil.copytree(os.path.dirname(os.path.dirname(exeguard.__file__)) + "/pyrunc", pkg / "pyrunc",
                    ignore=shutil.ignore_patterns("__pycache__"))
    os.unlink(pkg / "pyrunc" / "query.py")
    pth = next(os.path.join(d, n) for d, _, files in os.walk(prefix) for n in files if n == "checkout.pth")
    lines = open(pth).read().splitlines()
    with open(pth, "w") as f:
        f.write("\n".join([str(pkg), *lines[1:]]) + "\n")
    _one_line(_broken(prefix, "state", "x"), "cannot import pyrunc.query")
