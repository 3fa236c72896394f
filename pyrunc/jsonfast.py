"""json.loads/json.dumps on the hot path without importing the json package.

`json.decoder` imports `re` (and with it enum, functools, collections): about
7 ms of a ~40 ms `pyrunc run`. The C accelerators in `_json` do the real work
either way; this module drives them directly. Anything unusual (invalid
JSON, a BOM) goes to the real `json` module, so errors read exactly as
json's do and the result is always what json.loads would return.
"""

from __future__ import annotations

import _json

_WS = " \t\n\r"


def _bad_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_bad_constant)
    memo: dict = {}


_scan = _json.make_scanner(_Context())


def _reject(obj: object) -> object:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_encode = _json.make_encoder(None, _reject, _json.encode_basestring_ascii, None, ": ", ", ",
                             False, False, True)


def _slow_loads(s: str | bytes) -> object:
    import json

    return json.loads(s)


def loads(s: str | bytes | bytearray) -> object:
    if not isinstance(s, str):
        try:
            s = bytes(s).decode("utf-8")
        except UnicodeDecodeError:
            return _slow_loads(bytes(s))  # json's own encoding detection and errors
    if s.startswith("\ufeff"):
        return _slow_loads(s)
    start = len(s) - len(s.lstrip(_WS))
    try:
        obj, end = _scan(s, start)
    except (StopIteration, ValueError, SystemError):
        # The C scanner raises its JSONDecodeError only if json.decoder is
        # already in sys.modules; otherwise it fails with SystemError. Either
        # way the real json module parses again and raises its own message.
        return _slow_loads(s)
    if s[end:].strip(_WS):
        return _slow_loads(s)
    return obj


def dumps(obj: object) -> str:
    """json.dumps(obj) with the default separators and ensure_ascii."""
    return "".join(_encode(obj, 0))
