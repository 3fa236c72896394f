"""Fixtures for the hostile-bundle tests of SECURITY-ANCHORS.md.

Each test builds a busybox-static bundle in its own tmp dir (`make_bundle`),
runs it under a runtime (`rt`: pyrunc, and runc as the oracle), and the `host`
fixture checks the host afterwards:

  H1  no new mount in the host mount namespace (outside other tests' scratch
      areas, which run concurrently on this machine)
  H2  core_pattern, modprobe and /proc/sysrq-trigger unchanged
  H3  sha256 + inode of the interpreter, pyrunc's package files and runc unchanged
  H4  no new files in /etc and /root, and the canaries a test registers unchanged
  H5  after `delete`, the runtime's --root holds no state (checked by `rt`)

Every bundle, container and mount a test makes is removed at teardown, also
when the test fails.
"""

from __future__ import annotations

import copy
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest
import testlib
from seclib import DOCKER_CAPS
from testlib import BUSYBOX, PYRUNC, RUNC, make_busybox_rootfs, runtime_fixture, unmount_under


# `runc spec` (1.1.5) with terminal off and a writable root: tests write logs into it.
TEMPLATE: dict = {
    "ociVersion": "1.0.2-dev",
    "process": {
        "terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {s: list(DOCKER_CAPS) for s in ("bounding", "effective", "permitted")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": False},
    "hostname": "sec",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                        "/proc/scsi"],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}


