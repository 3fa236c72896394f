"""Container state on disk: one directory per container under --root.

Invariants:
- A container directory appears atomically *with* its first state.json: it
  is made under `<root>/~new/` (not a valid ID), the pre-state written into
  it, then renamed to `<root>/ID` with RENAME_NOREPLACE, so two simultaneous
  `create`s of one ID give exactly one winner and no directory is ever
  visible without a state. A staging dir whose creator died is swept by the
  next `create` or `delete`.
- The pre-state (status "creating", the creator's pid and start time, the
  cgroups it is about to make, init's pid once known) is enough for `delete`
  to remove everything a SIGKILLed create left; such a container reads as
  "stopped", as runc shows it, once its creator is gone.
- state.json is replaced atomically (temp + rename); readers never see half.
- The status is never trusted from disk: it is derived on every read from the
  init pid and its start time (/proc/PID/stat field 22), the presence of
  exec.fifo (created) and the cgroup freezer (paused), as runc does.
- Commands that change a container take `lock(id)` (flock on the directory),
  so concurrent commands on one ID are serialised.
"""

from __future__ import annotations

import errno
import fcntl
from pyrunc import jsonfast as json  # json without its re import (hot path)
import os

from pyrunc import OCI_VERSION
from pyrunc.errors import ContainerExists, ContainerNotFound, InvalidState, PyruncError
from pyrunc.fsutil import atomic_write, rmtree_nofollow
from pyrunc.record import NEW_DICT, MutableRecord, to_json
from pyrunc.spec_hooks import Hooks  # not pyrunc.spec: the whole model costs ≈0.5 ms

STATE_FILE = "state.json"
FIFO_NAME = "exec.fifo"
STAGING = "~new"  # "~" is not allowed in a container ID: never collides with one


class Status(str):
    """The container status: one interned instance per value, so `is` works.

    A StrEnum in all but name; `enum` costs ≈1.5 ms to import on every run.
    """

    __slots__ = ()
    CREATING: "Status"
    CREATED: "Status"
    RUNNING: "Status"
    PAUSED: "Status"
    STOPPED: "Status"
    _all: dict

    def __new__(cls, value: str) -> "Status":
        known = cls.__dict__.get("_all")
        if known is not None:
            try:
                return known[value]
            except KeyError:
                raise ValueError(f"{value!r} is not a valid Status") from None
        return super().__new__(cls, value)

    def __repr__(self) -> str:
        return f"Status.{self.upper()}"

    def can_start(self) -> bool:
        return self is Status.CREATED

    def can_delete(self) -> bool:
        return self in (Status.STOPPED, Status.CREATED)

    def can_exec(self) -> bool:
        return self in (Status.CREATED, Status.RUNNING)


for _name in ("creating", "created", "running", "paused", "stopped"):
    setattr(Status, _name.upper(), Status(_name))
Status._all = {v: getattr(Status, v.upper()) for v in ("creating", "created", "running", "paused", "stopped")}


