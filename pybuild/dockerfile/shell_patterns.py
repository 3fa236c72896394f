"""The glob patterns of `${x#p}`, `${x%p}`, `${x/p/r}` as BuildKit's lexer reads
them (`*`, `?`, escapes; no brackets), turned into Python regexes that behave
like the Go ones, including Go's ReplaceAll rules for empty matches and its
`$` template expansion of the replacement.
"""

from __future__ import annotations

import re

from pybuild.gostr import scanner_text


class PatternError(Exception):
    """An invalid escape in a pattern; the lexer turns it into ExpansionError."""


def shell_pattern_regex(pattern: str, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """`*` and `?` globs (no brackets) to a regex; `\\}` and `\\/` drop the escape."""
    src = scanner_text(pattern)
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    while i < len(src):
        tok = src[i]
        i += 1
        if tok == "*":
            out.append(star)
            continue
        if tok == "?":
            out.append(".")
            continue
        if tok == "\\":
            nxt = src[i] if i < len(src) else ""
            if nxt in ("}", "/") and nxt:
                continue
            i += 1
            if nxt not in ("*", "?", "\\") or not nxt:
                raise PatternError(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{nxt or chr(0xFFFD)}'")
            out.append("\\" + nxt)
            continue
        out.append(re.escape(tok) if tok in "[]{}.+()|^$" else tok)
    return re.compile("".join(out))


def trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    m = shell_pattern_regex(pattern, greedy, True).search(value)
    return value[m.end():] if m else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern keeping each `\\x` escape pair in order."""
    runes = list(pattern)
    out = [""] * len(runes)
    last = len(runes) - 1
    i = 0
    while i <= last:
        tok = runes[i]
        idx = last - i
        if tok == "\\" and i != last:
            out[idx - 1] = tok
            out[idx] = runes[i + 1]
            i += 2
        else:
            out[idx] = tok
            i += 1
    return "".join(out)


def trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # Shortest rightmost match == leftmost match on the reversed strings.
    return trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


def _go_expand(template: str, m: re.Match[str]) -> str:
    """Go Regexp.Expand for our group-less patterns: `$$` is `$`, `$0`/`${0}`
    is the match, other valid names are empty, a malformed `$` is literal."""
    out: list[str] = []
    while True:
        before, sep, template = template.partition("$")
        out.append(before)
        if not sep:
            return "".join(out)
        if template.startswith("$"):
            out.append("$")
            template = template[1:]
            continue
        brace = template.startswith("{")
        body = template[1:] if brace else template
        i = 0
        while i < len(body) and (body[i] == "_" or body[i].isalpha() or body[i].isdecimal()):
            i += 1
        if i == 0 or (brace and (i >= len(body) or body[i] != "}")):
            out.append("$")
            continue
        name = body[:i]
        template = body[i + 1:] if brace else body[i:]
        if name == "0":
            out.append(m.group(0))


def go_replace_all(rx: re.Pattern[str], src: str, template: str) -> str:
    """Go ReplaceAllString: an empty match right after a match is not replaced."""
    out: list[str] = []
    last_end = 0
    search = 0
    while search <= len(src):
        m = rx.search(src, search)
        if m is None:
            break
        out.append(src[last_end: m.start()])
        if m.end() > last_end or m.start() == 0:
            out.append(_go_expand(template, m))
        last_end = m.end()
        search = search + 1 if search + 1 > m.end() else m.end()
    out.append(src[last_end:])
    return "".join(out)
