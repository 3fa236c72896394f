"""Go text/template lexer: template text → tokens (text, actions' words).

It follows text/template/parse/lex.go for the part of the language pybuild
evaluates: `{{`/`}}` with the `{{- ` / ` -}}` trim markers, comments
(`{{/* … */}}`), fields (`.A.B`), variables (`$x`), identifiers, string, raw
string, character and number literals, `(`, `)`, `|`, `:=`, `=` and `,`.
Every token carries its line and column (1-based) so that errors name the
place, as Go's do.
"""

from __future__ import annotations

from dataclasses import dataclass

from pybuild.gotemplate.errors import TemplateError

LEFT, RIGHT = "{{", "}}"
_SPACE = " \t\r\n"
_SPACE_CHARS = (" ", "\t", "\r", "\n")
KEYWORDS = frozenset({"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
                      "nil", "true", "false"})


@dataclass(frozen=True, slots=True)
class Token:
    kind: str     # text left right field variable ident keyword string char number dot pipe
    #               lparen rparen declare assign comma eof
    value: str
    line: int
    col: int
    pos: int      # offset in the text: `$x.A` and `(…).A` chain only when adjacent

    @property
    def end(self) -> int:
        return self.pos + len(self.value)


class _Lexer:
    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.pos = 0
        self.tokens: list[Token] = []

    def where(self, pos: int) -> tuple[int, int]:
        line = self.text.count("\n", 0, pos) + 1
        return line, pos - (self.text.rfind("\n", 0, pos) + 1) + 1

    def error(self, pos: int, message: str) -> TemplateError:
        line, col = self.where(pos)
        return TemplateError(f"template: {self.name}:{line}:{col}: {message}")

    def emit(self, kind: str, value: str, pos: int) -> None:
        self.tokens.append(Token(kind, value, *self.where(pos), pos))

    def run(self) -> list[Token]:
        text = self.text
        trim_next = False
        while self.pos < len(text):
            start = text.find(LEFT, self.pos)
            end = len(text) if start < 0 else start
            chunk = text[self.pos:end]
            if trim_next:
                chunk = chunk.lstrip(_SPACE)
            trim_left = start >= 0 and text[start + 2:start + 3] == "-" and text[start + 3:start + 4] in _SPACE_CHARS
            if trim_left:
                chunk = chunk.rstrip(_SPACE)
            if chunk:
                self.emit("text", chunk, self.pos)
            if start < 0:
                self.pos = len(text)
                break
            self.pos = start + 2 + (2 if trim_left else 0)
            trim_next = self.action(start)
        self.emit("eof", "", self.pos)
        return self.tokens

    def _at_right(self, pos: int) -> tuple[bool, int]:
        """Is a (possibly trimming) right delimiter at pos? → (trims, length)."""
        text = self.text
        if text.startswith(RIGHT, pos):
            return False, 2
        if text[pos:pos + 1] in _SPACE_CHARS and text.startswith("-" + RIGHT, pos + 1):
            return True, 4
        return False, 0

    def action(self, start: int) -> bool:
        """Lex one action after its left delimiter; returns whether it trims what follows."""
        text = self.text
        # a comment: {{/* … */}} with only trim markers around it
        if text.startswith("/*", self.pos):
            close = text.find("*/", self.pos + 2)
            if close < 0:
                raise self.error(self.pos, "unclosed comment")
            after = close + 2
            trims, n = self._at_right(after)
            if not n:
                raise self.error(after, "comment ends before closing delimiter")
            self.pos = after + n
            return trims
        self.emit("left", LEFT, start)
        depth = 0
        while True:
            if self.pos >= len(text):
                raise self.error(start, "unclosed action")
            trims, n = self._at_right(self.pos)
            if n:
                if depth:
                    raise self.error(self.pos, "unclosed left paren")
                self.emit("right", RIGHT, self.pos)
                self.pos += n
                return trims
            ch = text[self.pos]
            if ch in _SPACE:  # newlines too: Go allows them inside actions
                self.pos += 1
                continue
            begin = self.pos
            if ch == "(":
                depth += 1
                self.emit("lparen", ch, begin)
                self.pos += 1
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    raise self.error(begin, "unexpected right paren")
                self.emit("rparen", ch, begin)
                self.pos += 1
            elif ch == "|":
                self.emit("pipe", ch, begin)
                self.pos += 1
            elif ch == ",":
                self.emit("comma", ch, begin)
                self.pos += 1
            elif text.startswith(":=", begin):
                self.emit("declare", ":=", begin)
                self.pos += 2
            elif ch == "=":
                self.emit("assign", "=", begin)
                self.pos += 1
            elif ch == '"':
                self.emit("string", self._quoted(begin, '"'), begin)
            elif ch == "`":
                close = text.find("`", begin + 1)
                if close < 0:
                    raise self.error(begin, "unterminated raw quoted string")
                self.pos = close + 1
                self.emit("string", text[begin:self.pos], begin)
            elif ch == "'":
                self.emit("char", self._quoted(begin, "'"), begin)
            elif ch == "$":
                self.pos += 1
                self._word()
                self.emit("variable", text[begin:self.pos], begin)
            elif ch == ".":
                if self.pos + 1 < len(text) and text[self.pos + 1].isdigit():
                    self._number(begin)
                else:
                    self.pos += 1
                    if self._word():
                        self.emit("field", text[begin:self.pos], begin)
                    else:
                        self.emit("dot", ".", begin)
            elif ch.isdigit() or (ch in "+-" and self.pos + 1 < len(text) and (text[self.pos + 1].isdigit() or
                                                                             text[self.pos + 1] == ".")):
                self._number(begin)
            elif ch.isalpha() or ch == "_":
                self._word()
                word = text[begin:self.pos]
                self.emit("keyword" if word in KEYWORDS else "ident", word, begin)
            else:
                raise self.error(begin, f"bad character {ch!r} in action")

    def _word(self) -> bool:
        start = self.pos
        text = self.text
        while self.pos < len(text) and (text[self.pos].isalnum() or text[self.pos] == "_"):
            self.pos += 1
        return self.pos > start

    def _quoted(self, begin: int, quote: str) -> str:
        text = self.text
        i = begin + 1
        while True:
            if i >= len(text) or text[i] == "\n":
                raise self.error(begin, "unterminated quoted string" if quote == '"' else "unterminated character constant")
            if text[i] == "\\":
                i += 2
                continue
            if text[i] == quote:
                self.pos = i + 1
                return text[begin:self.pos]
            i += 1

    def _number(self, begin: int) -> None:
        """Go's number syntax: sign, 0x/0o/0b prefixes, `_` separators,
        fraction, exponent (p for hex), imaginary suffix (refused later)."""
        text, n = self.text, len(self.text)
        i = begin + (text[begin] in "+-")
        digits, exponent = "0123456789_", "eE"
        prefix = text[i:i + 2].lower()
        if prefix == "0x":
            i, digits, exponent = i + 2, "0123456789abcdefABCDEF_", "pP"
        elif prefix in ("0o", "0b"):
            i, digits = i + 2, ("01234567_" if prefix == "0o" else "01_")
        while i < n and text[i] in digits:
            i += 1
        if i < n and text[i] == ".":
            i += 1
            while i < n and text[i] in digits:
                i += 1
        if i < n and text[i] in exponent:
            i += 1
            if i < n and text[i] in "+-":
                i += 1
            while i < n and text[i] in "0123456789_":
                i += 1
        if i < n and text[i] == "i":
            i += 1
        if i < n and (text[i].isalnum() or text[i] == "_"):
            raise self.error(begin, f"bad number syntax: {text[begin:i + 1]!r}")
        self.pos = i
        self.emit("number", text[begin:i], begin)


def lex(text: str, name: str = "") -> list[Token]:
    return _Lexer(text, name).run()
