"""Go text/template parser: tokens → a tree of nodes (text/template/parse/parse.go).

The language kept: text, actions with pipelines (`a | b c`), fields and field
chains (`.A.B`, `$x.A`, `(pipeline).A`), variables (`$`, `$x := …`, `$x = …`,
`range $i, $e := …`), function calls, literals, parenthesized pipelines,
`if`/`else if`/`else`, `with`/`else with`/`else`, `range`/`else`, `break`,
`continue`, comments and trim markers. `define`, `template` and `block` (named
templates) and functions pybuild does not provide are parse errors that say so:
an unsupported template is refused, never evaluated to a wrong answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pybuild.gotemplate.errors import TemplateError
from pybuild.gotemplate.lexer import Token, lex


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Field:
    names: tuple[str, ...]
    tok: Token


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    names: tuple[str, ...]
    tok: Token


@dataclass(frozen=True, slots=True)
class Dot:
    tok: Token


@dataclass(frozen=True, slots=True)
class Const:
    """nil, true/false, a number or a string literal."""
    value: object
    tok: Token


@dataclass(frozen=True, slots=True)
class Ident:
    """A function name."""
    name: str
    tok: Token


@dataclass(frozen=True, slots=True)
class Chain:
    node: object
    names: tuple[str, ...]
    tok: Token


@dataclass(frozen=True, slots=True)
class Command:
    args: tuple[object, ...]
    tok: Token


@dataclass(frozen=True, slots=True)
class Pipe:
    decl: tuple[str, ...]
    assign: bool
    cmds: tuple[Command, ...]
    tok: Token


@dataclass(frozen=True, slots=True)
class Action:
    pipe: Pipe


@dataclass(frozen=True, slots=True)
class Control:
    kind: str           # if | with | range
    pipe: Pipe
    body: tuple[object, ...]
    orelse: tuple[object, ...] | None
    tok: Token


@dataclass(frozen=True, slots=True)
class Loop:
    kind: str           # break | continue
    tok: Token


NIL = object()  # the nil literal's value before evaluation


@dataclass
class _End:
    tok: Token


@dataclass
class _Else:
    tok: Token
    chained: str | None = None   # "if"/"with" for {{else if …}} / {{else with …}}


@dataclass
class _Parser:
    tokens: list[Token]
    name: str
    functions: frozenset[str]
    unsupported: dict[str, str]
    i: int = 0
    vars: list[str] = field(default_factory=lambda: ["$"])
    range_depth: int = 0

    # ---- tokens
    def peek(self, k: int = 0) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def next(self) -> Token:
        tok = self.peek()
        self.i += 1
        return tok

    def error(self, tok: Token, message: str) -> TemplateError:
        return TemplateError(f"template: {self.name}:{tok.line}:{tok.col}: {message}")

    def expect(self, kind: str, context: str) -> Token:
        tok = self.next()
        if tok.kind != kind:
            shown = tok.value or "end of template"
            raise self.error(tok, f"unexpected {shown!r} in {context}")
        return tok

    # ---- lists and actions
    def parse(self) -> tuple[object, ...]:
        nodes, stop = self.item_list()
        if stop is not None:
            raise self.error(stop.tok, f"unexpected {{{{{'end' if isinstance(stop, _End) else 'else'}}}}}")
        return nodes

    def item_list(self) -> tuple[tuple[object, ...], _End | _Else | None]:
        nodes: list[object] = []
        while True:
            tok = self.next()
            if tok.kind == "eof":
                return tuple(nodes), None
            if tok.kind == "text":
                nodes.append(Text(tok.value))
                continue
            node = self.action(tok)
            if isinstance(node, (_End, _Else)):
                return tuple(nodes), node
            nodes.append(node)

    def action(self, left: Token) -> object:
        tok = self.peek()
        if tok.kind == "keyword" and tok.value not in ("nil", "true", "false"):
            self.next()
            word = tok.value
            if word in ("define", "template", "block"):
                raise self.error(tok, f"{{{{{word}}}}} (named templates) is not supported")
            if word == "end":
                self.expect("right", "end")
                return _End(tok)
            if word == "else":
                nxt = self.peek()
                if nxt.kind == "keyword" and nxt.value in ("if", "with"):
                    return _Else(tok, chained=nxt.value)
                self.expect("right", "else")
                return _Else(tok)
            if word in ("break", "continue"):
                if not self.range_depth:
                    raise self.error(tok, f"{{{{{word}}}}} outside {{{{range}}}}")
                self.expect("right", word)
                return Loop(word, tok)
            return self.control(word, tok)
        pipe = self.pipeline("command", left)
        return Action(pipe)

    def control(self, kind: str, tok: Token) -> Control:
        mark = len(self.vars)
        pipe = self.pipeline(kind, tok)
        if kind == "range":
            self.range_depth += 1
        try:
            body, stop = self.item_list()
        finally:
            if kind == "range":
                self.range_depth -= 1
        orelse: tuple[object, ...] | None = None
        if stop is None:
            raise self.error(tok, f"unexpected end of template in {{{{{kind}}}}}: missing {{{{end}}}}")
        if isinstance(stop, _Else):
            if stop.chained:
                if stop.chained != kind or kind == "range":
                    raise self.error(stop.tok, f"{{{{else {stop.chained}}}}} inside {{{{{kind}}}}}")
                del self.vars[mark:]
                nested_tok = self.next()  # the chained keyword
                orelse = (self.control(kind, nested_tok),)   # shares our {{end}}
            else:
                del self.vars[mark:]
                orelse, stop2 = self.item_list()
                if not isinstance(stop2, _End):
                    where = stop2.tok if stop2 is not None else tok
                    raise self.error(where, f"expected {{{{end}}}} after {{{{else}}}} of {{{{{kind}}}}}")
        del self.vars[mark:]
        return Control(kind, pipe, body, orelse, tok)

    # ---- pipelines
    def pipeline(self, context: str, tok: Token) -> Pipe:
        decl: list[str] = []
        assign = False
        t0, t1 = self.peek(), self.peek(1)
        if t0.kind == "variable":
            if t1.kind in ("declare", "assign"):
                self.i += 2
                if t1.kind == "assign":
                    if t0.value not in self.vars:
                        raise self.error(t0, f"undefined variable \"{t0.value}\"")
                    assign = True
                decl = [t0.value]
            elif t1.kind == "comma" and context == "range" and self.peek(2).kind == "variable" and \
                    self.peek(3).kind in ("declare", "assign"):
                self.i += 4
                decl = [t0.value, self.peek(-2).value]
                assign = self.peek(-1).kind == "assign"
        cmds: list[Command] = []
        end_kind = "rparen" if context == "paren" else "right"
        while True:
            nxt = self.peek()
            if nxt.kind == end_kind:
                self.next()
                break
            if nxt.kind in ("right", "rparen", "eof"):
                raise self.error(nxt, f"unexpected {nxt.value or 'end of template'!r} in {context}")
            cmds.append(self.command(context))
            if self.peek().kind == "pipe":
                self.next()
                if self.peek().kind in ("right", "rparen"):
                    raise self.error(self.peek(), "missing command after |")
        if not cmds:
            raise self.error(tok, f"missing value for {context}")
        for n, cmd in enumerate(cmds[1:], 2):
            if isinstance(cmd.args[0], (Const, Dot)):
                raise self.error(cmd.tok, f"non executable command in pipeline stage {n}")
        if decl and not assign:
            self.vars.extend(decl)
        elif decl and assign:
            for name in decl:
                if name not in self.vars:
                    raise self.error(tok, f"undefined variable \"{name}\"")
        return Pipe(tuple(decl), assign, tuple(cmds), tok)

    def command(self, context: str) -> Command:
        start = self.peek()
        args: list[object] = []
        while self.peek().kind not in ("pipe", "right", "rparen", "eof"):
            args.append(self.operand())
        if not args:
            raise self.error(start, f"empty command in {context}")
        return Command(tuple(args), start)

    def operand(self) -> object:
        node = self.term()
        names: list[str] = []
        last = self.peek(-1)
        while self.peek().kind == "field" and self.peek().pos == last.end:
            last = self.next()
            names.append(last.value[1:])
        if not names:
            return node
        if isinstance(node, Field):
            return Field(node.names + tuple(names), node.tok)
        if isinstance(node, Variable):
            return Variable(node.name, node.names + tuple(names), node.tok)
        if isinstance(node, Const) or isinstance(node, Dot):
            raise self.error(node.tok, f"unexpected . after term {node.tok.value!r}")
        return Chain(node, tuple(names), node.tok)

    def term(self) -> object:
        tok = self.next()
        kind = tok.kind
        if kind == "ident":
            if tok.value in self.unsupported:
                raise self.error(tok, f"function \"{tok.value}\" is not supported ({self.unsupported[tok.value]})")
            if tok.value not in self.functions:
                raise self.error(tok, f"function \"{tok.value}\" not defined")
            return Ident(tok.value, tok)
        if kind == "keyword" and tok.value in ("nil", "true", "false"):
            return Const(NIL if tok.value == "nil" else tok.value == "true", tok)
        if kind == "dot":
            return Dot(tok)
        if kind == "field":
            return Field((tok.value[1:],), tok)
        if kind == "variable":
            if tok.value not in self.vars:
                raise self.error(tok, f"undefined variable \"{tok.value}\"")
            return Variable(tok.value, (), tok)
        if kind == "number":
            return Const(self.number(tok), tok)
        if kind == "string":
            return Const(self.unquote(tok), tok)
        if kind == "char":
            text = self.unquote(tok)
            if len(text) != 1:
                raise self.error(tok, f"malformed character constant: {tok.value}")
            return Const(ord(text), tok)
        if kind == "lparen":
            return self.pipeline("paren", tok)
        raise self.error(tok, f"unexpected {tok.value or 'end of template'!r} in operand")

    def number(self, tok: Token) -> int | float:
        """Go's constants: integers (0x, 0o, 0b, a leading 0 is octal), floats, hex floats."""
        text = tok.value.replace("_", "")
        if text.endswith("i"):
            raise self.error(tok, f"complex numbers are not supported: {tok.value}")
        sign = "-" if text.startswith("-") else ""
        body = text.lstrip("+-").lower()
        try:
            if body.startswith("0x") and ("." in body or "p" in body):
                return float.fromhex(sign + body)
            if body.startswith(("0x", "0o", "0b")):
                return int(sign + body, 0)
            if "." in body or "e" in body:
                return float(sign + body)
            if len(body) > 1 and body.startswith("0"):
                return int(sign + "0o" + body[1:], 0)
            return int(sign + body)
        except ValueError:
            raise self.error(tok, f"bad number syntax: {tok.value}") from None

    def unquote(self, tok: Token) -> str:
        text = tok.value
        if text.startswith("`"):
            return text[1:-1]
        body = text[1:-1]
        out: list[str] = []
        i = 0
        simple = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b",
                  "f": "\f", "v": "\v"}
        while i < len(body):
            ch = body[i]
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            esc = body[i + 1:i + 2]
            if esc in simple:
                out.append(simple[esc])
                i += 2
            elif esc in ("x", "u", "U"):
                width = {"x": 2, "u": 4, "U": 8}[esc]
                digits = body[i + 2:i + 2 + width]
                if len(digits) != width or any(c not in "0123456789abcdefABCDEF" for c in digits):
                    raise self.error(tok, f"invalid escape in {text}")
                out.append(chr(int(digits, 16)))
                i += 2 + width
            elif esc and esc in "01234567":
                digits = body[i + 1:i + 4]
                if len(digits) != 3 or any(c not in "01234567" for c in digits):
                    raise self.error(tok, f"invalid escape in {text}")
                out.append(chr(int(digits, 8)))
                i += 4
            else:
                raise self.error(tok, f"invalid escape in {text}")
        return "".join(out)


def parse(text: str, name: str, functions: frozenset[str], unsupported: dict[str, str]) -> tuple[object, ...]:
    """The template's top-level node list; TemplateError names the line and column of a problem."""
    return _Parser(lex(text, name), name, functions, unsupported).parse()
