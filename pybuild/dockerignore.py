""".dockerignore matching, as docker/BuildKit do it (moby/patternmatcher +
ignorefile.ReadAll).

    ignore = DockerIgnore.from_file(".dockerignore")   # or parse(text), from_patterns([...])
    ignore.matches("src/app.pyc")   # True: excluded from the build context

Reading: a BOM is dropped; lines starting with `#` (column 0) are comments;
each line is trimmed, `!` marks an exception, the pattern is cleaned like Go's
filepath.Clean and a leading `/` removed (so `/a`, `./a` and `a` are the same).

Matching: patterns are Go filepath.Match syntax (`*`, `?`, `[...]`, `\\`
escapes) plus `**` for any number of directories. Rules apply in order and the
last one that matches a path wins; a path is also matched when one of its
parent directories is (so `node_modules` excludes everything below it, and
`!node_modules/keep` brings one file back). A malformed pattern is an error.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from pybuild.errors import PybuildError

_EXACT, _PREFIX, _SUFFIX, _REGEXP = range(4)
_ESCAPE = frozenset(".+()|{}$")
_SPACES = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
          "\u2028\u2029\u202f\u205f\u3000"


class DockerIgnoreError(PybuildError):
    """A .dockerignore pattern that Go's filepath.Match rejects."""


def go_clean(path: str) -> str:
    """Go's filepath.Clean for `/` separators."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(comp)
    out = ("/" if rooted else "") + "/".join(parts)
    return out or "."


def _go_dir(path: str) -> str:
    return go_clean(path[: path.rfind("/") + 1])


def read_patterns(data: bytes | str) -> list[str]:
    """ignorefile.ReadAll: the pattern list of a .dockerignore file."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "surrogateescape")
    out = []
    for num, line in enumerate(re.split(r"\r?\n", data)):
        if num == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        pattern = line.strip(_SPACES)
        if not pattern:
            continue
        invert = pattern[0] == "!"
        if invert:
            pattern = pattern[1:].strip(_SPACES)
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern[0] == "/":
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out


class _BadPattern(Exception):
    pass


