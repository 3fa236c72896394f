"""Hand a seccomp notify fd to the listener named by `linux.seccomp.listenerPath`.

Same message as runc (libcontainer sendContainerProcessState): one write on a
SOCK_STREAM unix socket carrying the JSON of the OCI ContainerProcessState
(`ociVersion`, `fds: ["seccompFd"]`, `pid`, `metadata` = listenerMetadata,
`state` = the container state) with the notify fd attached as SCM_RIGHTS.
"""

from __future__ import annotations

import array
import json
import socket
from typing import Any

from pyrunc.errors import SeccompError

SECCOMP_FD_NAME = "seccompFd"


def process_state(state: dict[str, Any], metadata: str | None) -> dict[str, Any]:
    """The ContainerProcessState for a container state (passed through if it already is one)."""
    if "state" in state and "fds" in state:
        return state
    msg: dict[str, Any] = {"ociVersion": state.get("ociVersion", "1.0.2"), "fds": [SECCOMP_FD_NAME],
                           "pid": state.get("pid", 0), "state": state}
    if metadata:
        msg["metadata"] = metadata
    return msg


def send(listener_path: str, notify_fd: int, state_json: bytes, metadata: str | None) -> None:
    try:
        state = json.loads(state_json)
    except ValueError as err:
        raise SeccompError(f"seccomp listener {listener_path}: container state is not JSON: {err}") from None
    payload = json.dumps(process_state(state, metadata), separators=(",", ":")).encode()
    fds = array.array("i", [notify_fd])
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(listener_path)
            sock.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])
        except OSError as err:
            raise SeccompError(f"seccomp listener {listener_path}: {err.strerror}") from None
