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

import re
from dataclasses import dataclass, field

from pybuild.dockerfile import keywords
from pybuild.dockerfile.heredocs import Heredoc, heredocs_from_line
from pybuild.dockerfile.lines import LineError, parse_ignore, split_command
from pybuild.dockerfile.shell_words import ExpansionError
from pybuild.errors import DockerfileError
from pybuild.gostr import go_lower, go_quote, go_trim_left_space, go_trim_space, printable

MAX_LINE = 65535  # bufio.MaxScanTokenSize - 1: the longest line BuildKit reads
_DIRECTIVE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_VALID_DIRECTIVES = ("syntax", "escape", "check")


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
        """BuildKit's Node.Dump for one instruction, without the parentheses.

        An ONBUILD argument prints as its trigger's dump in parentheses; built
        from the innermost trigger outwards so deep ONBUILD chains need no recursion."""
        chain = [self]
        while chain[-1].sub is not None:
            chain.append(chain[-1].sub)  # type: ignore[arg-type]
        text = ""
        for node in reversed(chain):
            parts = [go_lower(node.value)]
            if node.flags:
                parts.append(" [" + " ".join(go_quote(f) for f in node.flags) + "]")
            if node.sub is not None:
                parts.append(" (" + text + ")")  # the child's ")\n" loses its newline to TrimSpace
            parts.extend(" " + go_quote(arg) for arg in node.args)
            text = go_trim_space("".join(parts))
        return text


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


_Error = LineError  # a message without a location; parse() adds the line


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
        return DockerfileError(printable(msg), line or None, printable(filename))

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
                docs = heredocs_from_line(line)
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
    if node.sub is not None:  # ONBUILD: its trigger's (one level, as BuildKit)
        node = node.sub
    row = keywords.KEYWORDS.get(node.keyword)
    return row is not None and row.heredocs is not keywords.Heredocs.NONE and not node.json


# --- splitting a logical line: see lines.py ----------------------------------------


def _node_from_line(line: str, d: _Directives) -> Node:
    """One logical line -> Node; ONBUILD's argument is a whole line, parsed again."""
    root: Node | None = None
    parent: Node | None = None
    while True:
        cmd, flags, rest = split_command(line, d.escape)
        node = Node(value=cmd, flags=flags, original=line)
        if parent is None:
            root = node
        else:
            parent.sub = node
        row = keywords.KEYWORDS.get(go_lower(cmd))
        if row is None or row.split is not None:
            node.args, node.json = (parse_ignore if row is None else row.split)(rest, d.escape)
            break
        if not rest:
            break
        parent, line = node, rest
    assert root is not None
    return root
