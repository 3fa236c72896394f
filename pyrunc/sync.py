"""The parent <-> child protocol over a SOCK_SEQPACKET socketpair.

One JSON object per message (packet boundaries are kept by SEQPACKET), with
file descriptors riding along as SCM_RIGHTS. Child-side errors travel as data
and are re-raised by the parent, so the user sees one line.

    parent (pyrunc create)            intermediate                    init (pid 1)
    ----------------------            ------------                    ------------
                                      join cgroup, setns(path ns)
                      <-- {"t":"idmap"}   unshare(CLONE_NEWUSER)
    write uid_map/gid_map
    {"t":"idmap-done"} -->
                                      unshare(other ns), clone(CLONE_PARENT) ─► (starts)
                      <-- {"t":"pid","pid":N}  exit(0)
                                                                      mounts in rootfs
                      <-- {"t":"hooks"}  (only when createRuntime/prestart hooks exist)
    run prestart + createRuntime hooks
    {"t":"hooks-done"} -->                                            createContainer hooks
                                                                      pivot_root, /dev, masks,
                                                                      user, caps, …
                      <-- {"t":"seccomp"} + fd (only with a notify listener)
                      <-- {"t":"ready"}
    state.json (created), pid file
    {"t":"created"} -->                                               PR_SET_PDEATHSIG 0
                      <-- {"t":"detached"}                            block on exec.fifo
    exit 0
    (until "detached", the intermediate and init die with create: lifeline.py)
    any step:         <-- {"t":"error","msg":…}   (the child exits 1)
"""

from __future__ import annotations

import _socket  # not `socket`: its selectors/enum imports cost ms on every run
import struct  # not `array`: it imports collections.abc

from pyrunc import jsonfast as json  # json without its re import (hot path)
from pyrunc.errors import ChildError

_MAX = 65536
_SCM_RIGHTS = 1
_SOL_SOCKET = 1
_INT = struct.calcsize("i")


def pair() -> tuple[_socket.socket, _socket.socket]:
    """(parent_end, child_end), both CLOEXEC so nothing leaks into the container."""
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    return a, b


def send(sock: _socket.socket, kind: str, fds: list[int] | None = None, **fields: object) -> None:
    fields["t"] = kind
    data = json.dumps(fields).encode()
    if fds:
        sock.sendmsg([data], [(_SOL_SOCKET, _SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))])
    else:
        sock.send(data)


def recv(sock: _socket.socket) -> tuple[dict, list[int]]:
    """Next message; raises ChildError for an error message or a closed peer."""
    data, ancdata, _flags, _addr = sock.recvmsg(_MAX, _socket.CMSG_SPACE(4 * _INT))
    fds: list[int] = []
    for level, kind, payload in ancdata:
        if level == _SOL_SOCKET and kind == _SCM_RIGHTS:
            usable = len(payload) - len(payload) % _INT
            fds.extend(struct.unpack(f"{usable // _INT}i", payload[:usable]))
    if not data:
        raise ChildError("container init exited before it was ready")
    msg = json.loads(data)
    if msg.get("t") == "error":
        raise ChildError(msg.get("msg", "container init failed"))
    return msg, fds


def wait_exec(sock: _socket.socket) -> None:
    """After start: EOF means init exec'd (its end is CLOEXEC); a message is
    the error that stopped it between ready and execve."""
    try:
        data = sock.recv(_MAX)
    finally:
        sock.close()
    if data:
        msg = json.loads(data)
        raise ChildError(msg.get("msg", "container init failed after start"))


def expect(sock: _socket.socket, kind: str) -> tuple[dict, list[int]]:
    msg, fds = recv(sock)
    if msg["t"] != kind:
        raise ChildError(f"protocol error: expected {kind!r}, got {msg['t']!r}")
    return msg, fds


def error_text(err: BaseException) -> str:
    """One line for a child-side failure, naming the step and the path."""
    if isinstance(err, OSError) and err.filename is not None:
        text = f"{err.filename}: {err.strerror}"
    else:
        text = str(err) or type(err).__name__
    step = getattr(err, "step", None)
    if step:
        text = f"{step}: {text}"
    return text


def send_error(sock: _socket.socket, err: BaseException) -> None:
    """Report a child-side failure; never raises (the child is about to exit)."""
    try:
        send(sock, "error", msg=error_text(err))
    except OSError:
        pass
