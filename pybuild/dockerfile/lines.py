"""One logical Dockerfile line -> keyword, flags and arguments, as BuildKit's
split_command.go and line_parsers.go do it.

Each line parser takes the text after the keyword and flags and returns
`(args, is_json)`. Which keyword uses which is the `split` column of the keyword
table (`keywords.KEYWORDS`, BuildKit's dispatch table); a keyword without a row
keeps one empty argument (`parse_ignore`), and ONBUILD (which nests a whole line)
is handled by the parser.
Where BuildKit walks bytes (flag words, HEALTHCHECK) this module does too, so
the results match it byte for byte, quirks included.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

from pybuild.gostr import GO_SPACES, go_quote, go_trim_left_space, go_trim_space

Args = tuple[list[str], bool]
LineParser = Callable[[str, str], Args]
_WS = re.compile(r"[\t\v\f\r ]+")


class LineError(Exception):
    """A line BuildKit's parser rejects; the parser adds the file and line."""


def go_split(s: str, limit: int = -1) -> list[str]:
    """Go regexp.Split on `[\\t\\v\\f\\r ]+` (keeps a leading/trailing empty piece)."""
    if not s:
        return [""]
    out: list[str] = []
    beg = end = 0
    for m in _WS.finditer(s):
        if limit > 0 and len(out) == limit - 1:
            break
        end = m.start()
        if m.end() != 0:
            out.append(s[beg:end])
        beg = m.end()
    if end != len(s):
        out.append(s[beg:])
    return out


def split_command(line: str, escape: str) -> tuple[str, list[str], str]:
    """The keyword, its leading `--flags` and the rest of the line (splitCommand)."""
    parts = go_split(go_trim_space(line), 2)
    if len(parts) < 2:
        return parts[0], [], ""
    rest, flags = extract_flags(parts[1], escape)
    return parts[0], flags, go_trim_space(rest)


def extract_flags(line: str, escape: str) -> tuple[str, list[str]]:
    """Leading `--flag` words, walked byte by byte as BuildKit does (a byte
    >= 0x80 becomes the rune of that value; 0x85 and 0xA0 count as spaces)."""
    data = line.encode("utf-8", "surrogateescape")
    esc = ord(escape)
    words: list[str] = []
    word: list[str] = []
    in_word = in_quote = blank_ok = False
    quote = 0
    pos, n = 0, len(data)

    def rest(at: int) -> str:
        return data[at:].decode("utf-8", "surrogateescape")

    while pos <= n:
        ch = data[pos] if pos < n else -1
        if not in_word and not in_quote:
            if pos == n:
                break
            if chr(ch) in GO_SPACES:
                pos += 1
                continue
            if ch != 0x2D or pos + 1 == n or data[pos + 1] != 0x2D:
                return rest(pos), words
            in_word = True
        if pos == n:
            w = "".join(word)
            if w != "--" and (blank_ok or w):
                words.append(w)
            break
        if in_word:
            if chr(ch) in GO_SPACES:
                w = "".join(word)
                in_word = False
                if w == "--":
                    return rest(pos), words
                if blank_ok or w:
                    words.append(w)
                word.clear()
                blank_ok = False
                pos += 1
                continue
            if ch in (0x27, 0x22):
                quote, blank_ok, in_word, in_quote = ch, True, False, True
                pos += 1
                continue
            if ch == esc:
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = data[pos]
            word.append(chr(ch))
            pos += 1
            continue
        # in a quote
        if ch == quote:
            in_quote, in_word = False, True
            pos += 1
            continue
        if ch == esc:
            if pos + 1 == n:
                in_quote, in_word = False, True
                pos += 1
                continue
            pos += 1
            ch = data[pos]
        word.append(chr(ch))
        pos += 1
    return "", words


# --- line parsers (BuildKit's line_parsers.go) -----------------------------------


def parse_ignore(rest: str, escape: str) -> Args:
    """Unknown instructions keep one empty argument (`(foo "")`)."""
    return [""], False


def parse_words(rest: str, escape: str) -> list[str]:
    """Words split on whitespace outside quotes, quotes and escapes kept."""
    words: list[str] = []
    word: list[str] = []
    in_word = in_quote = blank_ok = False
    quote = ""
    src = rest
    n = len(src)
    pos = 0

    def rune(at: int) -> str:
        c = src[at]
        return "\ufffd" if "\udc80" <= c <= "\udcff" else c

    while pos <= n:
        ch = rune(pos) if pos < n else ""
        if not in_word and not in_quote:
            if pos == n:
                break
            if ch in GO_SPACES:
                pos += 1
                continue
            in_word = True
        if pos == n:
            if blank_ok or word:
                words.append("".join(word))
            break
        if in_word:
            if ch in GO_SPACES:
                in_word = False
                if blank_ok or word:
                    words.append("".join(word))
                word.clear()
                blank_ok = False
                pos += 1
                continue
            if ch in ("'", '"'):
                quote, blank_ok, in_word, in_quote = ch, True, False, True
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue
                word.append(ch)
                pos += 1
                ch = rune(pos)
            word.append(ch)
            pos += 1
            continue
        if ch == quote:
            in_quote, in_word = False, True
        if ch == escape and quote != "'":
            if pos + 1 == n:
                in_quote, in_word = False, True
                pos += 1
                continue
            pos += 1
            word.append(ch)
            ch = rune(pos)
        word.append(ch)
        pos += 1
    return words


