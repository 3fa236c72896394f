"""Heredocs (`<<EOF` … `EOF`) as BuildKit's parser reads them: the marker words of a line, and
what `<<-` does to a body. The parser takes the bodies from the lines that follow; which
instructions may have them is a column of the keyword table (`keywords.Heredocs`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pybuild.dockerfile.lines import LineError
from pybuild.dockerfile.shell_words import ExpansionError, ShellLex

_HEREDOC = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")


@dataclass(frozen=True, slots=True)
class Heredoc:
    """A heredoc body. `content` keeps every body line with its own newline;
    chomping (`<<-`) strips leading tabs later, in the instructions layer."""

    name: str
    fd: int = 0
    expand: bool = True
    chomp: bool = False
    content: str = ""


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
        raise LineError(f"internal lexing of heredoc produced inconsistent results: {rest}")
    quotes = words[0].count("'") + words[0].count('"')
    raw_quotes = raw[0].count("'") + raw[0].count('"')
    return Heredoc(name=words[0], fd=fd, expand=quotes == raw_quotes, chomp=m.group(2) == "-")


def must_parse_heredoc(word: str) -> Heredoc | None:
    """parse_heredoc, with a malformed marker meaning "not a heredoc" (MustParseHeredoc)."""
    try:
        return parse_heredoc(word)
    except (LineError, ExpansionError):
        return None


def heredocs_from_line(line: str) -> list[Heredoc]:
    """The heredoc markers of a logical line, in order (their bodies still empty)."""
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
