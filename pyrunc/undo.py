"""The undo stack of a create: cleanups run in reverse order if the block fails.

contextlib.ExitStack would do, but contextlib (with functools and collections)
costs several ms of import on the `run` hot path; this is the part we use.
A cleanup that fails while unwinding is logged, never allowed to hide the
error that caused the unwinding.
"""

from __future__ import annotations


class Undo:
    __slots__ = ("_steps",)

    def __init__(self) -> None:
        self._steps: list = []

    def callback(self, fn, *args) -> None:
        self._steps.append((fn, args))

    def pop_all(self) -> None:
        """Success: keep everything that was made."""
        self._steps.clear()

    def __enter__(self) -> "Undo":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        while self._steps:
            fn, args = self._steps.pop()
            try:
                fn(*args)
            except Exception as err:  # keep unwinding; the original error is what the user sees
                from pyrunc import logs

                logs.warning(f"cleanup {getattr(fn, '__name__', fn)}: {err}")
        return False
