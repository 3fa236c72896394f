"""Dockerfile bytes -> instruction nodes, exactly as BuildKit's parser (parser.Parse).

This is the first stage of the front end: no instruction is validated here
beyond what BuildKit's own parser rejects (see `instructions` for the rest).

    result = parse(data: bytes, filename="Dockerfile")
    result.nodes          # list[Node], one per instruction, with line ranges
    result.escape         # "\\" or "`" (from `# escape=`)
    result.directives     # {"syntax": ..., "check": ..., "escape": ...} as written
    result.warnings       # e.g. empty continuation lines
    dump(result)          # BuildKit's AST dump, e.g. '(copy ["--from=a"] "x" "/y")'

Text is handled as `str` decoded from UTF-8 with errors="surrogateescape", so
every byte survives and invalid bytes dump as `\\xNN` like Go. Where BuildKit
walks a line byte by byte (flag extraction, HEALTHCHECK), this module does the
same, so results match byte for byte, quirks included.

Rules (BuildKit's): lines split on `\\n`; a BOM is dropped; each line loses
trailing `\\r`/`\\n`; the first line of an instruction is left-trimmed and
continuation lines are not; comment lines vanish even inside continuations;
blank lines inside a continuation are skipped (warning); directives only at the
very top; a line of 65536 bytes or more is an error; heredocs (RUN/COPY/ADD, also
under ONBUILD, not in JSON form) take their bodies from the following lines.

Errors raise DockerfileError("Dockerfile:LINE: message").
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from pybuild.errors import DockerfileError
from pybuild.shell_words import (
    ExpansionError,
    GO_SPACES,
    ShellLex,
    go_lower,
    go_quote,
    go_trim_left_space,
    go_trim_space,
)

MAX_LINE = 65535  # bufio.MaxScanTokenSize - 1: the longest line BuildKit reads
_WS = re.compile(r"[\t\v\f\r ]+")
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_HEREDOC = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_VALID_DIRECTIVES = ("syntax", "escape", "check")
HEREDOC_INSTRUCTIONS = frozenset({"add", "copy", "run"})


@dataclass(frozen=True, slots=True)
class Heredoc:
    """A heredoc body. `content` keeps every body line with its own newline;
    chomping (`<<-`) strips leading tabs later, in the instructions layer."""

    name: str
    fd: int = 0
    expand: bool = True
    chomp: bool = False
    content: str = ""


@dataclass(slots=True)
class Node:
    """One instruction (or, for ONBUILD, a nested one in `sub`).

    `value` is the keyword as written; `args` are the argument strings as
    BuildKit's line parsers produce them; `json` marks exec (JSON) form.
    `original` is the joined logical line. Lines are 1-based and inclusive.
    """

    value: str
    args: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    json: bool = False
    sub: Node | None = None  # ONBUILD's trigger
    heredocs: list[Heredoc] = field(default_factory=list)
    original: str = ""
    start_line: int = 0
    end_line: int = 0

    @property
    def keyword(self) -> str:
        return go_lower(self.value)

    def dump(self) -> str:
        """BuildKit's Node.Dump for one instruction, without the parentheses."""
        parts = [go_lower(self.value)]
        if self.flags:
            parts.append(" [" + " ".join(go_quote(f) for f in self.flags) + "]")
        if self.sub is not None:
            # An argument node with children prints as its child's dump, which
            # ends in ")\n" before TrimSpace removes the newline.
            parts.append(" " + go_trim_space("(" + self.sub.dump() + ")\n"))
        for arg in self.args:
            parts.append(" " + go_quote(arg))
        return go_trim_space("".join(parts))


@dataclass(frozen=True, slots=True)
class Warning:
    message: str
    line: int


@dataclass(frozen=True, slots=True)
class Result:
    nodes: list[Node]
    escape: str
    directives: dict[str, str]
    warnings: list[Warning]
    filename: str = "Dockerfile"


def dump(result: Result) -> str:
    """The whole AST dump (BuildKit's root Dump): one `(instruction ...)` a line,
    no trailing newline (BuildKit's result files add one)."""
    return go_trim_space("".join("(" + n.dump() + ")\n" for n in result.nodes))


class _Error(Exception):
    """A message without a location; parse() adds the line."""


class _Directives:
    def __init__(self) -> None:
        self.escape = "\\"
        self.continuation = _continuation_regex("\\")
        self.done = False
        self.seen: dict[str, str] = {}

    def possible_directive(self, line: str) -> bool:
        """BuildKit's DirectiveParser.ParseLine + escape handling."""
        if self.done:
            return False
        if not line.startswith("#"):
            self.done = True
            return False
        m = _DIRECTIVE.match(go_trim_left_space(line[1:]))
        if not m or m.group(1).lower() not in _VALID_DIRECTIVES:
            self.done = True
            return False
        key = m.group(1).lower()
        if key in self.seen:
            raise _Error(f"only one {key} parser directive can be used")
        self.seen[key] = m.group(2)
        if key == "escape":
            value = m.group(2)
            if value not in ("`", "\\"):
                raise _Error(f"invalid escape token '{value}' does not match ` or \\")
            self.escape = value
            self.continuation = _continuation_regex(value)
        return True


