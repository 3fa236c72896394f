"""Transfer progress for pull and push, on stderr.

On a terminal: one line per blob, redrawn in place at most 10 times a second
(`sha256:1a2b3c4d5e6f  [=====>      ]  12.3MB/40.0MB`). Otherwise plain lines, one when a blob starts
and one when it ends (`Copying blob sha256:1a2b3c4d5e6f (40.0MB)` / `... done`), so logs and CI stay
readable. `quiet` prints nothing. Thread-safe: concurrent transfers report into one object.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def _size(n: float) -> str:
    from pybuild.commands.images import size_text
    return size_text(n)


class TransferProgress:
    def __init__(self, mode: str = "auto", err: TextIO | None = None) -> None:
        self.err = err or sys.stderr
        if mode == "auto":
            mode = "tty" if self.err.isatty() else "plain"
        self.mode = mode
        self._lock = threading.Lock()
        self._rows: dict[str, list[float]] = {}   # key -> [done, total]
        self._notes: dict[str, str] = {}
        self._order: list[str] = []
        self._drawn = 0
        self._last = 0.0

    def message(self, text: str) -> None:
        if self.mode == "quiet":
            return
        with self._lock:
            self._write(text + "\n")

    def _write(self, text: str) -> None:
        self.err.write(text)
        self.err.flush()

    def start(self, key: str, total: int, verb: str = "Copying blob") -> None:
        with self._lock:
            self._rows[key] = [0, total]
            self._notes[key] = verb
            self._order.append(key)
            if self.mode == "plain":
                self._write(f"{verb} {key[:19]} ({_size(total)})\n")
            elif self.mode == "tty":
                self._redraw(force=True)

    def advance(self, key: str, n: int) -> None:
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                return
            row[0] += n
            if self.mode == "tty":
                self._redraw()

    def reset(self, key: str, done: int) -> None:
        with self._lock:
            if key in self._rows:
                self._rows[key][0] = done

    def finish(self, key: str, note: str = "done") -> None:
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                self._rows[key] = [0, 0]
                self._order.append(key)
                row = self._rows[key]
            row[0] = max(row[0], row[1])
            self._notes[key] = note
            if self.mode == "plain":
                self._write(f"{note.capitalize() if note[:1].islower() else note}: {key[:19]}\n")
            elif self.mode == "tty":
                self._redraw(force=True)

    def _redraw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        lines = []
        for key in self._order:
            done, total = self._rows[key]
            note = self._notes[key]
            if done >= total and note not in ("Copying blob", "Pushing blob", "Downloading"):
                lines.append(f"{key[:19]}  {note}")
                continue
            width = 30
            filled = int(width * done / total) if total else width
            bar = "=" * max(filled - 1, 0) + (">" if filled else "") + " " * (width - filled)
            lines.append(f"{key[:19]}  [{bar}]  {_size(done)}/{_size(total)}")
        out = ("\x1b[%dA" % self._drawn if self._drawn else "") + "".join(f"\r\x1b[2K{line}\n" for line in lines)
        self._drawn = len(lines)
        self._write(out)
