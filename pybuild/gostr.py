"""Go string semantics that BuildKit's parser output depends on: unicode.IsSpace,
strings.TrimSpace/ToLower/ToUpper, strconv.Quote and how text/scanner reads text.

Strings here are Python str decoded from UTF-8 with errors="surrogateescape"
(U+DC80..U+DCFF stand for undecodable bytes), so every byte round-trips.
"""

from __future__ import annotations

import re

# Go's unicode.IsSpace (White_Space property); Python's str.isspace also takes
# U+001C..U+001F, which Go does not.
GO_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def go_isspace(ch: str) -> bool:
    return ch in GO_SPACES


def go_trim_space(s: str) -> str:
    """Go strings.TrimSpace."""
    i, j = 0, len(s)
    while i < j and s[i] in GO_SPACES:
        i += 1
    while j > i and s[j - 1] in GO_SPACES:
        j -= 1
    return s[i:j]


def go_trim_left_space(s: str) -> str:
    i = 0
    while i < len(s) and s[i] in GO_SPACES:
        i += 1
    return s[i:]


def go_lower(s: str) -> str:
    """Go strings.ToLower: per-rune simple case mapping (no final sigma, İ -> i)."""
    if s.isascii():
        return s.lower()
    out = []
    for ch in s:
        if "\udc80" <= ch <= "\udcff":  # strings.Map turns invalid UTF-8 into U+FFFD
            out.append("\ufffd")
            continue
        low = ch.lower()
        out.append(low if len(low) == 1 else ("i" if ch == "\u0130" else ch))
    return "".join(out)


def go_upper(s: str) -> str:
    """Go strings.ToUpper: per-rune simple case mapping (ß stays ß)."""
    if s.isascii():
        return s.upper()
    out = []
    for ch in s:
        up = "\ufffd" if "\udc80" <= ch <= "\udcff" else ch.upper()
        out.append(up if len(up) == 1 else ch)
    return "".join(out)


def go_quote(s: str) -> str:
    """Go strconv.Quote of a string decoded with errors='surrogateescape'."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif 0xDC80 <= o <= 0xDCFF:  # an undecodable byte
            out.append("\\x%02x" % (o - 0xDC00))
        elif 0xD800 <= o <= 0xDFFF:  # cannot come from UTF-8; Go would see U+FFFD
            out.append("\ufffd")
        elif ch.isprintable():  # Go unicode.IsPrint: L, M, N, P, S and ASCII space
            out.append(ch)
        elif o < 0x80:
            out.append("\\x%02x" % o)
        elif o < 0x10000:
            out.append("\\u%04x" % o)
        else:
            out.append("\\U%08x" % o)
    out.append('"')
    return "".join(out)


_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
_SURROGATES = re.compile("[\ud800-\udfff]")


def scanner_text(s: str) -> str:
    """What Go's text/scanner reads from `s`: invalid UTF-8 becomes U+FFFD and
    a leading byte-order mark is skipped."""
    s = _SURROGATES.sub("\ufffd", s)
    return s[1:] if s.startswith("\ufeff") else s


def printable(s: str) -> str:
    """`s` with each undecodable byte shown as U+FFFD (as Go decodes it), safe to print."""
    return _SURROGATES.sub("\ufffd", s)
