"""The one exception hierarchy of pyrunc.

Every error a user can cause or meet derives from PyruncError and carries a
message that already names the place (a config field, a path, a syscall).
`cli.py` catches PyruncError once and prints it; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class PyruncError(Exception):
    """Base class: str(err) is the whole one-line message shown to the user."""

    exit_code = 1


class ConfigError(PyruncError):
    """config.json is missing, malformed or violates the spec at `field`."""

    def __init__(self, field: str, message: str, source: str = "config.json") -> None:
        self.field = field
        self.source = source
        super().__init__(f"{source}: {field}: {message}" if field else f"{source}: {message}")


class ContainerNotFound(PyruncError):
    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        super().__init__(f'container "{container_id}" does not exist')


class ContainerExists(PyruncError):
    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        super().__init__(f'container with id exists: {container_id}')


class InvalidState(PyruncError):
    """An operation is not allowed in the container's current status."""


class KernelError(PyruncError):
    """A syscall failed; names the call and the path it acted on."""

    def __init__(self, call: str, err: int, path: str | None = None, detail: str = "") -> None:
        import os

        self.call = call
        self.errno = err
        self.path = path
        where = f" {path}" if path else ""
        extra = f" ({detail})" if detail else ""
        super().__init__(f"{call}{where}: {os.strerror(err)}{extra}")


class MissingFeature(PyruncError):
    """The kernel, the host or pyrunc itself lacks something the config asks for."""

    def __init__(self, name: str, detail: str = "") -> None:
        self.name = name
        super().__init__(f"{name}: not supported{': ' + detail if detail else ''}")


class HookError(PyruncError):
    pass


class CgroupError(PyruncError):
    pass


class SeccompError(PyruncError):
    pass


class SecurityError(PyruncError):
    """A hostile bundle tried to reach outside the container (path escape, bad /proc)."""


class ChildError(PyruncError):
    """An error raised in the container's init, re-raised in the parent."""
