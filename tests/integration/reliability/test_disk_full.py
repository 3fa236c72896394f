"""Full and read-only disks: the state root or the store on a small tmpfs that fills in the middle of a
create (its inodes or its pages), a commit (a build step's or a container's) and an export.

Each failure is one line naming the file and saying "No space left on device" (or "Read-only file
system"), nothing half-written is kept (no container in `list`, no cgroup, no process; a store whose
fsck finds neither an error nor any garbage), and once space is freed the same command works.
"""

from __future__ import annotations

import contextlib
import glob
import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest
from pbsec import busybox_tar, pb, write_context  # noqa: F401
from rellib import fsck_lines, pids_with
from testlib import PYRUNC, Bundle


@contextlib.contextmanager
def tmpfs(path: str, **opts: int | str) -> Iterator[str]:
    os.makedirs(path, exist_ok=True)
    options = ",".join(f"{k}={v}" for k, v in opts.items())
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=True)


def _remount(path: str, **opts: int | str) -> None:
    options = ",".join(["remount"] + [f"{k}={v}" for k, v in opts.items()])
    subprocess.run(["mount", "-o", options, path], check=True)


def one_line(res: subprocess.CompletedProcess, tool: str, reason: str) -> str:
    err = res.stderr if isinstance(res.stderr, str) else res.stderr.decode(errors="replace")
    assert res.returncode != 0, f"expected a failure: {err}"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(f"{tool}: ")]  # a build's progress aside
    assert len(lines) == 1 and err.rstrip().endswith(lines[0]) and reason in lines[0], err
    return lines[0]


# ---- pyrunc: the state root fills in the middle of a create -------------------------------------
def _pyrunc(root: str, *args: str) -> subprocess.CompletedProcess:
    import tempfile

    # files, not pipes: a created container's init holds its stdio until it exits
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        res = subprocess.run([PYRUNC, "--root", root, *args], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                             timeout=60)
        out.seek(0)
        err.seek(0)
        res.stdout, res.stderr = out.read(), err.read()
    return res


def test_state_root_fills_mid_create(tmp_path, busybox_rootfs) -> None:
    """With 1, 2, 3... inodes free, create dies at each of the files it makes in turn."""
    b = Bundle(str(tmp_path / "bundle"), busybox_rootfs)
    b.config["process"]["args"] = ["sleep", "100"]
    b.write()
    cid = f"t-{uuid.uuid4().hex[:10]}"
    mnt = str(tmp_path / "state")
    root = os.path.join(mnt, "root")
    failures = []
    with tmpfs(mnt, size="256k", nr_inodes=1):
        for inodes in range(1, 40):
            _remount(mnt, nr_inodes=inodes)
            res = _pyrunc(root, "create", "-b", b.path, cid)
            if res.returncode == 0:
                break
            failures.append(one_line(res, "pyrunc", "No space left on device"))
            listed = _pyrunc(root, "list", "-q")
            assert listed.returncode == 0 and cid.encode() not in listed.stdout, listed
            assert not glob.glob(f"/sys/fs/cgroup/*/pyrunc/{cid}") and not pids_with(cid), failures[-1]
            assert not os.path.lexists(os.path.join(root, cid)), failures[-1]
        else:
            pytest.fail(f"create never succeeded: {failures[-3:]}")
        assert len(failures) >= 3, failures  # the root, the claim, the state files...
        _remount(mnt, nr_inodes=1000)  # space freed: the same ID works
        assert _pyrunc(root, "delete", "-f", cid).returncode == 0
        res = _pyrunc(root, "create", "-b", b.path, cid)
        assert res.returncode == 0, res.stderr
        assert _pyrunc(root, "delete", "-f", cid).returncode == 0


