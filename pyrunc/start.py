"""`pyrunc start`: release init from exec.fifo, then run poststart hooks.

Opening the fifo for reading unblocks init's open for writing; init then
writes one byte and execs. The fifo is opened non-blocking and polled together
with a pidfd of init, so a dead init makes `start` fail instead of hang (runc).
"""

from __future__ import annotations

import os
import select

from pyrunc import fault_point
from pyrunc.errors import InvalidState, PyruncError
from pyrunc.state import State, StateStore, Status
from pyrunc.verbs import GlobalOptions


def start(store: StateStore, container_id: str) -> State:
    with store.lock(container_id):
        state = store.load(container_id)
        if state.status is Status.STOPPED:
            raise InvalidState("cannot start a container that has stopped")
        if state.status is not Status.CREATED:
            raise InvalidState(f"cannot start an already {state.status} container")
        fault_point("start.locked")
        release(state)
        state.status = Status.RUNNING
        fault_point("start.running")
    if state.hooks.poststart:
        _poststart(state, store)
    return state


def release(state: State) -> None:
    """Open exec.fifo, wait for init's byte (or its death), then read on to
    EOF: init keeps its end open, close-on-exec, until its execve, and writes
    there whatever stops it on the way (startContainer hooks, labels, the
    seccomp filter, the execve itself), so no failure of init is lost.

    The pidfd comes first: opening the fifo is what releases init, and a process
    as short as `true` can then exec, exit and be reaped (containerd's shim is a
    subreaper) before a pidfd_open that came second, which then failed with ESRCH
    although the container did start.
    """
    try:
        pidfd = os.pidfd_open(state.pid)  # os, not syscalls: `start` imports no ctypes (~1.6 ms)
    except ProcessLookupError:
        raise PyruncError("container init exited before start") from None
    try:
        fifo = os.open(state.fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        os.close(pidfd)
        raise InvalidState("cannot start an already running container") from None
    try:
        poller = select.poll()
        poller.register(fifo, select.POLLIN)
        poller.register(pidfd, select.POLLIN)
        while True:
            events = dict(poller.poll())
            if fifo in events:
                data = os.read(fifo, 1)
                if data:
                    break
            if pidfd in events:
                raise PyruncError("container init exited before start")
        fault_point("start.released")
        error = _read_to_eof(fifo) or _death_before_exec(state.pid, pidfd)
    finally:
        if pidfd >= 0:
            os.close(pidfd)
        os.close(fifo)
    os.unlink(state.fifo_path)
    if error:
        raise PyruncError(f"container init failed: {error}")


def _death_before_exec(pid: int, pidfd: int) -> str:
    """EOF without a message: init exec'd, or died where it could not write
    (a seccomp kill of execve, SIGKILL). Its comm tells which while the
    process or its zombie is there (init.INIT_COMM until execve); once
    reaped, only the exit status is left (Linux 6.15 PIDFD_INFO_EXIT). The usual
    answer (init exec'd: comm is the program's) needs no ctypes, so `syscalls`
    is imported only where the kernel is asked."""
    from pyrunc import INIT_COMM

    comm = _comm(pid)
    if comm is not None and comm != INIT_COMM:
        return ""  # the container's program runs, or ran
    if comm is not None:
        select.select([pidfd], [], [])  # it is ending: wait for its status
        status = _zombie_status(pid)
        before = "before or at its execve"
    else:
        status = None
        before = "as it started"
    if status is None:
        from pyrunc import syscalls as s

        status = s.pidfd_exit_status(pidfd)
    if status is None or not os.WIFSIGNALED(status):
        return "exited before its execve" if comm is not None else ""
    sig = os.WTERMSIG(status)
    hint = " (a seccomp profile with SCMP_ACT_KILL?)" if sig == 31 else ""
    return f"killed by signal {sig} {before}{hint}"


def _comm(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().rstrip(b"\n")
    except OSError:
        return None


def _zombie_status(pid: int) -> int | None:
    """exit_code (field 52) of /proc/PID/stat while the process is a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[49]) if fields[0] == b"Z" and len(fields) > 49 else None


def _read_to_eof(fifo: int) -> str:
    poller = select.poll()
    poller.register(fifo, select.POLLIN)
    chunks = []
    while True:
        poller.poll()
        try:
            data = os.read(fifo, 4096)
        except BlockingIOError:
            continue
        if not data:
            return b"".join(chunks).decode(errors="replace").strip()
        chunks.append(data)


def poststart_fails_container(spec_version: str) -> bool:
    """runtime-spec 1.3 made a poststart failure an error that stops and
    destroys the container (runc 1.1 already did); before 1.3 it is a warning
    and the lifecycle goes on (what runtime-tools' poststart_fail checks)."""
    parts = spec_version.split("-", 1)[0].split("+", 1)[0].split(".")
    try:
        return tuple(int(p) for p in parts[:2]) >= (1, 3)
    except ValueError:
        return False


def _poststart(state: State, store: StateStore | None = None) -> None:
    from pyrunc import hooks

    poststart = state.hooks.poststart
    if not poststart_fails_container(state.spec_version):
        hooks.run_all_warn("poststart", poststart, state.hook_state())
        return
    try:
        hooks.run_all("poststart", poststart, state.hook_state())
    except PyruncError:
        from pyrunc.delete import destroy, stop

        stop(state)
        if store is not None:  # run destroys it itself
            destroy(store, state)
        raise


def start_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc start ID`."""
    from pyrunc.verbs import store

    start(store(g), v["container_id"])
    return 0
