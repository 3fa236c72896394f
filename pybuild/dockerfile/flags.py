"""Instruction flags as BuildKit's BFlags checks them, its "did you mean"
suggestions, and Go's time.ParseDuration (HEALTHCHECK intervals).

Errors are FlagError with BuildKit's wording; `instructions` adds the line.
"""

from __future__ import annotations

import re

from pybuild.gostr import go_lower, go_quote, go_upper


class FlagError(Exception):
    """A message without a location (the instructions layer adds the line)."""


# --- flags (BuildKit's BFlags) -------------------------------------------------------


class Flags:
    """Declared flags of one instruction; parse() checks the node's flag words."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.kinds: dict[str, str] = {}
        self.values: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}
        self.used: list[str] = []

    def bool(self, name: str) -> None:
        self.kinds[name], self.values[name] = "bool", "false"

    def string(self, name: str, default: str = "") -> None:
        self.kinds[name], self.values[name] = "string", default

    def strings(self, name: str) -> None:
        self.kinds[name], self.lists[name] = "strings", []

    def parse(self) -> None:
        for arg in self.args:
            if arg == "--":
                return
            if not arg.startswith("--"):
                raise FlagError(f"arg should start with -- : {arg}")
            flag, has_value, value = arg.partition("=")
            name = flag[2:]
            kind = self.kinds.get(name)
            if kind is None:
                raise FlagError(suggest(f"unknown flag: {flag}", name, list(self.kinds), case_sensitive=True))
            if name in self.used and kind != "strings":
                raise FlagError(f"duplicate flag specified: {flag}")
            if name not in self.used:  # BuildKit reports each used flag once
                self.used.append(name)
            if kind == "bool":
                if has_value and value == "":
                    raise FlagError(f"missing a value on flag: {flag}")
                low = value.lower()
                if low not in ("true", "", "false"):
                    raise FlagError(f"expecting boolean value for flag {flag}, not: {value}")
                self.values[name] = "false" if low == "false" else "true"
            elif not has_value:
                raise FlagError(f"missing a value on flag: {flag}")
            elif kind == "string":
                self.values[name] = value
            else:
                self.lists[name].append(value)

    def true(self, name: str) -> bool:
        return self.values[name] == "true"

    def optional_bool(self, name: str) -> bool | None:
        return self.true(name) if name in self.used else None


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def suggest(message: str, value: str, options: list[str], case_sensitive: bool) -> str:
    """BuildKit's suggest.WrapError: add "(did you mean X?)" within distance 2."""
    val = value if case_sensitive else go_lower(value)
    best, mindist = "", 3
    for opt in options:
        cmp = opt if case_sensitive else go_lower(opt)
        if cmp == val:
            return message
        dist = _levenshtein(val, cmp)
        if dist < mindist:
            best, mindist = cmp, dist
            if not case_sensitive:
                best = (go_lower(cmp) if value == go_lower(value) else
                        go_upper(cmp) if value == go_upper(value) else cmp)
    return f"{message} (did you mean {best}?)" if best else message


_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")
_UNITS = {"ns": 1, "us": 1000, "\u00b5s": 1000, "\u03bcs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
          "h": 3600 * 10**9}


def parse_go_duration(text: str) -> int:
    """Go time.ParseDuration, in nanoseconds ("1m30s", "1.5h", "-2ms", "0")."""
    s = text
    sign = -1 if s.startswith("-") else 1
    s = s[1:] if s[:1] in ("-", "+") else s
    if s == "0":
        return 0
    if not s:
        raise FlagError(f"time: invalid duration {go_quote(text)}")
    total = 0.0
    while s:
        m = _DURATION.match(s)
        num, unit = (m.group(1), m.group(2)) if m else ("", "")
        if num in ("", "."):
            raise FlagError(f"time: invalid duration {go_quote(text)}")
        if not unit:
            raise FlagError(f"time: missing unit in duration {go_quote(text)}")
        if unit not in _UNITS:
            raise FlagError(f"time: unknown unit {go_quote(unit)} in duration {go_quote(text)}")
        total += float(num) * _UNITS[unit]
        s = s[len(num) + len(unit):]
    if total > 2**63 - 1:
        raise FlagError(f"time: invalid duration {go_quote(text)}")
    return sign * int(total)
