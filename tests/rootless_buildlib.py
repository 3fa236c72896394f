"""pybuild as the rootless tests' ordinary user (tests/rootlesslib.py makes and removes the user).

`UserBuild` runs pybuild as the user with a store of its own (XDG_DATA_HOME under the user's
home, so the default store location is what is used), and reads that store's blobs directly,
independently of pybuild's code. `busybox_tar` is the base image every test imports: a busybox
rootfs whose files are root's (uid 0) and one file of uid 1000, made by root here.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import uuid

from testlib import BUSYBOX, VENV_BIN, install_applets

PYBUILD = os.path.join(VENV_BIN, "pybuild")


def busybox_tar(workdir: str) -> str:
    """A busybox rootfs tar (owners as root made them: 0, and 1000 for /home/app), readable by all."""
    rootfs = os.path.join(workdir, "rootfs")
    for d in ("bin", "etc", "tmp", "root", "home/app"):
        os.makedirs(os.path.join(rootfs, d))
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    install_applets(os.path.join(rootfs, "bin"))
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as fh:
        fh.write("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
                 "nobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as fh:
        fh.write("root:x:0:\napp:x:1000:\nnogroup:x:65534:\n")
    os.chown(os.path.join(rootfs, "home", "app"), 1000, 1000)
    path = os.path.join(workdir, "busybox.tar")
    with tarfile.open(path, "w") as tar:
        tar.add(rootfs, arcname=".")
    os.chmod(path, 0o644)
    shutil.rmtree(rootfs)
    return path


def base_tar_fixture(user, name: str):
    """Body of a `base_tar` fixture: the busybox tar in the user's home (/tmp/pytest-of-root is
    closed to the user), removed after."""
    d = os.path.join(user.home, name)
    os.makedirs(d, mode=0o755, exist_ok=True)
    yield busybox_tar(d)
    shutil.rmtree(d)


def user_build_fixture(user, base_tar: str, import_base: bool = False):
    """Body of a `ub` fixture: a UserBuild with its own store, removed after by root (subordinate-
    owned files: the user would use pybuild rmi/prune)."""
    b = UserBuild(user, base_tar)
    if import_base:
        b.import_base()
    yield b
    shutil.rmtree(b.data_home)


class UserBuild:
    """pybuild run by `user` with its own XDG_DATA_HOME (so its own default store)."""

    def __init__(self, user, base_tar: str, runtime: str = "pyrunc") -> None:
        self.user = user
        self.data_home = user.mkdir(f"data-{uuid.uuid4().hex[:8]}")
        self.root = os.path.join(self.data_home, "pybuild")
        self.runtime = runtime
        self.base_tar = base_tar

    def env(self, **extra: str) -> dict[str, str]:
        return self.user.env(XDG_DATA_HOME=self.data_home, **extra)

    def __call__(self, *args: str, check: bool = True, env: dict[str, str] | None = None,
                 timeout: float = 180) -> subprocess.CompletedProcess:
        argv = [PYBUILD, *(["--runtime", self.runtime] if self.runtime != "pyrunc" else []), *args]
        proc = self.user.run(argv, env=env or self.env(), timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"pybuild {' '.join(args)} -> {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def import_base(self, name: str = "busybox") -> None:
        self("import", self.base_tar, "-t", name, "-c", 'CMD ["sh"]')

    def context(self, files: dict[str, str]) -> str:
        path = self.user.mkdir(f"ctx-{uuid.uuid4().hex[:8]}")
        for rel, text in files.items():
            with open(os.path.join(path, rel), "w") as fh:
                fh.write(text)
        self.user.chown_tree(path)
        return path

    # --- the store, read directly --------------------------------------------------
    def blob(self, digest: str) -> bytes:
        with open(os.path.join(self.root, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as fh:
            return fh.read()

    def manifest(self, name: str) -> dict:
        with open(os.path.join(self.root, "index.json")) as fh:
            index = json.load(fh)
        for desc in index["manifests"]:
            if desc.get("annotations", {}).get("org.opencontainers.image.ref.name") == name:
                return json.loads(self.blob(desc["digest"]))
        raise KeyError(name)

    def layer_owners(self, name: str, skip: int = 0) -> dict[str, tuple[int, int, int]]:
        """path -> (uid, gid, mode) over the image's layers after the first `skip`, later layers winning."""
        return owners_of(gzip.decompress(self.blob(d["digest"])) for d in self.manifest(name)["layers"][skip:])


def owners_of(tars) -> dict[str, tuple[int, int, int]]:
    out: dict[str, tuple[int, int, int]] = {}
    for data in tars:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar:
                name = m.name[2:] if m.name.startswith("./") else m.name
                out[name.rstrip("/")] = (m.uid, m.gid, m.mode)
    return out


def host_owners(user, root: str) -> set[int]:
    """The host uids that own anything under `root`."""
    seen = set()
    for dirpath, dirs, files in os.walk(root):
        for n in [dirpath] + [os.path.join(dirpath, x) for x in dirs + files]:
            seen.add(os.lstat(n).st_uid)
    return seen