def _get_esc(chunk: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise _BadPattern
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise _BadPattern
    r, rest = chunk[0], chunk[1:]
    if not rest:
        raise _BadPattern
    return r, rest


def _match_chunk(chunk: str, s: str) -> tuple[str, bool]:
    failed = False
    while chunk:
        if not failed and not s:
            failed = True
        c = chunk[0]
        if c == "[":
            r = ""
            if not failed:
                r, s = s[0], s[1:]
            chunk = chunk[1:]
            negated = chunk[:1] == "^"
            if negated:
                chunk = chunk[1:]
            match, nrange = False, 0
            while True:
                if chunk[:1] == "]" and nrange > 0:
                    chunk = chunk[1:]
                    break
                lo, chunk = _get_esc(chunk)
                hi = lo
                if chunk[0] == "-":
                    hi, chunk = _get_esc(chunk[1:])
                if r and lo <= r <= hi:
                    match = True
                nrange += 1
            if match == negated:
                failed = True
        elif c == "?":
            if not failed:
                failed = s[0] == "/"
                s = s[1:]
            chunk = chunk[1:]
        else:
            if c == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise _BadPattern
            if not failed:
                failed = chunk[0] != s[0]
                s = s[1:]
            chunk = chunk[1:]
    return ("", False) if failed else (s, True)


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern.startswith("*"):
        pattern, star = pattern[1:], True
    in_range, i = False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            i += 1
        elif c == "[":
            in_range = True
        elif c == "]":
            in_range = False
        elif c == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def go_filepath_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match (Unix); raises _BadPattern where Go returns ErrBadPattern."""
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name
        t, ok = _match_chunk(chunk, name)
        if ok and (not t or pattern):
            name = t
            continue
        if star:
            found = False
            i = 0
            while i < len(name) and name[i] != "/":
                t, ok = _match_chunk(chunk, name[i + 1:])
                if ok and not (not pattern and t):
                    name, found = t, True
                    break
                i += 1
            if found:
                continue
        return False  # Go does not check the rest of the pattern here
    return not name


def _check_go_pattern(pattern: str) -> None:
    try:
        go_filepath_match(pattern, ".")
    except _BadPattern:
        raise DockerIgnoreError(f".dockerignore: syntax error in pattern {pattern!r}") from None


# How Go's regexp reads `\x` for the x that patternmatcher may put after a
# backslash: punctuation is literal, these letters mean what they mean in RE2,
# any other letter, digit or non-ASCII character makes the regex invalid.
_GO_ESCAPES = {"a": "\\x07", "f": "\\f", "t": "\\t", "n": "\\n", "r": "\\r", "v": "\\v", "b": "\\b",
               "B": "\\B", "A": "\\A", "z": "\\Z", "d": "[0-9]", "D": "[^0-9]", "s": "[\\t\\n\\f\\r ]",
               "S": "[^\\t\\n\\f\\r ]", "w": "[0-9A-Za-z_]", "W": "[^0-9A-Za-z_]"}


@dataclass(frozen=True, slots=True)
class Pattern:
    text: str  # cleaned, without the `!`
    exclusion: bool
    kind: int
    regex: re.Pattern[str] | None

    @classmethod
    def compile(cls, text: str, exclusion: bool) -> Pattern:
        """patternmatcher's compile: fast exact/prefix/suffix kinds, else a regex."""
        _check_go_pattern(text)
        out = ["^"]
        kind = _EXACT
        i, n = 0, len(text)
        first = invalid = True
        invalid = False
        while i < n:
            ch = text[i]
            i += 1
            if ch == "*":
                if i < n and text[i] == "*":
                    i += 1
                    if i < n and text[i] == "/":
                        i += 1
                    if i >= n:
                        if kind == _EXACT:
                            kind = _PREFIX
                        else:
                            out.append(".*")
                            kind = _REGEXP
                    else:
                        out.append("(.*/)?")
                        kind = _REGEXP
                    if first:
                        kind = _SUFFIX
                else:
                    out.append("[^/]*")
                    kind = _REGEXP
            elif ch == "?":
                out.append("[^/]")
                kind = _REGEXP
            elif ch in _ESCAPE:
                out.append("\\" + ch)
            elif ch == "\\":
                if i < n:
                    nxt = text[i]
                    if nxt.isascii() and not nxt.isalnum():
                        out.append(re.escape(nxt))
                    elif nxt in _GO_ESCAPES:
                        out.append(_GO_ESCAPES[nxt])
                    else:
                        invalid = True
                    i += 1
                    kind = _REGEXP
                else:
                    out.append("\\\\")
            elif ch in "[]":
                out.append(ch)
                kind = _REGEXP
            else:
                out.append(ch)  # raw, as patternmatcher does (even `^`)
            first = False
        if kind != _REGEXP:
            return cls(text, exclusion, kind, None)
        regex = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                regex = None if invalid else re.compile("".join(out) + r"\Z")
            except re.error:
                pass
        # Go compiles lazily: a bad regex is an error only when a match needs it.
        return cls(text, exclusion, _REGEXP, regex)

    def match(self, path: str) -> bool:
        if self.kind == _EXACT:
            return path == self.text
        if self.kind == _PREFIX:
            return path.startswith(self.text[:-2])
        if self.kind == _SUFFIX:
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        if self.regex is None:
            raise DockerIgnoreError(f".dockerignore: syntax error in pattern {self.text!r}")
        return self.regex.match(path) is not None


class DockerIgnore:
    """An ordered list of patterns; `matches(path)` says if path is excluded."""

    def __init__(self, patterns: list[str]) -> None:
        compiled = []
        for p in patterns:
            p = p.strip(_SPACES)
            if not p:
                continue
            p = go_clean(p)
            exclusion = p[0] == "!"
            if exclusion:
                if len(p) == 1:
                    raise DockerIgnoreError('.dockerignore: illegal exclusion pattern: "!"')
                p = p[1:]
            compiled.append(Pattern.compile(p, exclusion))
        self.patterns: tuple[Pattern, ...] = tuple(compiled)

    @classmethod
    def from_patterns(cls, patterns: list[str]) -> DockerIgnore:
        return cls(patterns)

    @classmethod
    def from_bytes(cls, data: bytes | str) -> DockerIgnore:
        return cls(read_patterns(data))

    @classmethod
    def from_file(cls, path: str | Path) -> DockerIgnore:
        """The file's rules; a missing file means "exclude nothing"."""
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            return cls([])
        return cls(read_patterns(data))

    @property
    def has_exclusions(self) -> bool:
        """True when some `!` rule exists (a walker must then enter excluded dirs)."""
        return any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        """Is the context-relative path (slash-separated) excluded?
        (patternmatcher.MatchesOrParentMatches)."""
        path = go_clean(path.lstrip("/")) if path else "."
        matched = False
        parent = _go_dir(path)
        parent_dirs = parent.split("/")
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            hit = pat.match(path)
            if not hit and parent != ".":
                for i in range(len(parent_dirs)):
                    if pat.match("/".join(parent_dirs[: i + 1])):
                        hit = True
                        break
            if hit:
                matched = not pat.exclusion
        return matched

    __call__ = matches


def parse(text: bytes | str) -> DockerIgnore:
    """The rules of a .dockerignore file's content."""
    return DockerIgnore.from_bytes(text)


def ignore_file_for(context_dir: str | Path, dockerfile: str | Path | None = None) -> Path:
    """`<Dockerfile>.dockerignore` next to the Dockerfile wins over the context's `.dockerignore`."""
    if dockerfile is not None:
        specific = Path(str(dockerfile) + ".dockerignore")
        if specific.exists():
            return specific
    return Path(context_dir) / ".dockerignore"
