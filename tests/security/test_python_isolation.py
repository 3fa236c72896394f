"""Issue 6 §3b/§3c and SECURITY-ANCHORS §1 "Don't import after pivot_root": the
runtime never runs Python code from the container's filesystem, and PYTHON*
variables, in the container's env or the runtime's own, change nothing.

The rootfs plants, at the very paths the runtime imports from (its sys.path,
pyrunc's own package dir, the stdlib), a module for every name the runtime
could import lazily; each one writes a marker when imported. After the run no
marker may exist, neither in the rootfs nor on the host.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pyrunc
from pyrunc import exeguard

MARK = "pyrunc-pwned"


def _evil(name: str) -> str:
    return f"open('/{MARK}', 'a').write({name!r} + '\\n')\n"


def plant(rootfs: str) -> int:
    names = set(sys.stdlib_module_names) | {"sitecustomize", "usercustomize", "click", "jsonschema", "pyroute2",
                                            "prctl", "_prctl"}
    pkg = os.path.dirname(os.path.abspath(pyrunc.__file__))
    dirs = [p for p in exeguard.runtime_sys_path() if os.path.isdir(p)]
    dirs.append(f"/usr/lib/python{sys.version_info[0]}.{sys.version_info[1]}")
    count = 0
    for d in dirs:
        target = os.path.join(rootfs, d.lstrip("/"))
        os.makedirs(target, exist_ok=True)
        for name in names:
            with open(os.path.join(target, name + ".py"), "w") as f:
                f.write(_evil(name))
            count += 1
        os.makedirs(os.path.join(target, "encodings"), exist_ok=True)
        with open(os.path.join(target, "encodings", "__init__.py"), "w") as f:
            f.write(_evil("encodings"))
    for top, _dirs, files in os.walk(pkg):  # a hostile copy of pyrunc itself
        rel = os.path.relpath(top, pkg)
        target = os.path.join(rootfs, pkg.lstrip("/"), rel)
        os.makedirs(target, exist_ok=True)
        for fname in files:
            if fname.endswith(".py"):
                with open(os.path.join(target, fname), "w") as f:
                    f.write(_evil(f"pyrunc/{rel}/{fname}"))
                count += 1
    return count


def test_no_code_loaded_from_the_rootfs(pyrunc_rt, make_bundle, host) -> None:
    b = make_bundle()
    assert plant(b.rootfs) > 300
    b.process["env"] += ["PYTHONPATH=/usr/lib/python3.11:/", "PYTHONHOME=/usr", "PYTHONSTARTUP=/os.py",
                         "PYTHONINSPECT=1"]
    b.config["linux"]["sysctl"] = {"kernel.domainname": "x"}
    b.process["capabilities"]["bounding"].append("CAP_NET_ADMIN")
    b.sh("echo ran")
    out = pyrunc_rt.run(b)
    assert out.returncode == 0 and "ran" in out.stdout, out.stderr
    assert not os.path.exists(os.path.join(b.rootfs, MARK)), open(os.path.join(b.rootfs, MARK)).read()
    assert not os.path.exists("/" + MARK)


def test_failing_container_loads_no_code_either(pyrunc_rt, make_bundle, host) -> None:
    """The error path (traceback formatting, error reporting) must not import lazily after pivot_root."""
    b = make_bundle()
    plant(b.rootfs)
    b.process["cwd"] = "/does/not/exist/file"
    b.write()
    (open(os.path.join(b.rootfs, "does-not"), "w")).close()
    b.args("/no-such-binary")
    out = pyrunc_rt.run(b)
    assert out.returncode != 0
    assert not os.path.exists(os.path.join(b.rootfs, MARK)), open(os.path.join(b.rootfs, MARK)).read()
    assert not os.path.exists("/" + MARK)


def test_runtime_environment_python_variables_change_nothing(pyrunc_rt, make_bundle, host, tmp_path) -> None:
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "marker"
    for name in ("sitecustomize", "usercustomize", "click", "json", "pyrunc"):
        (evil / f"{name}.py").write_text(f"open({str(marker)!r}, 'a').write({name!r})\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(evil),
           "PYTHONSTARTUP": str(evil / "sitecustomize.py"), "PYTHONHOME": str(evil), "PYTHONINSPECT": "1",
           "PYTHONWARNINGS": "error", "PYTHONDONTWRITEBYTECODE": "", "PYTHONUSERBASE": str(evil)}
    b = make_bundle().sh("echo ran")
    out = subprocess.run(pyrunc_rt.cmd("run", "-b", b.path, pyrunc_rt.new_id()), capture_output=True, text=True,
                         env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0 and "ran" in out.stdout, out.stderr[-500:]
    assert not marker.exists(), marker.read_text()