def _continuation_regex(esc: str) -> re.Pattern[str]:
    e = re.escape(esc)
    return re.compile(rf"([^{e}]){e}[ \t]*\Z|\A{e}[ \t]*\Z")


def _is_comment(line: str) -> bool:
    return go_trim_left_space(line).startswith("#")


def _split_lines(data: bytes) -> tuple[list[str], int | None]:
    """Lines with their endings, as bufio.Scanner with scanLines yields them,
    and the 1-based number of a line too long to read (scanning stops there)."""
    lines: list[str] = []
    pos, n = 0, len(data)
    while pos < n:
        nl = data.find(b"\n", pos)
        end = n if nl < 0 else nl + 1
        if (end - pos) - (1 if nl >= 0 else 0) > MAX_LINE:
            return lines, len(lines) + 1
        chunk = data[pos:end]
        if pos == 0 and chunk.startswith(b"\xef\xbb\xbf"):
            chunk = chunk[3:]
        lines.append(chunk.decode("utf-8", "surrogateescape"))
        pos = end
    return lines, None


def parse(data: bytes, filename: str = "Dockerfile") -> Result:
    """Parse a Dockerfile. Raises DockerfileError naming the line."""
    lines, too_long = _split_lines(data)
    d = _Directives()
    nodes: list[Node] = []
    warnings: list[Warning] = []
    i, n = 0, len(lines)

    def fail(msg: str, line: int | None) -> DockerfileError:
        return DockerfileError(msg, line or None, filename)

    while i < n:
        raw = lines[i]
        try:
            text = _process_line(d, raw, strip_left=True)
        except _Error as err:
            raise fail(str(err), i + 1) from None
        i += 1
        start = i
        text, done = _trim_continuation(text, d)
        if done and not text:
            continue
        buf = [text]
        empty_continuation = False
        while not done and i < n:
            raw = lines[i]
            try:
                text = _process_line(d, raw, strip_left=False)
            except _Error as err:
                raise fail(str(err), i + 1) from None
            i += 1
            if _is_comment(raw):
                continue
            if not go_trim_left_space(text):
                empty_continuation = True
                continue
            text, done = _trim_continuation(text, d)
            buf.append(text)
        line = "".join(buf)
        if empty_continuation:
            warnings.append(Warning("Empty continuation line found in: " + line, i))
        try:
            node = _node_from_line(line, d)
        except _Error as err:
            raise fail(str(err), start) from None
        if "<<" in line and _can_contain_heredoc(node):
            try:
                docs = _heredocs_from_line(line)
            except (_Error, ExpansionError) as err:
                raise fail(str(err), start) from None
            for doc in docs:
                body: list[str] = []
                while i < n:
                    raw = lines[i]
                    i += 1
                    candidate = raw.rstrip("\r\n")
                    if doc.chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == doc.name:
                        break
                    body.append(raw)
                else:
                    raise fail("unterminated heredoc", start)
                node.heredocs.append(Heredoc(doc.name, doc.fd, doc.expand, doc.chomp, "".join(body)))
        node.start_line, node.end_line = start, i
        nodes.append(node)
    if not nodes:
        raise fail("file with no instructions", too_long or n)
    if too_long is not None:
        raise fail(f"dockerfile line greater than max allowed size of {MAX_LINE}", too_long)
    return Result(nodes, d.escape, dict(d.seen), warnings, filename)


def _process_line(d: _Directives, raw: str, strip_left: bool) -> str:
    """Trim the line end (and the start of a first line); a directive or a
    comment becomes empty."""
    token = raw.rstrip("\r\n")
    if strip_left:
        token = go_trim_left_space(token)
    d.possible_directive(token)
    return "" if _is_comment(token) else token


def _trim_continuation(line: str, d: _Directives) -> tuple[str, bool]:
    m = d.continuation.search(line)
    if m is None:
        return line, True
    return line[: m.start()] + (m.group(1) or ""), False


def _can_contain_heredoc(node: Node) -> bool:
    if node.keyword == "onbuild" and node.sub is not None:
        node = node.sub
    return node.keyword in HEREDOC_INSTRUCTIONS and not node.json


# --- splitting a logical line -------------------------------------------------


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


def _node_from_line(line: str, d: _Directives) -> Node:
    cmd, flags, rest = _split_command(line, d)
    parser = _DISPATCH.get(go_lower(cmd), _parse_ignore)
    node = Node(value=cmd, flags=flags, original=line)
    parser(node, rest, d)
    return node


def _split_command(line: str, d: _Directives) -> tuple[str, list[str], str]:
    parts = go_split(go_trim_space(line), 2)
    if len(parts) < 2:
        return parts[0], [], ""
    rest, flags = _extract_flags(parts[1], d.escape)
    return parts[0], flags, go_trim_space(rest)


def _extract_flags(line: str, escape: str) -> tuple[str, list[str]]:
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


def _parse_ignore(node: Node, rest: str, d: _Directives) -> None:
    node.args = [""]


