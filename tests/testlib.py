"""Helpers shared by the test files (imported as `testlib`; `conftest` is
ambiguous when several directories have one)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

VENV_BIN = os.path.dirname(os.path.abspath(sys.executable))
PYRUNC = os.environ.get("PYRUNC_BIN") or os.path.join(VENV_BIN, "pyrunc")  # PYRUNC_BIN: another entry point
RUNC = shutil.which("runc") or "/usr/sbin/runc"
BUSYBOX = "/bin/busybox"


def install_applets(bindir: str) -> None:
    """Relative symlinks for every applet (`busybox --install -s` would point
    them at the host path of the binary, which does not exist in a container)."""
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for name in applets:
        link = os.path.join(bindir, name)
        if not os.path.lexists(link):
            os.symlink("busybox", link)


def make_busybox_rootfs(root: str, dirs: tuple[str, ...], passwd: str, group: str) -> str:
    """A busybox-static tree at `root` (the template the bundle fixtures copy): the binary,
    its applets, the directories `dirs`, and /etc/passwd and /etc/group as given."""
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy2(BUSYBOX, os.path.join(root, "bin", "busybox"))
    install_applets(os.path.join(root, "bin"))
    for d in dirs:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write(passwd)
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write(group)
    return root


class Runtime:
    """A runc-compatible CLI (pyrunc, or a peer as the oracle) with its own --root;
    `cleanup()` deletes every container in `ids`. tests/conftest.py and
    tests/security/conftest.py add how they call it."""

    def __init__(self, name: str, root: str, node=None) -> None:  # type: ignore[no-untyped-def]
        self.name = name
        self.binary = PYRUNC if name == "pyrunc" else (shutil.which(name) or "")
        self.root = root
        self.node = node  # the pytest item (markers)
        self.ids: set[str] = set()

    def cmd(self, *args: str) -> list[str]:
        return [self.binary, "--root", self.root, *args]

    def cleanup(self) -> None:
        for cid in self.ids:
            subprocess.run(self.cmd("delete", "-f", cid), capture_output=True, timeout=60)


def runtime_fixture(request, tmp_path, name: str, cls: type = Runtime):  # type: ignore[no-untyped-def]
    """The body of a runtime fixture: skip a peer that is not installed, yield a `cls`
    with a --root in the test's tmp dir, delete its containers afterwards; returns it."""
    import pytest

    if name != "pyrunc" and shutil.which(name) is None:
        pytest.skip(f"{name} is not installed")
    rt = cls(name, str(tmp_path / f"{name}-root"), request.node)
    yield rt
    rt.cleanup()
    return rt


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
