"""runc's log output: `--log FILE`, `--log-format text|json`, `--debug`.

The CLI configures this once (`configure`); errors and warnings go to the log
file when one is given, else to stderr. JSON lines look like runc's
(`{"level":"error","msg":"…","time":"…"}`) because containerd and podman parse them.
"""

from __future__ import annotations

from pyrunc import jsonfast as json  # json without its re import (hot path)
import os
import sys
import time

_log_path: str | None = None
_log_fd = -1
_json = False
_debug = False
FORMATS = ("text", "json")


def configure(log_path: str | None, log_format: str, debug: bool) -> None:
    """Check the format and open the log file now, as runc does: a bad
    --log-format or an unopenable --log fails the command (exit 1) instead of
    losing every later message."""
    global _log_path, _log_fd, _json, _debug
    from pyrunc.errors import PyruncError

    if log_format not in FORMATS:
        raise PyruncError(f"invalid log-format: {log_format}")
    fd = -1
    if log_path:
        from pyrunc.fsutil import open_append  # never creates through a dangling link

        try:
            fd = open_append(log_path)
        except OSError as err:
            raise PyruncError(f"open {log_path}: {(err.strerror or str(err)).lower()}") from None
    _log_path, _log_fd, _json, _debug = log_path, fd, log_format == "json", debug


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def _emit(level: str, message: str) -> None:
    if _json:
        line = json.dumps({"level": level, "msg": message, "time": _now()})
    elif _log_path:
        line = f'time="{_now()}" level={level} msg="{message}"'
    else:
        line = f"pyrunc: {message}" if level == "error" else f"pyrunc: {level}: {message}"
    if _log_path:
        os.write(_log_fd, (line + "\n").encode())
        if level != "error":
            return
        if _json:
            return
        line = f"pyrunc: {message}"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def error(message: str, argv: list[str] | None = None) -> None:
    _emit("error", message)


def warning(message: str) -> None:
    _emit("warning", message)


def debug(message: str) -> None:
    if _debug:
        _emit("debug", message)
