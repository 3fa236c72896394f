"""An ordinary user for the rootless tests (issue 19), made and removed by the tests.

`rootless_user()` (a fixture body) adds a user with useradd, a home under /tmp, subordinate
id ranges in /etc/subuid and /etc/subgid and a /run/user/UID as a login would make it, and
removes all of it afterwards, whatever the test did: every process whose real uid is the
user's or in its subordinate ranges (containers, podman's pause process, conmon) is killed by
pid, then the ranges, the user, its home, its /run/user dir and what it left in /tmp go.
It skips, naming what is missing, when the host cannot run a rootless container.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

from testlib import BUSYBOX, PYRUNC, install_applets

SUB_COUNT = 65536


def _unprivileged_userns_reason() -> str | None:
    for path, bad in (("/proc/sys/kernel/unprivileged_userns_clone", "0"), ("/proc/sys/user/max_user_namespaces", "0")):
        try:
            with open(path) as f:
                if f.read().strip() == bad:
                    return f"{path} is {bad}: unprivileged user namespaces are disabled"
        except FileNotFoundError:
            pass
    return None


def _ranges(path: str, name: str) -> list[tuple[int, int]]:
    out = []
    with open(path) as f:
        for line in f:
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[0] == name:
                out.append((int(parts[1]), int(parts[2])))
    return out


def _free_start() -> int:
    end = 100000
    for path in ("/etc/subuid", "/etc/subgid"):
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    end = max(end, int(parts[1]) + int(parts[2]))
    return end


class RootlessUser:
    def __init__(self, name: str, home: str) -> None:
        pw = pwd.getpwnam(name)
        self.name, self.uid, self.gid, self.home = name, pw.pw_uid, pw.pw_gid, home
        self.xdg = f"/run/user/{self.uid}"
        self.subuid = _ranges("/etc/subuid", name)[0]
        self.subgid = _ranges("/etc/subgid", name)[0]

    def env(self, **extra: str) -> dict[str, str]:
        return {"HOME": self.home, "USER": self.name, "LOGNAME": self.name, "XDG_RUNTIME_DIR": self.xdg,
                "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", **extra}

    def run(self, argv: list[str], *, cwd: str | None = None, timeout: float = 120,
            env: dict[str, str] | None = None, groups: tuple[int, ...] = ()) -> subprocess.CompletedProcess:
        """argv as the user; stdout/stderr go to files the user owns (runc fchowns its stdio
        to the container's root, which an ordinary user may do only on its own files)."""
        with tempfile.TemporaryFile(dir=self.home) as out, tempfile.TemporaryFile(dir=self.home) as err:
            os.fchown(out.fileno(), self.uid, self.gid)
            os.fchown(err.fileno(), self.uid, self.gid)
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd or self.home,
                                  env=env or self.env(), user=self.uid, group=self.gid, extra_groups=list(groups),
                                  timeout=timeout)
            out.seek(0)
            err.seek(0)
            proc.stdout, proc.stderr = out.read().decode(), err.read().decode()
        return proc

    def mkdir(self, *parts: str) -> str:
        path = os.path.join(self.home, *parts)
        os.makedirs(path, exist_ok=True)
        self.chown_tree(path)
        return path

    def chown_tree(self, path: str) -> None:
        for root, dirs, files in os.walk(path):
            for n in [root] + [os.path.join(root, x) for x in dirs + files]:
                os.lchown(n, self.uid, self.gid)

    def bundle(self, name: str, args: list[str], *, subids: bool = False, edit=None) -> str:
        """A busybox bundle of `pyrunc spec --rootless`'s config, mapping the user's own id
        (and with `subids` its subordinate ranges from container id 1), owned by the user."""
        from pyrunc.spec import default_config

        path = os.path.join(self.home, name)
        rootfs = os.path.join(path, "rootfs")
        os.makedirs(os.path.join(rootfs, "bin"))
        shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        install_applets(os.path.join(rootfs, "bin"))
        for d in ("proc", "sys", "dev", "etc", "tmp", "root"):
            os.makedirs(os.path.join(rootfs, d), exist_ok=True)
        with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\n")
        config = default_config(rootless=True)
        config["process"]["terminal"] = False
        config["process"]["args"] = list(args)
        linux = config["linux"]
        linux["uidMappings"] = [{"containerID": 0, "hostID": self.uid, "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": self.gid, "size": 1}]
        if subids:
            linux["uidMappings"].append({"containerID": 1, "hostID": self.subuid[0], "size": self.subuid[1]})
            linux["gidMappings"].append({"containerID": 1, "hostID": self.subgid[0], "size": self.subgid[1]})
        if edit is not None:
            edit(config)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        self.chown_tree(path)
        return path

    # ------------------------------------------------------------------ cleanup
    def _owned_ids(self) -> list[range]:
        return [range(self.uid, self.uid + 1), range(self.subuid[0], self.subuid[0] + self.subuid[1])]

    def pids(self) -> list[int]:
        ids = self._owned_ids()
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status") as f:
                    uid_line = next(ln for ln in f if ln.startswith("Uid:"))
            except (OSError, StopIteration):
                continue
            real = int(uid_line.split()[1])
            if any(real in r for r in ids):
                out.append(int(entry))
        return out

    def kill_all(self) -> None:
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        raise AssertionError(f"processes of {self.name} survive SIGKILL: {self.pids()}")