def _fill(mnt: str, leave_pages: int) -> str:
    """Take every free block of the tmpfs at `mnt` but `leave_pages` pages (inodes stay free)."""
    filler = os.path.join(mnt, "filler")
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * (1 << 16))
                fh.flush()
        except OSError:
            pass
    with open(filler, "r+b") as fh:
        size = os.fstat(fh.fileno()).st_size
        fh.truncate(max(0, size - leave_pages * os.sysconf("SC_PAGE_SIZE")))
    return filler


def test_state_root_fills_mid_create_by_bytes(tmp_path, busybox_rootfs) -> None:
    """Inodes free, 0, 1, 2... pages: create dies writing the data of each file it makes in turn."""
    b = Bundle(str(tmp_path / "bundle"), busybox_rootfs)
    b.config["process"]["args"] = ["sleep", "100"]
    b.write()
    cid = f"t-{uuid.uuid4().hex[:10]}"
    mnt = str(tmp_path / "state")
    root = os.path.join(mnt, "root")
    failures = []
    with tmpfs(mnt, size="1m"):
        for pages in range(0, 40):
            filler = _fill(mnt, pages)
            res = _pyrunc(root, "create", "-b", b.path, cid)
            if res.returncode == 0:
                break
            failures.append(one_line(res, "pyrunc", "No space left on device"))
            assert f"{cid}/" in failures[-1], f"the line does not name the file: {failures[-1]}"
            listed = _pyrunc(root, "list", "-q")
            assert listed.returncode == 0 and cid.encode() not in listed.stdout, listed
            assert not glob.glob(f"/sys/fs/cgroup/*/pyrunc/{cid}") and not pids_with(cid), failures[-1]
            assert not os.path.lexists(os.path.join(root, cid)), failures[-1]
            os.unlink(filler)
        else:
            pytest.fail(f"create never succeeded: {failures[-3:]}")
        assert failures, "create succeeded with no page free: the test filled nothing"
        os.unlink(filler)  # space freed: the same ID works
        assert _pyrunc(root, "delete", "-f", cid).returncode == 0
        res = _pyrunc(root, "create", "-b", b.path, cid)
        assert res.returncode == 0, res.stderr
        assert _pyrunc(root, "delete", "-f", cid).returncode == 0


def test_read_only_state_root(tmp_path, busybox_rootfs) -> None:
    b = Bundle(str(tmp_path / "bundle"), busybox_rootfs)
    b.config["process"]["args"] = ["true"]
    b.write()
    mnt = str(tmp_path / "ro")
    with tmpfs(mnt, size="1m"):
        os.makedirs(os.path.join(mnt, "root"))
        _remount(mnt, mode="0755")
        subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
        res = _pyrunc(os.path.join(mnt, "root"), "run", "-b", b.path, f"t-{uuid.uuid4().hex[:10]}")
        one_line(res, "pyrunc", "Read-only file system")


# ---- pybuild: the store fills mid-commit, the destination mid-export ----------------------------
@pytest.fixture
def small_store(tmp_path, busybox_tar):
    """A 16 MB tmpfs holding a store with busybox imported and unpacked (a build ran on it)."""
    from pbsec import Pybuild

    mnt = str(tmp_path / "small")
    with tmpfs(mnt, size="16m"):
        store = Pybuild(os.path.join(mnt, "store"))
        store.ok("import", busybox_tar, "-t", "busybox")
        ctx = write_context(str(tmp_path / "warm"), {"Dockerfile": "FROM busybox\nRUN true\n"})
        store.ok("build", "--network", "none", "-t", "warm", ctx)
        yield store, mnt


def _assert_clean(store) -> None:
    lines = fsck_lines(store)
    assert len(lines) == 1 and lines[0].endswith(": ok"), lines  # no error, not even garbage