def parse_name_val(key: str) -> LineParser:
    """ENV/LABEL: `k=v k2=v2` (triples key, value, "=") or the legacy `k v` (key, rest, "")."""

    def split(rest: str, escape: str) -> Args:
        words = parse_words(rest, escape)
        if not words:
            return [], False
        if "=" not in words[0]:
            parts = go_split(rest, 2)
            if len(parts) < 2:
                raise LineError(f"{key} must have two arguments")
            return [parts[0], parts[1], ""], False
        args: list[str] = []
        for word in words:
            if "=" not in word:
                raise LineError(f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value")
            k, _, v = word.partition("=")
            args += [k, v, "="]
        return args, False

    return split


def parse_name_or_name_val(rest: str, escape: str) -> Args:
    return parse_words(rest, escape), False


def parse_whitespace_list(rest: str, escape: str) -> Args:
    return (go_split(rest) if rest else []), False


def parse_string(rest: str, escape: str) -> Args:
    return ([rest] if rest else []), False


class _NotJSON(Exception):
    pass


def _json_number(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # Go's ParseFloat reports a range error
        raise _NotJSON(text)
    return value


def _json_constant(text: str) -> float:
    raise _NotJSON(text)  # NaN / Infinity are not JSON to Go


_JSON = json.JSONDecoder(parse_float=_json_number, parse_int=_json_number, parse_constant=_json_constant)
_NOT_STRINGS = "when using JSON array syntax, arrays must be comprised of strings only"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _parse_json(rest: str) -> list[str] | None:
    """The decoded array, or None when the text is not a JSON array (then it is
    shell form). A valid array holding a non-string is an error, as in BuildKit."""
    rest = go_trim_left_space(rest)
    if not rest.startswith("["):
        return None
    try:
        value = _JSON.decode(rest)
    except (ValueError, _NotJSON):
        return None
    except RecursionError:
        # Deeper than Python's decoder goes. Go accepts up to 10000 levels: a valid
        # document that deep is an array holding arrays, i.e. not strings only.
        if _deep_json_is_valid(rest):
            raise LineError(_NOT_STRINGS) from None
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise LineError(_NOT_STRINGS)
    # Go decodes invalid UTF-8 and lone \uD800 escapes as U+FFFD.
    return [_LONE_SURROGATE.sub("\ufffd", v) for v in value]


_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON_SCALAR = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null")
_GO_MAX_DEPTH = 10000


def _deep_json_is_valid(text: str) -> bool:
    """Would Go's decoder accept `text` (syntax, nesting depth, float range)?
    An iterative check for documents too deep for Python's json module."""
    stack: list[str] = []
    state, i, n = "value", 0, len(text)
    while True:
        i = _JSON_WS.match(text, i).end()  # type: ignore[union-attr]
        if i >= n:
            return state == "after" and not stack
        c = text[i]
        if state == "value" or state == "key":
            if state == "key" or c == '"':
                if c != '"':
                    return False
                try:
                    _, i = json.decoder.scanstring(text, i + 1, True)  # type: ignore[attr-defined]
                except ValueError:
                    return False
                if state == "key":
                    i = _JSON_WS.match(text, i).end()  # type: ignore[union-attr]
                    if text[i:i + 1] != ":":
                        return False
                    i, state = i + 1, "value"
                else:
                    state = "after"
            elif c in "[{":
                stack.append(c)
                if len(stack) > _GO_MAX_DEPTH:
                    return False
                i = _JSON_WS.match(text, i + 1).end()  # type: ignore[union-attr]
                if text[i:i + 1] == ("]" if c == "[" else "}"):
                    stack.pop()
                    i, state = i + 1, "after"
                else:
                    state = "value" if c == "[" else "key"
            else:
                m = _JSON_SCALAR.match(text, i)
                if not m or (m.group(0)[0] in "-0123456789" and math.isinf(float(m.group(0)))):
                    return False
                i, state = m.end(), "after"
        else:  # after a value
            if not stack:
                return False
            if c == ",":
                i, state = i + 1, ("value" if stack[-1] == "[" else "key")
            elif c == ("]" if stack[-1] == "[" else "}"):
                stack.pop()
                i += 1
            else:
                return False


def parse_maybe_json(rest: str, escape: str) -> Args:
    if not rest:
        return [], False
    values = _parse_json(rest)
    return ([rest], False) if values is None else (values, True)


def parse_maybe_json_to_list(rest: str, escape: str) -> Args:
    values = _parse_json(rest)
    return parse_whitespace_list(rest, escape) if values is None else (values, True)


def parse_health(rest: str, escape: str) -> Args:
    data = rest.encode("utf-8", "surrogateescape")  # BuildKit scans bytes here
    sep = 0
    while sep < len(data) and chr(data[sep]) not in GO_SPACES:
        sep += 1
    nxt = sep
    while nxt < len(data) and chr(data[nxt]) in GO_SPACES:
        nxt += 1
    if sep == 0:
        return [], False
    args, is_json = parse_maybe_json(data[nxt:].decode("utf-8", "surrogateescape"), escape)
    return [data[:sep].decode("utf-8", "surrogateescape"), *args], is_json