def _tmp_leftovers(uid: int) -> list[str]:
    out = []
    for name in os.listdir("/tmp"):
        p = os.path.join("/tmp", name)
        try:
            if os.lstat(p).st_uid == uid:
                out.append(p)
        except FileNotFoundError:
            pass
    return out


def rootless_user_fixture():
    """Generator body of the `rootless_user` fixture (session scope in each conftest)."""
    if os.geteuid() != 0:
        pytest.skip("the rootless tests make their user with useradd: run them as root")
    reason = _unprivileged_userns_reason()
    if reason:
        pytest.skip(reason)
    for tool in ("useradd", "userdel", "usermod", "newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (packages passwd, uidmap)")
    name = f"pyrt{uuid.uuid4().hex[:8]}"
    home = tempfile.mkdtemp(prefix=f"{name}-", dir="/tmp")
    os.chmod(home, 0o755)
    made = False
    user = None
    before: set[str] = set()
    try:
        subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", "-U", name], check=True, capture_output=True)
        made = True
        if not _ranges("/etc/subuid", name) or not _ranges("/etc/subgid", name):
            start = _free_start()
            rng = f"{start}-{start + SUB_COUNT - 1}"
            subprocess.run(["usermod", "--add-subuids", rng, "--add-subgids", rng, name], check=True,
                           capture_output=True)
        user = RootlessUser(name, home)
        before = set(_tmp_leftovers(user.uid))  # a uid reused from a user someone else removed
        os.chown(home, user.uid, user.gid)
        os.makedirs(user.xdg, mode=0o700)
        os.chown(user.xdg, user.uid, user.gid)
        probe = user.run([PYRUNC, "--version"])
        if probe.returncode != 0:
            pytest.skip(f"{user.name} cannot run {PYRUNC} (path permissions?): {probe.stderr.strip()}")
        yield user
    finally:
        if user is not None:
            user.kill_all()
        if made:
            pw = pwd.getpwnam(name)
            for path, flag in (("/etc/subuid", "--del-subuids"), ("/etc/subgid", "--del-subgids")):
                for start, count in _ranges(path, name):
                    subprocess.run(["usermod", flag, f"{start}-{start + count - 1}", name], capture_output=True)
            subprocess.run(["userdel", name], check=True, capture_output=True)
            shutil.rmtree(f"/run/user/{pw.pw_uid}", ignore_errors=True)
            for p in set(_tmp_leftovers(pw.pw_uid)) - before:
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)
        shutil.rmtree(home, ignore_errors=True)
