"""Build progress as BuildKit/buildah print it: one `[stage n/m] STEP k/N:
INSTRUCTION` line per step, the step's own output streamed under it, then
`--> CACHED` or `--> done in 0.42s`, and the final image ID.

Modes: `plain` (everything, no escape codes), `tty` (the same, with the step
lines bold and the RUN output dimmed when stderr is a terminal), `quiet`
(nothing but errors; a failing step's buffered output is still shown, so a
failure is never silent). Progress goes to stderr; the image ID to stdout.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, mode: str = "plain", err: TextIO | None = None, out: TextIO | None = None) -> None:
        if mode == "auto":
            mode = "tty" if (err or sys.stderr).isatty() else "plain"
        if mode not in ("plain", "tty", "quiet"):
            from pybuild.errors import PybuildError

            raise PybuildError(f"--progress={mode}: expected plain, tty, quiet or auto")
        self.mode = mode
        self.err = err or sys.stderr
        self.out = out or sys.stdout
        self._started = 0.0
        self._build_started = time.monotonic()
        self._buffer: list[bytes] = []

    def _say(self, text: str) -> None:
        if self.mode != "quiet":
            self.err.write(text + "\n")
            self.err.flush()

    def _bold(self, text: str) -> str:
        return f"\x1b[1m{text}\x1b[0m" if self.mode == "tty" else text

    def step(self, stage: int, stages: int, k: int, n: int, text: str) -> None:
        self._started = time.monotonic()
        self._buffer = []
        self._say(self._bold(f"[stage {stage}/{stages}] STEP {k}/{n}: {text}"))

    def output(self, line: bytes) -> None:
        """One line of a RUN step's output (with its newline)."""
        if self.mode == "quiet":
            self._buffer.append(line)
            return
        text = line.decode("utf-8", "replace")
        if self.mode == "tty":
            text = f"\x1b[2m{text.rstrip(chr(10))}\x1b[0m\n"
        self.err.write(text)
        self.err.flush()

    def cached(self) -> None:
        self._say("--> CACHED")

    def explain(self, reasons: list[str]) -> None:
        for reason in reasons:
            self._say(f"--> cache miss: {reason}")

    def done(self, detail: str = "") -> None:
        self._say(f"--> done in {time.monotonic() - self._started:.2f}s" + (f" ({detail})" if detail else ""))

    def failed(self) -> None:
        """Show what a quiet build hid, so the failing step's output stays visible."""
        if self.mode == "quiet" and self._buffer:
            for line in self._buffer:
                self.err.write(line.decode("utf-8", "replace"))
            self.err.flush()

    def message(self, text: str) -> None:
        self._say(text)

    def final(self, image_id: str, tags: list[str]) -> None:
        for tag in tags:
            self._say(f"Successfully tagged {tag}")
        self._say(f"--> built in {time.monotonic() - self._build_started:.2f}s")
        self.out.write(image_id + "\n")
        self.out.flush()
