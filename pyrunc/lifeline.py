"""The children of `pyrunc create` die with it until the container is saved.

A SIGKILLed create used to leave its intermediate and its init behind, init
blocked forever on exec.fifo with nobody left to start or delete it (issue
11). Each child (the intermediate, init) therefore:

1. arms PR_SET_PDEATHSIG(SIGKILL) before anything else it does (`arm`);
2. closes its inherited copy of the creator's end of the sync socket;
3. checks that the creator is still there (`check`): it may have died before
   step 1 took effect, and then no signal will ever come. getppid() cannot
   tell inside a new pid namespace (it is 0 there), but the creator's end of
   the socketpair is open exactly as long as the creator lives, so POLLHUP on
   the child's end can.

init is cloned with CLONE_PARENT, so its parent, the one whose death the
signal follows, is create itself and not the short-lived intermediate. A
change of euid/egid clears the setting (the intermediate becomes root of a
new user namespace): `arm` and `check` run again after it. init's own
setresuid to the container user may clear it too; from there on init only
waits on the socket, whose EOF ends it just the same.

Once the final state.json is written, create sends "created" and init
`disarm`s and answers "detached": only then may create exit and init outlive
it (sync.py draws the exchange).
"""

from __future__ import annotations

import os
import select
import _socket

from pyrunc import syscalls as s

_SIGKILL = 9
_GONE = select.POLLHUP | select.POLLRDHUP | select.POLLERR


def arm() -> None:
    """SIGKILL this process when the thread that forked (or CLONE_PARENTed) it exits."""
    s.prctl(s.PR_SET_PDEATHSIG, _SIGKILL)


def creator_gone(sock: _socket.socket) -> bool:
    """Has every copy of the peer's end of `sock` been closed?"""
    poller = select.poll()
    poller.register(sock.fileno(), _GONE)
    return any(events & _GONE for _fd, events in poller.poll(0))


def check(sock: _socket.socket) -> None:
    """After `arm` (and after the child closed its copy of the creator's end):
    exit at once if the creator died before the signal could be armed."""
    if creator_gone(sock):
        os._exit(1)


def disarm() -> None:
    s.prctl(s.PR_SET_PDEATHSIG, 0)
