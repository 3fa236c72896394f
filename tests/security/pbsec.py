"""Helpers for the pybuild security tests: a store with a busybox base, hostile tars, canaries.

Imported by tests/security/test_pybuild_*.py (`from pbsec import ...`; the fixtures are picked up
where they are imported). Every test gets its own store under its tmp dir and a host directory
(`host_dir`, outside every bundle and store) for the canaries an attack must not reach.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import uuid

import pytest
from testlib import install_applets

BUSYBOX = "/bin/busybox"


def busybox_rootfs(path: str) -> str:
    os.makedirs(os.path.join(path, "bin"))
    for d in ("etc", "tmp", "root", "proc", "dev", "sys", "run"):
        os.makedirs(os.path.join(path, d))
    os.chmod(os.path.join(path, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(path, "bin", "busybox"))
    install_applets(os.path.join(path, "bin"))
    with open(os.path.join(path, "etc", "passwd"), "w") as fh:
        fh.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(os.path.join(path, "etc", "group"), "w") as fh:
        fh.write("root:x:0:\nnogroup:x:65534:\n")
    return path


class Entry:
    """One tar member to write: kind is file|dir|symlink|hardlink|fifo|blk|chr."""

    def __init__(self, name: str, kind: str = "file", data: bytes = b"", target: str = "",
                 mode: int | None = None, mtime: int = 1_600_000_000, dev: tuple[int, int] = (0, 0)) -> None:
        self.name, self.kind, self.data, self.target, self.mtime = name, kind, data, target, mtime
        self.dev = dev
        self.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)


def tar_bytes(entries: list[Entry], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.mode, info.mtime = e.mode, e.mtime
            if e.kind == "dir":
                info.type = tarfile.DIRTYPE
            elif e.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, e.target
            elif e.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, e.target
            elif e.kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif e.kind in ("blk", "chr"):
                info.type = tarfile.BLKTYPE if e.kind == "blk" else tarfile.CHRTYPE
                info.devmajor, info.devminor = e.dev
            else:
                info.size = len(e.data)
            tar.addfile(info, io.BytesIO(e.data) if e.kind == "file" else None)
    return out.getvalue()


class Pybuild:
    """The real CLI against one store; results are (rc, stdout, stderr)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def __call__(self, *args: str, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "pybuild", "--root", self.root, *args]
        full = dict(os.environ)
        full.pop("SOURCE_DATE_EPOCH", None)
        full.update(env or {})
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full)

    def ok(self, *args: str, **kw) -> subprocess.CompletedProcess:
        res = self(*args, **kw)
        assert res.returncode == 0, f"pybuild {' '.join(args)}: {res.returncode}\n{res.stderr[-3000:]}"
        return res

    def build(self, ctx: str, *args: str, **kw) -> subprocess.CompletedProcess:
        return self("build", "--progress", "plain", *args, ctx, **kw)

    def import_tar(self, data: bytes, name: str, tmp: str, *changes: str, unpack: bool = False) -> None:
        """Store a (hostile) layer as image `name`. Not unpacked by default (`import --no-unpack`), so
        that the path under attack is the one the test then takes (FROM, bundle, an output); the
        import-time unpack has cases of its own (test_pybuild_entry_unpack.py)."""
        path = os.path.join(tmp, f"{name}-{uuid.uuid4().hex[:6]}.tar")
        with open(path, "wb") as fh:
            fh.write(data)
        args = [a for c in changes for a in ("--change", c)]
        self.ok("import", path, "-t", name, *args, *(() if unpack else ("--no-unpack",)))


def refused(res: subprocess.CompletedProcess, *needles: str) -> None:
    """A refusal as the guide wants it: non-zero, no traceback, the last stderr line a one-line
    `pybuild: ...` message that names what was refused."""
    assert res.returncode != 0, f"expected a refusal, got rc=0\n{res.stderr[-2000:]}"
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    last = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else ""
    assert last.startswith("pybuild: "), res.stderr[-2000:]
    for needle in needles:
        assert needle in last, f"{needle!r} not in {last!r}"


def write_context(path: str, files: dict[str, str | bytes]) -> str:
    for rel, content in files.items():
        target = os.path.join(path, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as fh:
            fh.write(content.encode() if isinstance(content, str) else content)
    return path


def snapshot_tree(path: str) -> dict[str, tuple]:
    """Everything under `path` (names, types, sizes, inodes, content of small files): for "unchanged"."""
    out: dict[str, tuple] = {}
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            data = b""
            if os.path.isfile(full) and not os.path.islink(full) and st.st_size < 65536:
                with open(full, "rb") as fh:
                    data = fh.read()
            out[os.path.relpath(full, path)] = (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, data)
    return out


@pytest.fixture(scope="module")
def busybox_tar(tmp_path_factory) -> str:
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed (/bin/busybox)")
    d = tmp_path_factory.mktemp("pbsec-busybox")
    rootfs = busybox_rootfs(str(d / "rootfs"))
    path = str(d / "busybox.tar")
    with tarfile.open(path, "w") as tar:
        tar.add(rootfs, arcname=".")
    return path


@pytest.fixture
def pb(tmp_path, busybox_tar) -> Pybuild:
    """A fresh store with `busybox` imported, its layer not unpacked yet (`--no-unpack`: the first
    build unpacks it, the path the security and fault tests attack and kill); at teardown its tmp dir
    must be empty."""
    if os.geteuid() != 0:
        pytest.skip("pybuild builds need root")
    tool = Pybuild(str(tmp_path / "store"))
    tool.ok("import", busybox_tar, "-t", "busybox", "--change", 'CMD ["sh"]', "--no-unpack")
    yield tool
    tmp = os.path.join(tool.root, "tmp")
    left = [n for n in os.listdir(tmp) if not n.startswith("build-keep")] if os.path.isdir(tmp) else []
    assert left == [], f"build temp dirs left behind: {left}"


@pytest.fixture
def victim(host_dir) -> str:
    """A host tree an attack aims at: files, a subdirectory, an empty dir and an empty file
    (what stub pruning could remove). Checked unchanged by `assert_intact`."""
    os.makedirs(os.path.join(host_dir, "sub", "empty-dir"))
    for rel, data in (("canary", b"host file\n"), ("sub/data", b"data\n"), ("empty-file", b"")):
        with open(os.path.join(host_dir, rel), "wb") as fh:
            fh.write(data)
    os.utime(os.path.join(host_dir, "canary"), (1_000_000, 1_000_000))
    return host_dir


def assert_intact(path: str, before: dict[str, tuple]) -> None:
    after = snapshot_tree(path)
    missing = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    assert not missing and not changed, f"host tree {path} changed: missing {missing}, changed {changed}"