def _parse_sub_command(node: Node, rest: str, d: _Directives) -> None:
    if rest:
        node.sub = _node_from_line(rest, d)


def _parse_words(rest: str, escape: str) -> list[str]:
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


def _parse_name_val(key: str) -> object:
    def parse_name_val(node: Node, rest: str, d: _Directives) -> None:
        words = _parse_words(rest, d.escape)
        if not words:
            return
        if "=" not in words[0]:
            parts = go_split(rest, 2)
            if len(parts) < 2:
                raise _Error(f"{key} must have two arguments")
            node.args = [parts[0], parts[1], ""]
            return
        for word in words:
            if "=" not in word:
                raise _Error(f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value")
            k, _, v = word.partition("=")
            node.args += [k, v, "="]

    return parse_name_val


def _parse_name_or_name_val(node: Node, rest: str, d: _Directives) -> None:
    node.args = _parse_words(rest, d.escape)


def _parse_whitespace_list(node: Node, rest: str, d: _Directives) -> None:
    if rest:
        node.args = go_split(rest)


def _parse_string(node: Node, rest: str, d: _Directives) -> None:
    if rest:
        node.args = [rest]


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
        raise _Error(_NOT_STRINGS) from None  # deeper than Python goes: nested arrays
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _Error(_NOT_STRINGS)
    # Go decodes invalid UTF-8 and lone \uD800 escapes as U+FFFD.
    return [_LONE_SURROGATE.sub("\ufffd", v) for v in value]


def _parse_maybe_json(node: Node, rest: str, d: _Directives) -> None:
    if not rest:
        return
    values = _parse_json(rest)
    if values is None:
        node.args = [rest]
    else:
        node.args, node.json = values, True


def _parse_maybe_json_to_list(node: Node, rest: str, d: _Directives) -> None:
    values = _parse_json(rest)
    if values is None:
        _parse_whitespace_list(node, rest, d)
    else:
        node.args, node.json = values, True


def _parse_health(node: Node, rest: str, d: _Directives) -> None:
    data = rest.encode("utf-8", "surrogateescape")  # BuildKit scans bytes here
    sep = 0
    while sep < len(data) and chr(data[sep]) not in GO_SPACES:
        sep += 1
    nxt = sep
    while nxt < len(data) and chr(data[nxt]) in GO_SPACES:
        nxt += 1
    if sep == 0:
        return
    _parse_maybe_json(node, data[nxt:].decode("utf-8", "surrogateescape"), d)
    node.args.insert(0, data[:sep].decode("utf-8", "surrogateescape"))


_DISPATCH = {
    "add": _parse_maybe_json_to_list,
    "arg": _parse_name_or_name_val,
    "cmd": _parse_maybe_json,
    "copy": _parse_maybe_json_to_list,
    "entrypoint": _parse_maybe_json,
    "env": _parse_name_val("ENV"),
    "expose": _parse_whitespace_list,
    "from": _parse_whitespace_list,
    "healthcheck": _parse_health,
    "label": _parse_name_val("LABEL"),
    "maintainer": _parse_string,
    "onbuild": _parse_sub_command,
    "run": _parse_maybe_json,
    "shell": _parse_maybe_json,
    "stopsignal": _parse_string,
    "user": _parse_string,
    "volume": _parse_maybe_json_to_list,
    "workdir": _parse_string,
}


# --- heredocs -------------------------------------------------------------------


def parse_heredoc(word: str) -> Heredoc | None:
    """A heredoc marker word (`<<EOF`, `<<-'EOF'`, `3<<EOF`) or None (ParseHeredoc)."""
    m = _HEREDOC.match(word)
    if not m:
        return None
    fd = min(int(m.group(1)), 2**64 - 1) if m.group(1) else 0
    rest = m.group(3)
    if not rest:
        return None
    lex = ShellLex("\\", skip_unset_env=True)
    words = lex.process_words(rest, {})
    if len(words) != 1:
        return None
    lex.raw_quotes = True
    raw = lex.process_words(rest, {})
    if len(raw) != len(words):
        raise _Error(f"internal lexing of heredoc produced inconsistent results: {rest}")
    quotes = words[0].count("'") + words[0].count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return Heredoc(name=words[0], fd=fd, expand=quotes == raw_quotes, chomp=m.group(2) == "-")


def must_parse_heredoc(word: str) -> Heredoc | None:
    """parse_heredoc, with a malformed marker meaning "not a heredoc" (MustParseHeredoc)."""
    try:
        return parse_heredoc(word)
    except (_Error, ExpansionError):
        return None


def _heredocs_from_line(line: str) -> list[Heredoc]:
    lex = ShellLex("\\", raw_quotes=True, raw_escapes=True, skip_unset_env=True)
    try:
        words = lex.process_words(line, {})
    except ExpansionError:
        return []
    docs = []
    for word in words:
        doc = parse_heredoc(word)
        if doc is not None:
            docs.append(doc)
    return docs


def chomp_heredoc(content: str) -> str:
    """Strip leading tabs from every line (what `<<-` means)."""
    return re.sub(r"(?m)^\t+", "", content)