class State(MutableRecord):
    """What pyrunc remembers of a container between commands."""

    id: str
    bundle: str
    rootfs: str
    created: str
    pid: int = 0
    pid_start: int = 0
    owner: str = ""
    annotations: dict[str, str] = NEW_DICT
    cgroup: dict = NEW_DICT
    hooks: Hooks = Hooks()  # what later verbs run: poststart (start, run), poststop (delete)
    spec_version: str = ""  # the config's ociVersion: poststart failure semantics depend on it
    namespaces: dict[str, str] = NEW_DICT
    shares_pidns: bool = False
    status: Status = Status.CREATING
    creator_pid: int = 0  # `pyrunc create` while the status is "creating"
    creator_start: int = 0
    state_dir: str = ""
    console: object = None  # run only: the foreground terminal (consolesock.Console), not saved

    def oci(self) -> dict:
        """The OCI state object, in runc's key order (runc `state` output)."""
        out: dict = {
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": self.pid if self.status is not Status.STOPPED else 0,
            "status": str(self.status),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
        }
        if self.annotations:
            out["annotations"] = self.annotations
        out["owner"] = self.owner
        return out

    def hook_state(self, status: Status | None = None) -> bytes:
        """The state JSON that hooks read on stdin (runtime-spec runtime.md#state)."""
        doc = {"ociVersion": OCI_VERSION, "id": self.id, "status": str(status or self.status),
               "pid": self.pid, "bundle": self.bundle}
        if self.annotations:
            doc["annotations"] = self.annotations
        return json.dumps(doc).encode()

    def to_json(self) -> bytes:
        doc = {f: getattr(self, f) for f in self._fields}
        doc["status"] = str(self.status)
        doc["hooks"] = to_json(self.hooks)
        del doc["state_dir"], doc["console"]
        return json.dumps(doc).encode()

    @classmethod
    def from_json(cls, data: bytes, state_dir: str) -> "State":
        """Parse and check a state.json; CorruptState (one line) if it is not
        one pyrunc wrote. Unknown keys are ignored (a newer pyrunc's state)."""
        where = os.path.join(state_dir, STATE_FILE)
        try:
            doc = json.loads(data)
        except ValueError as err:
            raise CorruptState(where, f"invalid JSON: {err}") from None
        if type(doc) is not dict:
            raise CorruptState(where, "not a JSON object")
        fields = {}
        for name, kind in _FIELD_TYPES.items():
            if name not in doc:
                if name in _REQUIRED_FIELDS:
                    raise CorruptState(where, f".{name} is missing")
                continue
            value = doc[name]
            if type(value) is not kind:
                raise CorruptState(where, f".{name} must be a JSON {_JSON_NAMES[kind]}")
            fields[name] = value
        try:
            fields["status"] = Status(fields.get("status", "creating"))
        except ValueError:
            raise CorruptState(where, f".status {fields['status']!r} is not a container status") from None
        if fields.get("hooks"):  # the same checks as config.json's hooks, into the same records
            from pyrunc.config.checks import Invalid
            from pyrunc.config.parse import parse_hooks

            try:
                fields["hooks"] = parse_hooks(fields["hooks"], ".hooks")
            except Invalid as bad:
                raise CorruptState(where, f"{bad.path}: {bad.message}") from None
        else:
            fields.pop("hooks", None)
        return cls(**fields, state_dir=state_dir)

    @property
    def fifo_path(self) -> str:
        return os.path.join(self.state_dir, FIFO_NAME)


_FIELD_TYPES = {"id": str, "bundle": str, "rootfs": str, "created": str, "pid": int, "pid_start": int,
                "owner": str, "annotations": dict, "cgroup": dict, "hooks": dict, "namespaces": dict,
                "shares_pidns": bool, "status": str, "spec_version": str, "creator_pid": int,
                "creator_start": int}
_REQUIRED_FIELDS = ("id", "bundle", "rootfs", "created")
_JSON_NAMES = {str: "string", int: "integer", dict: "object", bool: "boolean"}


class CorruptState(PyruncError):
    """A state.json that pyrunc cannot have written (truncated, edited, hostile)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")


def validate_id(container_id: str) -> None:
    """runc's ID rule: letters, digits and `_ + - .`, not `.`/`..`."""
    if not container_id:
        raise PyruncError("container id cannot be empty")
    ok = all(c.isascii() and (c.isalnum() or c in "_+-.") for c in container_id)
    if not ok or container_id in (".", ".."):
        raise PyruncError(f"invalid container id format: {container_id}")


def proc_start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot) of `pid`, None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(b")") + 2:].split()
    if rest[0] in (b"Z", b"X"):
        return None
    return int(rest[19])


