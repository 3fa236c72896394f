"""The build's private temp dir, and the removal of what a killed build left behind.

Everything a build mounts or writes lives under one temp dir,
`<store>/tmp/build-<pid>-<random>`, on the store's filesystem. `BuildTemp`
unmounts and removes it on any exit; `clean_stale` (any later build) and
`clean_build_dirs` (a dead build's keeper, sandbox.py) remove what a SIGKILLed
build left: its containers' runtime state and cgroups (`<runtime> delete -f`),
its mounts, its temp dir and its RUN steps' bridge networks. Live builds' dirs
are never touched: each dir is cleaned under its flock by one cleaner.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets

from pybuild.overlay import remove_tree


class BuildTemp:
    """The build's private temp dir under `<store>/tmp`; removed (after
    unmounting anything inside) when the build ends, however it ends."""

    def __init__(self, store_root: str) -> None:
        self.parent = os.path.join(store_root, "tmp")
        os.makedirs(self.parent, exist_ok=True)
        clean_stale(self.parent)
        self.path = os.path.join(self.parent, f"build-{os.getpid()}-{secrets.token_hex(4)}")
        os.mkdir(self.path, 0o700)
        self._n = 0

    def new_dir(self, prefix: str) -> str:
        """A fresh, not yet existing path inside the temp dir."""
        self._n += 1
        return os.path.join(self.path, f"{prefix}{self._n}")

    def close(self) -> None:
        remove_tree(self.path)

    def __enter__(self) -> "BuildTemp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pid_alive(pid: int) -> bool:
    """A zombie (killed, not yet reaped) counts as dead: its build is over."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat_line = fh.read()
    except FileNotFoundError:
        return False
    state = stat_line[stat_line.rfind(b")") + 2:][:1]
    return state not in (b"Z", b"X")


def clean_stale(tmp_parent: str) -> None:
    """Remove temp dirs (and their mounts) of builds whose process is gone,
    e.g. after a SIGKILL that also took the build's keeper (sandbox.py).
    Live builds' dirs are left alone."""
    try:
        names = os.listdir(tmp_parent)
    except FileNotFoundError:
        return
    for name in names:
        if not name.startswith("build-"):
            continue
        try:
            pid = int(name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and _pid_alive(pid):
            continue
        _clean_one(os.path.join(tmp_parent, name), wait=False)


def clean_build_dirs(tmp_parent: str, owner: int) -> None:
    """What a dead build (pid `owner`) left: its containers' runtime state and cgroups, its mounts,
    its temp dirs. Run by that build's keeper right after the build died."""
    try:
        names = os.listdir(tmp_parent)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith(f"build-{owner}-"):
            _clean_one(os.path.join(tmp_parent, name), wait=True)


def _clean_one(stale: str, wait: bool) -> None:
    """Clean one dead build's dir under its flock: whoever holds it (the dead build's watcher, or
    another build) does the work; `wait=False` skips a dir someone is already cleaning."""
    import fcntl

    try:
        fd = os.open(stale, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            return
        if not os.path.lexists(stale):
            return  # cleaned by the other holder meanwhile
        _delete_orphan_containers(stale)
        remove_tree(stale)
        from pybuild.net.plumbing import teardown_owned  # its RUN steps' bridge networks (pybuild-<pid>-…)

        teardown_owned(f"pybuild-{os.path.basename(stale).split('-')[1]}-")
    except OSError as err:
        # Leftovers of a dead build must not stop this one; say so, retry next time.
        import sys

        sys.stderr.write(f"pybuild: warning: cannot remove {stale} left by a killed build: {err}\n")
    finally:
        os.close(fd)


def _delete_orphan_containers(stale: str) -> None:
    """`<runtime> delete -f` of every container a dead build's runtime state root (its runtime
    recorded in runtime.json) still lists: removes their cgroups and state. Their processes died
    with the build's pid namespace; a pid from a state.json is never signalled here (it is a pid
    in that namespace, not in ours)."""
    import subprocess

    roots = [os.path.join(stale, n) for n in os.listdir(stale) if n.startswith("runtime")]
    for root in roots:
        argv = None
        try:
            with open(os.path.join(root, "runtime.json"), "rb") as fh:
                argv = json.load(fh).get("argv")
        except (OSError, ValueError):
            pass
        if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            continue
        for cid in os.listdir(root):
            if os.path.isfile(os.path.join(root, cid, "state.json")):
                with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                    subprocess.run([*argv, "--root", root, "delete", "-f", cid], stdin=subprocess.DEVNULL,
                                   capture_output=True, timeout=30)
