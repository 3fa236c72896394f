"""The template functions: Go's builtins and docker's additions (cli/templates).

Each function takes evaluated arguments and returns a value, or raises
FuncError with the text Go would put after "error calling NAME: ". `and` and
`or` are evaluated lazily by the executor (Go 1.18+); they are listed here so
the parser knows them. Go builtins pybuild does not provide (`call`, `html`,
`js`, `urlquery`) are refused at parse time.
"""

from __future__ import annotations

from typing import Any, Callable

from pybuild.gotemplate.values import MISSING, NIL_LIST, NIL_MAP, Struct, to_json, to_text, truth, type_name
from pybuild.gotemplate.printf import sprint, sprintf, sprintln


class FuncError(Exception):
    """An error of one call: the executor adds where and which function."""


def _want(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if value is MISSING:
        value = None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FuncError(f"wrong type for value; expected {what}; got {type_name(value)}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FuncError(f"cannot index slice/array with type {type_name(value)}")
    return value


def _index(item: Any, *indexes: Any) -> Any:
    for idx in indexes:
        if item is None or item is MISSING:
            raise FuncError("index of untyped nil")
        if item is NIL_MAP:
            item = None
            continue
        if item is NIL_LIST:
            raise FuncError(f"index out of range: {_int(idx)}")
        if isinstance(item, dict):
            if not isinstance(idx, str):
                raise FuncError(f"value has type {type_name(idx)}; should be string")
            if isinstance(item, Struct):
                raise FuncError(f"can't index item of type {item.type_name}")
            item = item.get(idx)  # a missing key: the zero value (nil)
        elif isinstance(item, (list, tuple, str)):
            seq = item.encode() if isinstance(item, str) else item  # Go indexes a string's bytes
            i = _int(idx)
            if not 0 <= i < len(seq):
                raise FuncError(f"index out of range: {i}")
            item = seq[i]
        else:
            raise FuncError(f"can't index item of type {type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None or item is MISSING:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3 or (len(indexes) == 3 and isinstance(item, str)):
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    if not isinstance(item, (list, tuple, str)):
        raise FuncError(f"can't slice item of type {type_name(item)}")
    bounds = [_int(i) for i in indexes]
    size = len(item.encode()) if isinstance(item, str) else len(item)
    low = bounds[0] if bounds else 0
    high = bounds[1] if len(bounds) > 1 else size
    if not 0 <= low <= high <= size:
        raise FuncError(f"invalid slice index: {low} > {high}" if low > high else f"index out of range: {high}")
    if isinstance(item, str):
        return item.encode()[low:high].decode(errors="replace")
    return list(item[low:high])


def _len(item: Any) -> int:
    if item is NIL_LIST or item is NIL_MAP:
        return 0
    if isinstance(item, (list, tuple, str, dict)) and not isinstance(item, Struct):
        return len(item.encode()) if isinstance(item, str) else len(item)
    raise FuncError(f"len of type {type_name(item)}")


def _basic(value: Any) -> tuple[str, Any]:
    if value is None or value is MISSING:
        return "nil", None
    if isinstance(value, bool):
        return "bool", value
    if isinstance(value, int):
        return "int", value
    if isinstance(value, float):
        return "float", value
    if isinstance(value, str):
        return "string", value
    raise FuncError(f"non-comparable type {to_text(value)}: {type_name(value)}")


def _eq(a: Any, *others: Any) -> bool:
    if not others:
        raise FuncError("missing argument for comparison")
    ka, va = _basic(a)
    for b in others:
        kb, vb = _basic(b)
        if ka == "nil" or kb == "nil":
            if ka == kb:
                return True
            continue
        if ka != kb:
            raise FuncError("incompatible types for comparison")
        if va == vb:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    ka, va = _basic(a)
    kb, vb = _basic(b)
    if ka != kb:
        raise FuncError("incompatible types for comparison")
    if ka in ("bool", "nil"):
        raise FuncError("invalid type for comparison")
    return bool(va < vb)


def _title(s: Any) -> str:
    """strings.Title: upper-case the first letter of each word (words end at non-letters)."""
    text = _want(s, str, "string")
    out, prev = [], " "
    for ch in text:
        out.append(ch.upper() if not (prev.isalnum() or prev == "_") else ch)
        prev = ch
    return "".join(out)


def _join(items: Any, sep: Any) -> str:
    if items is NIL_LIST:
        items = []
    items = _want(items, (list, tuple), "[]string")
    if not all(isinstance(i, str) for i in items):
        raise FuncError("wrong type for value; expected []string; got []interface {}")
    return _want(sep, str, "string").join(items)


def _split(s: Any, sep: Any) -> list[str]:
    text, sep = _want(s, str, "string"), _want(sep, str, "string")
    return list(text) if sep == "" else text.split(sep)


def _pad(s: Any, prefix: Any, suffix: Any) -> str:
    return " " * max(0, _want(prefix, int, "int")) + _want(s, str, "string") + " " * max(0, _want(suffix, int, "int"))


def _truncate(s: Any, length: Any) -> str:
    text, n = _want(s, str, "string"), _want(length, int, "int")
    return text if len(text) < n else text[:max(n, 0)]


def _json(value: Any) -> str:
    try:
        return to_json(value)
    except ValueError as err:
        raise FuncError(str(err)) from None


# name -> (function, minimum arguments, maximum arguments or None)
FUNCS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "and": (lambda *a: a[-1], 1, None),     # lazy in the executor
    "or": (lambda *a: a[-1], 1, None),      # lazy in the executor
    "not": (lambda a: not truth(a), 1, 1),
    "len": (_len, 1, 1),
    "index": (_index, 1, None),
    "slice": (_slice, 1, None),
    "print": (sprint, 0, None),
    "println": (sprintln, 0, None),
    "printf": (lambda f, *a: sprintf(_want(f, str, "string"), a), 1, None),
    "eq": (_eq, 1, None),
    "ne": (lambda a, b: not _eq(a, b), 2, 2),
    "lt": (_lt, 2, 2),
    "le": (lambda a, b: _lt(a, b) or _eq(a, b), 2, 2),
    "gt": (lambda a, b: not (_lt(a, b) or _eq(a, b)), 2, 2),
    "ge": (lambda a, b: not _lt(a, b), 2, 2),
    # docker's (cli/templates/templates.go)
    "json": (_json, 1, 1),
    "join": (_join, 2, 2),
    "split": (_split, 2, 2),
    "title": (_title, 1, 1),
    "lower": (lambda s: _want(s, str, "string").lower(), 1, 1),
    "upper": (lambda s: _want(s, str, "string").upper(), 1, 1),
    "pad": (_pad, 3, 3),
    "truncate": (_truncate, 2, 2),
}

UNSUPPORTED = {"call": "no Go functions in pybuild's data", "html": "no HTML escaping", "js": "no JS escaping",
               "urlquery": "no URL escaping", "table": "table output is not supported here"}
