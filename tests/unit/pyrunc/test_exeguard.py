"""exeguard: the pure parts (verb detection, boot code, entry point text, import seal)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pyrunc import exeguard


@pytest.mark.parametrize(("argv", "expected"), [
    (["run", "-b", "x", "id"], True), (["create", "id"], True), (["exec", "id", "ls"], True),
    (["--root", "/r", "run", "id"], True), (["--root=/r", "--debug", "exec", "id"], True),
    (["--log", "run", "state", "id"], False), (["state", "id"], False), (["list"], False),
    (["--help"], False), ([], False), (["delete", "run"], False),
])
def test_needs_guard(argv: list[str], expected: bool) -> None:
    assert exeguard.needs_guard(argv) is expected


def test_view_path_is_per_interpreter() -> None:
    a = exeguard.view_path("/usr/bin/python3.11")
    b = exeguard.view_path("/opt/py/bin/python3.11")
    assert a != b and a.startswith(exeguard.VIEW_DIR + "/") and a.endswith("/python3.11")


def test_boot_code_runs_the_cli_with_explicit_paths(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = exeguard.boot_code(exeguard.runtime_sys_path())
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code, "--help"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"}, timeout=60)
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


def test_entry_point_ignores_python_env(tmp_path) -> None:  # type: ignore[no-untyped-def]
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "marker"
    (evil / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('site')\n")
    (evil / "click.py").write_text(f"open({str(marker)!r}, 'w').write('click')\n")
    entry = tmp_path / "pyrunc"
    exeguard.write_entry_point(str(entry))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(evil), "PYTHONHOME": str(evil),
           "PYTHONSTARTUP": str(evil / "sitecustomize.py"), "PYTHONINSPECT": "1"}
    out = subprocess.run([str(entry), "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Usage" in out.stdout
    assert not marker.exists()
    # the control: a plain interpreter honours the same environment, so the check above can fail
    subprocess.run([sys.executable, "-c", "pass"], env={**env, "PYTHONHOME": ""}, timeout=60)
    assert marker.exists()
    assert os.access(entry, os.X_OK)
