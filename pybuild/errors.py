"""The one exception hierarchy of pybuild; `cli.py` catches PybuildError once."""

from __future__ import annotations


class PybuildError(Exception):
    """Base class: str(err) is the whole one-line message shown to the user."""

    exit_code = 1


class DockerfileError(PybuildError):
    """A Dockerfile problem at a line: reads `Dockerfile:LINE: message`."""

    def __init__(self, message: str, line: int | None = None, filename: str = "Dockerfile") -> None:
        self.line = line
        self.filename = filename
        self.message = message
        prefix = f"{filename}:{line}: " if line else f"{filename}: "
        super().__init__(prefix + message)


class InstructionError(PybuildError):
    """What one instruction asks for cannot be done (a value after expansion, an option pybuild
    lacks); the message has no place: the builder, which knows the instruction's line, raises it
    again as `DockerfileError` ("Dockerfile:LINE: message")."""


class StepFailed(PybuildError):
    def __init__(self, message: str, line: int | None, exit_code: int) -> None:
        self.line = line
        self.step_exit_code = exit_code
        super().__init__(message)


class ImageNotFound(PybuildError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"image not found: {name}")


class DigestMismatch(PybuildError):
    def __init__(self, expected: str, actual: str, what: str = "blob") -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"{what} {expected}: digest mismatch (content hashes to {actual})")


class StoreError(PybuildError):
    pass


class ContextError(PybuildError):
    """A COPY/ADD source outside the context, missing, or unreadable."""


class RuntimeNotFound(PybuildError):
    pass
