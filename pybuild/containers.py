"""Containers of `pybuild run`: their records under the store, and their status.

There is no daemon (as with podman): a container is a directory,
`<root>/containers/<id>/`, holding

    container.json   what `run` was asked (image, command, ports, network, runtime, --rm, name)
    bundle/          the OCI bundle (config.json, hosts, resolv.conf, hostname; rootfs mounted by the monitor)
    fs/upper, fs/work  the overlay's upper dir (the container's changes: what `commit` turns into a layer)
    ctr.log          stdout and stderr of a detached container (`logs`)
    net.json         the container's address on the bridge while it runs (`inspect`)
    wait.lock        `pybuild wait` holds it shared; removal waits (briefly) for the exit code to be read
    runtime.log      the OCI runtime's own log (its errors, JSON lines)
    pid              the container's init pid, written by the runtime once it made the container
    monitor          pid and start time of the process watching it (`pybuild run` or its -d fork)
    exit.json        the exit code, written by the monitor when the container ended

and the OCI runtime keeps its state under RUNTIME_ROOT with the same ID. Status is
derived, never stored: the runtime's `state` says created/running/paused/stopped;
a container the runtime no longer knows has exited (code in exit.json, if a monitor
saw it end).

Invariants: a name belongs to one container (checked under the store's lock);
the image a container records (by manifest digest) is never removed by `rmi`/`prune` while the
container exists (Store.gc counts it as a root; `rmi` of its last name is refused without -f);
IDs are 64 random hex digits, so every network object named from one is unique;
removal never follows a link out of the container's directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import subprocess
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator

from pybuild.errors import PybuildError
from pyrunc.fsutil import atomic_write

RUNTIME_ROOT = "/run/pybuild/runtime"  # root's; a user's is under $XDG_RUNTIME_DIR (runtime_root)


def runtime_root() -> str:
    from pybuild.rootless import runtime_dir

    return runtime_dir("runtime", RUNTIME_ROOT)
_NAME_OK = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
_ADJECTIVES = ("brave", "calm", "eager", "fond", "keen", "lucid", "merry", "quiet", "sharp", "witty")
_NOUNS = ("turing", "hopper", "lovelace", "ritchie", "thompson", "torvalds", "knuth", "liskov", "kay", "pike")


class ContainerError(PybuildError):
    pass


class NoSuchContainer(ContainerError):
    def __init__(self, ref: str) -> None:
        super().__init__(f"no such container: {ref}")


@dataclass
class Container:
    id: str
    name: str
    image: str
    image_id: str
    created: float
    command: list[str]
    runtime: list[str]
    network: str = "bridge"
    ports: list[str] = field(default_factory=list)
    remove: bool = False
    detached: bool = False
    mounts: list[str] = field(default_factory=list)   # destinations of -v/--tmpfs (not committed)
    stop_signal: str = "SIGTERM"
    config: dict = field(default_factory=dict)        # the run's overrides of the image config (commit)
    request: dict = field(default_factory=dict)       # the whole `run` request (restart, inspect)
    mount_specs: list[dict] = field(default_factory=list)  # volumes.spec.MountSpec dicts (volumes in use)
    restart_count: int = 0
    image_digest: str = ""                            # the image's manifest digest: found even once untagged
    home: str = ""                                    # <root>/containers/<id>, not stored

    @property
    def image_ref(self) -> str:
        """What `load_image` finds this container's image by, tagged or not."""
        return self.image_digest or self.image_id

    @property
    def bundle(self) -> str:
        return os.path.join(self.home, "bundle")

    @property
    def fs(self) -> str:
        return os.path.join(self.home, "fs")

    @property
    def log(self) -> str:
        return os.path.join(self.home, "ctr.log")

    @property
    def runtime_log(self) -> str:
        return os.path.join(self.home, "runtime.log")

    def save(self) -> None:
        doc = asdict(self)
        doc.pop("home")
        atomic_write(os.path.join(self.home, "container.json"), json.dumps(doc, indent=1).encode(), 0o600)

    def exit_code(self) -> int | None:
        try:
            with open(os.path.join(self.home, "exit.json")) as fh:
                return int(json.load(fh)["code"])
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def exited_at(self) -> float | None:
        try:
            return os.stat(os.path.join(self.home, "exit.json")).st_mtime
        except FileNotFoundError:
            return None

    def record_monitor(self) -> None:
        """Which process watches the container (and will write exit.json)."""
        atomic_write(os.path.join(self.home, "monitor"), f"{os.getpid()} {_start_time(os.getpid())}".encode(),
                     0o600)

    def hold_monitor_lock(self) -> int:
        """Taken by the monitor for its life and kept by its watcher (sandbox.Watcher): held
        while either still works in the container's directory. `pybuild rm` waits for it
        (wait_monitor_done), so it never removes the directory under a watcher that is still
        tearing down after a SIGKILLed monitor (rm failed with "Directory not empty")."""
        fd = os.open(os.path.join(self.home, MONITOR_LOCK),
                     os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # a watcher of the previous monitor (restart) finishes first
        except BaseException:
            os.close(fd)
            raise
        return fd

    def wait_monitor_done(self, timeout: float) -> bool:
        """Whether the monitor and its watcher are done with the directory (within `timeout`)."""
        try:
            fd = os.open(os.path.join(self.home, MONITOR_LOCK), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return True
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        return False
                    time.sleep(0.02)
        finally:
            os.close(fd)

    def monitor_alive(self) -> bool:
        try:
            with open(os.path.join(self.home, "monitor")) as fh:
                pid, start = fh.read().split()
        except (FileNotFoundError, ValueError):
            return False
        return _start_time(int(pid)) == start

    def record_exit(self, code: int) -> None:
        atomic_write(os.path.join(self.home, "exit.json"), json.dumps({"code": code}).encode(), 0o600)

    def runtime_cmd(self, *args: str) -> list[str]:
        return [*self.runtime, "--root", runtime_root(), "--log", self.runtime_log, "--log-format", "json", *args]

    def runtime_state(self) -> dict | None:
        """The runtime's `state` of this container, None when it knows none."""
        if not os.path.isdir(os.path.join(runtime_root(), self.id)):
            return None
        res = subprocess.run(self.runtime_cmd("state", self.id), capture_output=True, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            return None
        try:
            return json.loads(res.stdout)
        except ValueError:
            return None

    def status(self) -> str:
        """created | running | paused | exited (docker's words)."""
        state = self.runtime_state()
        if state is not None and state.get("status") in ("created", "running", "paused"):
            return str(state["status"])
        return "exited" if state is not None or self.exit_code() is not None or \
            os.path.exists(os.path.join(self.home, "pid")) else "created"


def _start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat: with the pid, it names one process for good."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, IndexError):
        return ""


def runtime_error(path: str) -> str | None:
    """The last error the runtime wrote to its JSON log."""
    last = None
    with contextlib.suppress(FileNotFoundError):
        with open(path, errors="replace") as fh:
            for line in fh:
                try:
                    doc = json.loads(line)
                except ValueError:
                    continue
                if isinstance(doc, dict) and doc.get("level") in ("error", "fatal") and doc.get("msg"):
                    last = str(doc["msg"])
    if last and "pybuild: " in last:  # a network hook's own one-line error
        last = last.rsplit("pybuild: ", 1)[1]
    return last


class ContainerStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self.dir = os.path.join(root, "containers")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @classmethod
    def of(cls, c: Container) -> "ContainerStore":
        return cls(os.path.dirname(os.path.dirname(c.home)))

    def _load(self, cid: str) -> Container | None:
        home = os.path.join(self.dir, cid)
        try:
            with open(os.path.join(home, "container.json")) as fh:
                doc = json.load(fh)
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        known = Container.__dataclass_fields__
        return Container(**{k: v for k, v in doc.items() if k in known and k != "home"}, home=home)

    def list(self) -> list[Container]:
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        found = [c for c in (self._load(n) for n in names if len(n) == 64) if c is not None]
        return sorted(found, key=lambda c: c.created, reverse=True)

    def get(self, ref: str) -> Container:
        """By name, full ID or unique ID prefix (docker's rules)."""
        everything = self.list()
        for c in everything:
            if c.name == ref or c.id == ref:
                return c
        matches = [c for c in everything if len(ref) >= 3 and c.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ContainerError(f"container {ref}: ambiguous ID prefix ({len(matches)} containers)")
        raise NoSuchContainer(ref)

    def create(self, c: Container) -> Container:
        """Claim the ID and the name; the directory exists on return."""
        if c.name and (c.name[0] in "_.-" or any(ch not in _NAME_OK for ch in c.name)):
            raise ContainerError(f"--name {c.name!r}: expected [a-zA-Z0-9][a-zA-Z0-9_.-]*")
        with self.locked():
            taken = {x.name for x in self.list()}
            if not c.name:
                c.name = _free_name(taken)
            elif c.name in taken:
                raise ContainerError(f"the container name {c.name!r} is already in use "
                                     f"(remove it with `pybuild rm {c.name}`)")
            c.home = os.path.join(self.dir, c.id)
            os.mkdir(c.home, 0o700)
            c.save()
        return c

    def remove(self, c: Container, volumes: bool = False) -> None:
        """Remove the container's directory once a `pybuild wait` on it has read the exit code
        (waiters hold wait.lock shared; a stuck one delays this by WAIT_GRACE seconds at most);
        with `volumes`, then its anonymous volumes that no other container uses (`--rm`, `rm -v`)."""
        from pyrunc.fsutil import rmtree_nofollow

        _lock_out_waiters(c.home)
        with contextlib.suppress(FileNotFoundError):
            rmtree_nofollow(c.home)
        if volumes and c.mount_specs:
            from pybuild.volumes.attach import remove_anonymous

            remove_anonymous(self, c)


WAIT_GRACE = 5.0
MONITOR_LOCK = "monitor.lock"
MONITOR_GRACE = 30.0  # a watcher's teardown: runtime delete, network, unmount


def _lock_out_waiters(home: str) -> None:
    try:
        fd = os.open(os.path.join(home, "wait.lock"), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        deadline = time.monotonic() + WAIT_GRACE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.02)
    finally:
        os.close(fd)


def images_in_use(root: str) -> set[str]:
    """Manifest digests of the images of every container (running or not: `start`, `restart` and
    `commit` need its image, a running one has its layers as lower dirs). Store.gc keeps them."""
    return {c.image_digest for c in ContainerStore(root).list() if c.image_digest}


def new_id() -> str:
    return secrets.token_hex(32)


def _free_name(taken: set[str]) -> str:
    for _ in range(100):
        name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}"
        if name not in taken:
            return name
    return f"pybuild_{secrets.token_hex(4)}"


def wait_exited(c: Container, timeout: float) -> bool:
    """Poll until the container is no longer created/running/paused."""
    deadline = time.monotonic() + timeout

    def done() -> bool:
        # exited, and its monitor (if one still runs) has recorded it and cleaned up
        return c.status() == "exited" and (c.exit_code() is not None or not c.monitor_alive())

    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.05)
    return done()
