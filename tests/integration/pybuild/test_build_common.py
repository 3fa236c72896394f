"""Shared helpers for the pybuild build tests (imported by test_build_*.py).

Each test gets its own store (`--root`) in a temp dir with a busybox base image
made by `pybuild import` from Debian's busybox-static, so tests never touch
/var/lib/pybuild and never depend on each other. Builds run the real CLI
(`python -m pybuild`) as root, with each runtime in RUNTIMES.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

BUSYBOX = "/bin/busybox"
RUNTIMES = [r for r in ("pyrunc", "runc") if r == "pyrunc" or shutil.which(r)]

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="builds need root (overlay mounts, containers)")
needs_busybox = pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="busybox-static is not installed")


def make_busybox_rootfs(path: str) -> str:
    os.makedirs(os.path.join(path, "bin"))
    os.makedirs(os.path.join(path, "etc"))
    os.makedirs(os.path.join(path, "tmp"))
    os.chmod(os.path.join(path, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(path, "bin", "busybox"))
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", os.path.join(path, "bin", applet))
    with open(os.path.join(path, "etc", "passwd"), "w") as fh:
        fh.write("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"
                 "nobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(os.path.join(path, "etc", "group"), "w") as fh:
        fh.write("root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n")
    return path


class Pybuild:
    """Runs the pybuild CLI against one store."""

    def __init__(self, root: str, runtime: str) -> None:
        self.root = root
        self.runtime = runtime

    def run(self, *args: str, check: bool = True, env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "pybuild", "--root", self.root, "--runtime", self.runtime, *args]
        full_env = dict(os.environ)
        full_env.pop("SOURCE_DATE_EPOCH", None)
        full_env.update(env or {})
        res = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"pybuild {' '.join(args)} failed ({res.returncode}):\n"
                                 f"{res.stdout}\n{res.stderr}")
        return res

    def build(self, context: str, *args: str, check: bool = True, env: dict | None = None,
              timeout: float = 120) -> subprocess.CompletedProcess:
        return self.run("build", "--progress", "plain", *args, context, check=check, env=env,
                        timeout=timeout)

    # --- reading the store directly (independently of pybuild's own code) -------
    def index(self) -> dict:
        with open(os.path.join(self.root, "index.json")) as fh:
            return json.load(fh)

    def blob(self, digest: str) -> bytes:
        with open(os.path.join(self.root, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as fh:
            return fh.read()

    def manifest(self, name: str) -> dict:
        for desc in self.index()["manifests"]:
            if desc.get("annotations", {}).get("org.opencontainers.image.ref.name") == name:
                return json.loads(self.blob(desc["digest"]))
        raise KeyError(name)

    def config(self, name: str) -> dict:
        return json.loads(self.blob(self.manifest(name)["config"]["digest"]))

    def layer_tars(self, name: str) -> list[tarfile.TarFile]:
        out = []
        for layer in self.manifest(name)["layers"]:
            data = self.blob(layer["digest"])
            if layer["mediaType"].endswith("+gzip"):
                data = gzip.decompress(data)
            elif layer["mediaType"].endswith("+zstd"):
                data = subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
            out.append(tarfile.open(fileobj=io.BytesIO(data)))
        return out

    def raw_layers(self, name: str) -> list[bytes]:
        return [self.blob(layer["digest"]) for layer in self.manifest(name)["layers"]]

    def flatten(self, name: str) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
        """Apply the layer tars in order (OCI whiteouts included): path → (info, content)."""
        files: dict[str, tuple[tarfile.TarInfo, bytes | None]] = {}
        for tar in self.layer_tars(name):
            for m in tar.getmembers():
                path = m.name.rstrip("/")
                while path.startswith("./"):
                    path = path[2:]
                if path in ("", "."):
                    continue
                base = os.path.basename(path)
                parent = os.path.dirname(path)
                if base == ".wh..wh..opq":
                    for p in [p for p in files if p.startswith(parent + "/")]:
                        del files[p]
                    continue
                if base.startswith(".wh."):
                    gone = os.path.join(parent, base[4:])
                    for p in [p for p in files if p == gone or p.startswith(gone + "/")]:
                        del files[p]
                    continue
                data = tar.extractfile(m).read() if m.isreg() else None
                files[path] = (m, data)
        return files


@pytest.fixture(scope="module")
def base_image_tar(tmp_path_factory) -> str:
    """A busybox rootfs tarball, made once per module (imported per store)."""
    d = tmp_path_factory.mktemp("busybox-rootfs")
    rootfs = make_busybox_rootfs(str(d / "rootfs"))
    tar_path = str(d / "busybox.tar")
    with tarfile.open(tar_path, "w") as tar:
        tar.add(rootfs, arcname=".")
    return tar_path


@pytest.fixture(params=RUNTIMES)
def pb(request, tmp_path, base_image_tar) -> Pybuild:
    """A fresh store with `busybox` imported, for each runtime."""
    if os.geteuid() != 0:
        pytest.skip("builds need root")
    root = str(tmp_path / "store")
    tool = Pybuild(root, request.param)
    tool.run("import", base_image_tar, "-t", "busybox")
    yield tool
    leftovers = os.listdir(os.path.join(root, "tmp")) if os.path.isdir(os.path.join(root, "tmp")) else []
    assert leftovers == [], f"build temp dirs left behind: {leftovers}"


def write_context(path, files: dict[str, str | bytes]) -> str:
    for rel, content in files.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    return str(path)


def history(config: dict) -> list[str]:
    return [h.get("created_by", "") for h in config.get("history", [])]