# ---------------------------------------------------------------- bundles
class SecBundle:
    """A bundle dir: rootfs/ with busybox and its applets, and a config dict to edit."""

    def __init__(self, path: str, template_rootfs: str) -> None:
        self.path = path
        self.rootfs = os.path.join(path, "rootfs")
        os.makedirs(path)
        shutil.copytree(template_rootfs, self.rootfs, symlinks=True)
        self.config = copy.deepcopy(TEMPLATE)

    @property
    def process(self) -> dict:
        return self.config["process"]

    def args(self, *args: str) -> "SecBundle":
        self.config["process"]["args"] = list(args)
        return self.write()

    def sh(self, script: str) -> "SecBundle":
        return self.args("sh", "-c", script)

    def write(self) -> "SecBundle":
        with open(os.path.join(self.path, "config.json"), "w") as f:
            json.dump(self.config, f, indent=1)
        return self

    def file(self, rel: str, content: str = "", mode: int = 0o644) -> str:
        path = os.path.join(self.rootfs, rel.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(content)
        os.chmod(path, mode)
        return path

    def replace(self, rel: str) -> str:
        """Remove rootfs/REL (file, link or tree) so a test can plant something else there."""
        path = os.path.join(self.rootfs, rel.lstrip("/"))
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def read(self, rel: str) -> str:
        try:
            with open(os.path.join(self.rootfs, rel.lstrip("/")), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


@pytest.fixture(scope="session")
def busybox_template(tmp_path_factory) -> str:
    """tests/conftest.py's busybox rootfs, with a user 1000 and /usr/bin, /sbin."""
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed (/bin/busybox)")
    return make_busybox_rootfs(
        str(tmp_path_factory.mktemp("secbb") / "rootfs"),
        ("proc", "sys", "dev", "etc", "tmp", "root", "usr/bin", "sbin"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/tmp:/bin/sh\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n")


_unmount_under = unmount_under  # testlib's


@pytest.fixture
def make_bundle(tmp_path, busybox_template):
    """Factory: make_bundle("name") -> SecBundle; every bundle is removed at teardown."""
    made: list[SecBundle] = []

    def make(name: str = "bundle") -> SecBundle:
        b = SecBundle(str(tmp_path / name), busybox_template)
        made.append(b)
        return b.write()

    yield make
    for b in made:
        _unmount_under(b.path)
        shutil.rmtree(b.path, ignore_errors=True)


# ---------------------------------------------------------------- runtimes
_VERB_OK: dict[str, bool] = {}


class Runtime(testlib.Runtime):
    """A runc-compatible CLI with a private --root (text out); deletes its containers at
    teardown and reports what they left (H5)."""

    def new_id(self) -> str:
        cid = f"sec-{uuid.uuid4().hex[:10]}"
        self.ids.add(cid)
        return cid

    def __call__(self, *args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.cmd(*args), capture_output=True, text=True, timeout=timeout, **kw)

    def run(self, bundle: SecBundle, **kw) -> subprocess.CompletedProcess:
        return self("run", "-b", bundle.path, self.new_id(), **kw)

    def detach(self, bundle: SecBundle, verb: str = "run") -> str:
        """`run -d` (or `create`): the container keeps no pipe of ours open (stdio to /dev/null)."""
        cid = self.new_id()
        err = os.path.join(bundle.path, f"{cid}.stderr")
        args = ("run", "-d") if verb == "run" else (verb,)
        with open(err, "w") as f:
            rc = subprocess.run(self.cmd(*args, "-b", bundle.path, cid), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=f, timeout=60).returncode
        assert rc == 0, open(err).read()
        return cid

    def create(self, bundle: SecBundle) -> str:
        return self.detach(bundle, "create")

    def oracle_gap(self, reason: str, dangerous: bool = False) -> None:
        """The installed runc (1.1.5) predates a fix: skip it if running the attack would harm the
        host (it did overwrite core_pattern here), else expect it to fail (strict xfail)."""
        if self.name != "runc":
            return
        if dangerous:
            pytest.skip(f"runc 1.1.5 is vulnerable ({reason}); not run against the host")
        self.node.add_marker(pytest.mark.xfail(reason=f"runc 1.1.5 is vulnerable: {reason}", strict=True))

    def require(self, verb: str) -> None:
        """xfail a pyrunc case only while the core lacks `verb` (issue 6: remove once it lands)."""
        if self.name != "pyrunc":
            return
        if verb not in _VERB_OK:
            _VERB_OK[verb] = subprocess.run([PYRUNC, verb, "--help"], capture_output=True).returncode == 0
        if not _VERB_OK[verb]:
            pytest.xfail(f"pyrunc {verb} is not implemented yet")

    def init_pid(self, cid: str) -> int:
        out = self("state", cid)
        assert out.returncode == 0, out.stderr
        return int(json.loads(out.stdout)["pid"])

    def cleanup(self) -> None:
        """Delete the test's containers, then note in `left` what they left (H5)."""
        super().cleanup()
        # the state root keeps the compiled seccomp filters (pyrunc/seccomp/cache.py): not a container's state
        left = [n for n in os.listdir(self.root) if n != "@seccomp"] if os.path.isdir(self.root) else []
        for cid in self.ids:  # cgroups are named after the id (cgroupsPath is absent)
            left += glob.glob(f"/sys/fs/cgroup/*/{cid}") + glob.glob(f"/sys/fs/cgroup/*/*/{cid}")
        self.left = left


def _runtime(request, tmp_path, name: str):
    rt = yield from runtime_fixture(request, tmp_path, name, Runtime)
    assert not rt.left, f"H5: {name} delete left state or cgroups behind: {rt.left}"


@pytest.fixture(params=["pyrunc", pytest.param("runc", marks=pytest.mark.peer)])
def rt(request, tmp_path):
    """The same hostile bundle under pyrunc and under runc (the oracle)."""
    yield from _runtime(request, tmp_path, request.param)


@pytest.fixture
def pyrunc_rt(request, tmp_path):
    yield from _runtime(request, tmp_path, "pyrunc")


# ---------------------------------------------------------------- host checks
SENSITIVE_PROC = tuple(p for p in ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe")
                       if os.path.exists(p))  # no modprobe on a kernel without modules
# Other engineers' tests and builds run concurrently on this machine and mount
# scratch trees under these prefixes: a new mount there is only ours (H1) if it
# lies under this test's tmp dir or host dir.
FOREIGN_MOUNT_PREFIXES = ("/tmp/", "/var/tmp/", "/var/lib/", "/run/", "/sys/fs/cgroup/", "/proc/")


def _sha(path: str) -> tuple[str, int, int]:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    st = os.stat(path)
    return h.hexdigest(), st.st_ino, st.st_size


def runtime_files() -> list[str]:
    """H3: the interpreters, libpython, the installed packages' C extensions, runc.

    pyrunc's own .py files are left out of the per-test check: they are edited
    while the suite runs in this shared checkout. test_python_imports checks
    that nothing inside a container gets them written or executed.
    """
    import _prctl

    files = {os.path.realpath(sys.executable), RUNC, os.path.realpath(_prctl.__file__)}
    files.update(os.path.realpath(p) for p in glob.glob("/usr/bin/python3*") if os.path.isfile(p))
    files.update(os.path.realpath(p) for p in glob.glob("/usr/lib/x86_64-linux-gnu/libpython3*"))
    return sorted(f for f in files if os.path.isfile(f))


def _mounts() -> dict[str, str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[0]: line.split()[4] for line in f}


class Host:
    """Snapshots the host before a test; `check()` (also run at teardown) asserts H1-H4."""

    def __init__(self, tmp_path: str, host_dir: str) -> None:
        self.own_dirs = (os.path.realpath(tmp_path), os.path.realpath(host_dir))
        self.canaries: dict[str, tuple] = {}
        self.mounts = _mounts()
        self.proc = {p: self._read(p) for p in SENSITIVE_PROC}
        self.sysrq = self._sysrq()
        self.files = {p: _sha(p) for p in runtime_files()}
        self.etc = self._listing()

    @staticmethod
    def _sysrq() -> tuple[int, int] | None:
        try:  # absent without CONFIG_MAGIC_SYSRQ
            st = os.stat("/proc/sysrq-trigger")
        except FileNotFoundError:
            return None
        return (st.st_mode, st.st_mtime_ns)

    @staticmethod
    def _read(path: str) -> str:
        with open(path) as f:
            return f.read()

    @staticmethod
    def _listing() -> set[str]:
        out = set()
        for top in ("/etc", "/root"):
            for dirpath, dirs, names in os.walk(top):
                dirs[:] = [d for d in dirs if not os.path.ismount(os.path.join(dirpath, d))]
                out.update(os.path.join(dirpath, n) for n in names + dirs)
        return out

    def canary(self, path: str, content: str = "canary\n") -> str:
        """Create a host file (or reuse an existing one) and remember its content, mode, owner, inode."""
        if not os.path.lexists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(content)
        self.canaries[path] = self._identity(path)
        return path

    @staticmethod
    def _identity(path: str) -> tuple:
        st = os.lstat(path)
        data = open(path, "rb").read() if os.path.isfile(path) and not os.path.islink(path) else b""
        return (st.st_mode, st.st_uid, st.st_gid, st.st_ino, data)

    def new_mounts(self) -> list[str]:
        now = _mounts()
        fresh = [point for mid, point in now.items() if mid not in self.mounts]
        mine = tuple(d + "/" for d in self.own_dirs)
        ours = [p for p in fresh if p.startswith(mine) or p + "/" in mine]
        others = [p for p in fresh if not p.startswith(FOREIGN_MOUNT_PREFIXES)]
        return sorted(set(ours + others))

    def check(self) -> None:
        assert not self.new_mounts(), f"H1: new host mounts: {self.new_mounts()}"
        for p, before in self.proc.items():
            now = self._read(p)
            if now != before:  # put the host right before failing: this is the host's real value
                with open(p, "w") as f:
                    f.write(before)
            assert now == before, f"H2: {p} changed to {now!r} (restored)"
        assert self._sysrq() == self.sysrq, "H2: /proc/sysrq-trigger changed"
        for p, before in self.files.items():
            assert _sha(p) == before, f"H3: runtime file changed: {p}"
        new = self._listing() - self.etc
        assert not new, f"H4: new files in /etc or /root: {sorted(new)[:10]}"
        for p, before in self.canaries.items():
            assert os.path.lexists(p), f"H4: canary {p} was removed"
            assert self._identity(p) == before, f"H4: canary {p} changed"




@pytest.fixture
def host_dir(tmp_path):
    """A host directory outside every bundle, for canaries and symlink targets."""
    d = f"/tmp/pyrunc-sec-{uuid.uuid4().hex[:8]}"
    os.makedirs(d)
    yield d
    _unmount_under(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def host(tmp_path, host_dir):
    """Host checks H1-H4 at teardown (before host_dir, which holds the canaries, goes away)."""
    h = Host(str(tmp_path), host_dir)
    yield h
    h.check()


