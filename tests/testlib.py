"""Helpers shared by the test files (imported as `testlib`; `conftest` is
ambiguous when several directories have one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

VENV_BIN = os.path.dirname(sys.executable)
PYRUNC = os.path.join(VENV_BIN, "pyrunc")
BUSYBOX = "/bin/busybox"


def install_applets(bindir: str) -> None:
    """Relative symlinks for every applet (`busybox --install -s` would point
    them at the host path of the binary, which does not exist in a container)."""
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for name in applets:
        link = os.path.join(bindir, name)
        if not os.path.lexists(link):
            os.symlink("busybox", link)


class Bundle:
    """A bundle dir with a busybox rootfs and a runc-default config to edit."""

    def __init__(self, path: str, rootfs_template: str) -> None:
        from pyrunc.spec import default_config

        self.path = path
        self.rootfs = os.path.join(path, "rootfs")
        shutil.copytree(rootfs_template, self.rootfs, symlinks=True)
        self.config = default_config()
        self.config["process"]["terminal"] = False

    def write(self) -> "Bundle":
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=2)
        return self

    def set_args(self, *args: str) -> "Bundle":
        self.config["process"]["args"] = list(args)
        return self.write()


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def install_commands(prefix: str, interpreter: str) -> str:
    """Lay out what `pip install` of this project makes, for `interpreter`, under `prefix`:
    prefix/bin/{pyrunc,pybuild} (the launchers of bin/), prefix/bin/pyrunc-boot with the
    interpreter in its first line (pip's `#!python` rewrite), and a venv marker whose
    site-packages .pth names this checkout and the test venv's site-packages (an editable
    install). `interpreter` should sit in prefix/bin. Returns prefix/bin."""
    import sysconfig

    bindir = os.path.join(prefix, "bin")
    os.makedirs(bindir, exist_ok=True)
    for name in ("pyrunc", "pybuild"):
        shutil.copy2(os.path.join(REPO, "bin", name), os.path.join(bindir, name))
    with open(os.path.join(REPO, "bin", "pyrunc-boot")) as f:
        f.readline()
        rest = f.read()
    with open(os.path.join(bindir, "pyrunc-boot"), "w") as f:
        f.write(f"#!{interpreter}\n{rest}")
    os.chmod(os.path.join(bindir, "pyrunc-boot"), 0o755)
    with open(os.path.join(prefix, "pyvenv.cfg"), "w") as f:
        f.write(f"home = {os.path.dirname(os.path.realpath(sys.executable))}\n"
                "include-system-site-packages = false\n")
    v = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = os.path.join(prefix, "lib", v, "site-packages")
    os.makedirs(site, exist_ok=True)
    with open(os.path.join(site, "checkout.pth"), "w") as f:
        f.write(f"{REPO}\n{sysconfig.get_paths()['purelib']}\n")
    return bindir


def unmount_under(path: str) -> None:
    """Lazily unmount everything mounted at or below `path` (deepest first)."""
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted(points, key=len, reverse=True):
        if point == real or point.startswith(real + "/"):
            subprocess.run(["umount", "-l", point], capture_output=True)


def typed(raw: object, prefix: str = ".linux.resources", source: str = "config.json"):
    """A raw `linux.resources` object through the one validator (pyrunc.config), as
    create and update give it to a cgroup manager."""
    from pyrunc.config.resources import load_resources

    return load_resources(raw, prefix, source)
