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
