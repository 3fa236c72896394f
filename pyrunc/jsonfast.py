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
_encode_compact = _json.make_encoder(None, _reject, _json.encode_basestring_ascii, None, ":", ",",
                                     False, False, True)


def _slow_loads(s: str | bytes) -> object:
    import json

    return json.loads(s)


MAX_DEPTH = 10000  # Go's encoding/json (runc) refuses deeper documents: "exceeded max depth"
_DEEP_STACK = 64 << 20  # C stack for the scanner's recursion on a document up to MAX_DEPTH deep


def loads(s: str | bytes | bytearray) -> object:
    """json.loads; a document nested deeper than the interpreter's recursion
    limit is parsed in a thread with a stack sized for it (up to MAX_DEPTH, as
    runc accepts), deeper ones fail with ValueError: never a RecursionError."""
    try:
        return _loads(s)
    except RecursionError:
        return _deep_loads(s)


def _loads(s: str | bytes | bytearray) -> object:
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


def dumps(obj: object, compact: bool = False) -> str:
    """json.dumps(obj) with the default separators (compact: (",", ":")) and ensure_ascii."""
    return "".join((_encode_compact if compact else _encode)(obj, 0))


def dumps_indent(obj: object, indent: int = 2, _level: int = 0) -> str:
    """json.dumps(obj, indent=indent), byte for byte (runc's MarshalIndent for `state`): the
    C encoder does no indenting and json's Python one would import `re`."""
    pad = " " * (indent * (_level + 1))
    if isinstance(obj, dict) and obj:
        items = [f"{pad}{dumps(str(k))}: {dumps_indent(v, indent, _level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * (indent * _level) + "}"
    if isinstance(obj, (list, tuple)) and obj:
        items = [pad + dumps_indent(v, indent, _level + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + " " * (indent * _level) + "]"
    return dumps(obj)



def nesting_depth(text: str) -> int:
    """Deepest [ / { nesting of a JSON text, without recursion (brackets in
    strings do not count). Only called once the scanner ran out of recursion."""
    import re

    special = re.compile(r'["\[\]{}]').search
    depth = best = 0
    pos = 0
    while (m := special(text, pos)) is not None:
        c, pos = m.group(), m.end()
        if c == '"':
            while True:  # to the closing quote: one preceded by an even run of backslashes
                end = text.find('"', pos)
                if end < 0:
                    return best  # unterminated string: the parser reports it
                run = end - 1
                while text[run] == "\\":
                    run -= 1
                pos = end + 1
                if (end - 1 - run) % 2 == 0:
                    break
        elif c in "[{":
            depth += 1
            best = max(best, depth)
        else:
            depth -= 1
    return best


def _deep_loads(s: str | bytes | bytearray) -> object:
    if not isinstance(s, str):
        import json

        s = bytes(s).decode(json.detect_encoding(bytes(s)), "surrogatepass")
    if nesting_depth(s) > MAX_DEPTH:
        raise ValueError(f"exceeded max depth: arrays and objects nest deeper than {MAX_DEPTH} levels")
    import sys
    import threading

    box: list = []

    def work() -> None:
        try:
            box.append(_loads(s))
        except BaseException as err:  # handed to the caller's thread below
            box.append(err)

    limit = sys.getrecursionlimit()
    stack = threading.stack_size(_DEEP_STACK)
    sys.setrecursionlimit(limit + 2 * MAX_DEPTH)  # read by the new thread when it starts
    try:
        worker = threading.Thread(target=work, name="pyrunc-json")
        worker.start()
        worker.join()
    finally:
        sys.setrecursionlimit(limit)
        threading.stack_size(stack)
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]
