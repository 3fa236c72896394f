"""The contract every cgroup manager keeps (v1, v2; hybrid is v1 + unified).

The runtime core only talks to this Protocol. `create` + `add` are on the
`pyrunc run` hot path: they make directories and write a pid, nothing more.
Everything a manager made, and nothing else, `destroy` removes, and `destroy`
is idempotent.
`to_state()` is JSON that `pyrunc.cgroups.load_manager` turns back into an
equal manager in a later command.
"""

from __future__ import annotations

from typing import Any, Protocol

from pyrunc.spec import Resources


class Manager(Protocol):
    version: str  # "v1" or "v2"

    def missing_dirs(self) -> list[str]:
        """The directories create() would make now, parents first (create
        records them in the pre-state before making any)."""

    def create(self) -> None:
        """Make the cgroup directories (and any missing parents); only those
        it made are in `created` (joined cgroups are never removed)."""

    def apply(self, resources: Resources | None) -> None:
        """Apply `linux.resources` (devices defaults included); all or
        nothing: on error the previous values are restored."""

    def update(self, resources: Resources, *, source: str = "config.json",
               prefix: str = ".linux.resources", devices_too: bool = False) -> None:
        """Like apply, for `pyrunc update`: only the fields given change (the
        device rules only with devices_too: `devices` was in the request)."""

    def add(self, pid: int) -> None:
        """Move `pid` into the cgroup(s)."""

    def freeze(self) -> None: ...

    def thaw(self) -> None: ...

    def is_frozen(self) -> bool: ...

    def pids(self) -> list[int]:
        """Every pid in the cgroup and its descendants."""

    def kill_all(self, sig: int) -> None:
        """Signal every process of the cgroup (frozen while signalling, as runc)."""

    def stats(self) -> dict[str, Any]:
        """runc's `events --stats` data object."""

    def destroy(self, *, kill: bool = False) -> None:
        """Remove every directory this manager made; with kill, SIGKILL what is
        still inside first. Idempotent."""

    def exists(self) -> bool: ...

    def to_state(self) -> dict[str, Any]: ...