class StateStore:
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def dir_of(self, container_id: str) -> str:
        validate_id(container_id)
        return os.path.join(self.root, container_id)

    def claim(self, state: State) -> str:
        """Make the container's directory holding `state` (the pre-state) in
        one step; ContainerExists if the ID is taken. Returns the directory."""
        from pyrunc import syscalls

        path = self.dir_of(state.id)
        if os.path.lexists(path):
            raise ContainerExists(state.id)
        staging = os.path.join(self.root, STAGING)
        self.sweep_staging()
        tmp = os.path.join(staging, f"{state.creator_pid}-{state.creator_start}-{os.urandom(8).hex()}")
        for _ in range(10):  # a concurrent create may remove the (empty) staging dir meanwhile
            try:
                os.mkdir(staging, 0o711)
            except FileExistsError:
                pass
            except FileNotFoundError:
                os.makedirs(self.root, 0o711, exist_ok=True)
                continue
            try:
                os.mkdir(tmp, 0o711)
                break
            except FileNotFoundError:
                continue
        else:
            raise PyruncError(f"cannot make a directory in {staging}")
        state.state_dir = path
        try:
            fd = os.open(os.path.join(tmp, STATE_FILE), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(state.to_json())
                while view:  # a write cut short by a full disk must not leave a truncated pre-state
                    view = view[os.write(fd, view):]
            except OSError as err:  # ENOSPC, EDQUOT: named after the file, not the staging dir
                raise OSError(err.errno, err.strerror, os.path.join(path, STATE_FILE)) from None
            finally:
                os.close(fd)
            syscalls.renameat2(syscalls.AT_FDCWD, tmp, syscalls.AT_FDCWD, path, syscalls.RENAME_NOREPLACE)
        except BaseException as err:
            rmtree_nofollow(tmp)
            if isinstance(err, OSError) and err.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise ContainerExists(state.id) from None
            raise
        finally:
            _rmdir_if_empty(staging)
        return path

    def sweep_staging(self) -> None:
        """Remove staging dirs whose creator is gone (a create killed between
        its mkdir and its rename); their names carry the creator's pid and
        start time."""
        staging = os.path.join(self.root, STAGING)
        try:
            names = os.listdir(staging)
        except FileNotFoundError:
            return
        for name in names:
            pid, _, rest = name.partition("-")
            start = rest.partition("-")[0]
            if pid.isdigit() and start.isdigit() and proc_start_time(int(pid)) == int(start):
                continue  # its create is still running
            rmtree_nofollow(os.path.join(staging, name))
        _rmdir_if_empty(staging)

    def lock(self, container_id: str) -> "_DirLock":
        """`with store.lock(id):` holds flock(LOCK_EX) on the container's directory."""
        return _DirLock(self.dir_of(container_id), container_id)

    def save(self, state: State) -> None:
        atomic_write(os.path.join(state.state_dir, STATE_FILE), state.to_json(), 0o600, durable=False)

    def load(self, container_id: str) -> State:
        """Load and refresh: the returned status reflects the kernel now."""
        path = self.dir_of(container_id)
        try:
            with open(os.path.join(path, STATE_FILE), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise ContainerNotFound(container_id) from None
        except NotADirectoryError:
            raise ContainerNotFound(container_id) from None
        state = State.from_json(data, path)
        refresh(state)
        return state

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if os.path.isfile(os.path.join(self.root, n, STATE_FILE)))

    def remove(self, container_id: str) -> None:
        rmtree_nofollow(self.dir_of(container_id))


def _rmdir_if_empty(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError as err:
        if err.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
            raise


class _DirLock:
    __slots__ = ("path", "cid", "fd")

    def __init__(self, path: str, cid: str) -> None:
        self.path, self.cid, self.fd = path, cid, -1

    def __enter__(self) -> int:
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotFound(self.cid) from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def refresh(state: State) -> Status:
    """Derive the status from the kernel (runc refreshState). A pre-state is
    "creating" while its creator runs, and "stopped" once it died before
    finishing (runc shows such a container as stopped)."""
    if state.status is Status.CREATING:
        if state.creator_pid and proc_start_time(state.creator_pid) == state.creator_start:
            return state.status
        state.status = Status.STOPPED
        return state.status
    if not state.pid or proc_start_time(state.pid) != state.pid_start:
        state.status = Status.STOPPED
    elif os.path.exists(state.fifo_path) and _init_waits(state.pid):
        state.status = Status.CREATED
    elif state.cgroup and _is_frozen(state):
        state.status = Status.PAUSED
    else:
        state.status = Status.RUNNING
    return state.status


def _init_waits(pid: int) -> bool:
    """init is still pyrunc's, blocked on exec.fifo (comm INIT_COMM until its execve). A `start`
    SIGKILLed after it released init leaves the fifo behind while the container's program runs: that
    container is running, and a second `start` would wait forever on a fifo nobody writes to
    (found by tests/integration/reliability/test_pyrunc_faults.py; runc has the same window)."""
    from pyrunc import INIT_COMM

    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n") == INIT_COMM
    except OSError:
        return True  # gone meanwhile: the next read of the state says stopped


def _is_frozen(state: State) -> bool:
    from pyrunc.cgroups import load_manager

    try:
        return load_manager(state.cgroup).is_frozen()
    except OSError as err:
        if err.errno == errno.ENOENT:
            return False
        raise


def require(state: State, allowed: tuple[Status, ...], action: str) -> None:
    if state.status not in allowed:
        raise InvalidState(f"cannot {action} a container that is {state.status}"
                           if state.status is not Status.STOPPED
                           else f"cannot {action} a container that has stopped")
