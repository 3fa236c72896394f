"""The `hooks` section of the config.json model (pyrunc.spec re-exports both records).

Apart from spec.py because the saved state of a container carries its hooks
(state.State.hooks): `state`, `start`, `kill` and `delete` load that record
type on every call, and importing the whole model with it (≈45 record
classes) cost them ≈0.5 ms each, -X importtime.
"""

from __future__ import annotations

from pyrunc.record import Record


class Hook(Record):
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] | None = None  # None: absent, the hook gets the runtime's env (runc)
    timeout: int | None = None


class Hooks(Record):
    prestart: tuple[Hook, ...] = ()
    create_runtime: tuple[Hook, ...] = ()
    create_container: tuple[Hook, ...] = ()
    start_container: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()