def test_store_fills_mid_commit(small_store, tmp_path) -> None:
    store, mnt = small_store
    free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
    # the COPY fits in the step's upper dir; its layer blob (random: incompressible) does not fit beside it
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": "FROM busybox\nCOPY big /big\n",
                                                "big": os.urandom(int(free * 0.6))})
    res = store.build(ctx, "--network", "none", "-t", "big")
    line = one_line(res, "pybuild", "No space left on device")
    assert "COPY" in line or "blob" in line or "/big" in line, line
    _assert_clean(store)
    assert "big " not in store.ok("images").stdout
    _remount(mnt, size="64m")  # space freed
    store.ok("build", "--network", "none", "-t", "big", ctx)
    _assert_clean(store)


def test_store_fills_while_a_load_unpacks(small_store, tmp_path) -> None:
    """`pybuild load` of an image whose blob fits but whose unpacked layer does not (a file of one
    repeated byte: tiny gzip, large on disk; not zeros, which unpack as holes): one line naming
    the layer, nothing tagged, no half layer; loaded again once there is room."""
    store, mnt = small_store
    free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
    big = tmp_path / "bigtree"
    big.mkdir()
    with open(big / "a", "wb") as fh:
        fh.write(b"a" * int(free * 1.5))
    maker = type(store)(str(tmp_path / "maker"))
    maker.ok("import", str(big), "-t", "fat", "--no-unpack")
    archive = str(tmp_path / "fat.tar")
    maker.ok("save", "--format", "oci-archive", "fat", "-o", archive)  # blobs as stored: gzip
    assert os.path.getsize(archive) < free / 2
    line = one_line(store("load", "-i", archive), "pybuild", "No space left on device")
    assert f"load {archive}: unpacking layer 1 of 1 (sha256:" in line, line
    assert "fat" not in store.ok("images").stdout
    assert not [n for n in os.listdir(os.path.join(store.root, "layers")) if n.startswith(".tmp-")]
    _remount(mnt, size="64m")
    store.ok("load", "-i", archive)
    assert "fat" in store.ok("images").stdout
    _assert_clean(store)


def test_store_fills_mid_container_commit(small_store, tmp_path) -> None:
    """`pybuild commit` of a container whose change (random: incompressible) fits in its upper dir
    but whose layer blob does not fit beside it."""
    store, mnt = small_store
    free_kib = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize // 1024
    store.ok("run", "--name", "filler", "--network", "none", "warm", "sh", "-c",
             f"head -c {int(free_kib * 0.6)}k /dev/urandom > /big")
    try:
        line = one_line(store("commit", "filler", "big"), "pybuild", "No space left on device")
        _assert_clean(store)
        assert "big " not in store.ok("images").stdout, line
        _remount(mnt, size="64m")  # space freed
        store.ok("commit", "filler", "big")
        size = store.ok("run", "--rm", "--network", "none", "big", "wc", "-c", "/big").stdout.split()[0]
        assert int(size) == int(free_kib * 0.6) * 1024
    finally:
        store("rm", "-f", "filler")
    _assert_clean(store)


def test_export_destination_fills(small_store, tmp_path) -> None:
    store, _ = small_store
    out = str(tmp_path / "out")
    with tmpfs(out, size="256k"):
        for fmt in ("oci", "docker"):
            res = store("export", "warm", "-o", os.path.join(out, "warm.tar"), "--format", fmt)
            one_line(res, "pybuild", "No space left on device")
            assert os.listdir(out) == [], "a half-written archive (or its temp file) was kept"
        _remount(out, size="16m")
        store.ok("export", "warm", "-o", os.path.join(out, "warm.tar"))
    _assert_clean(store)


def test_read_only_store(small_store, tmp_path) -> None:
    store, mnt = small_store
    ctx = write_context(str(tmp_path / "ctx"), {"Dockerfile": "FROM busybox\nRUN echo x > /x\n"})
    subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)
    try:
        one_line(store.build(ctx, "--network", "none", "-t", "x"), "pybuild", "Read-only file system")
        one_line(store("rmi", "warm"), "pybuild", "Read-only file system")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", mnt], check=True)
    store.ok("build", "--network", "none", "-t", "x", ctx)
    _assert_clean(store)
