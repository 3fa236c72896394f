"""Shell-word expansion and splitting, exactly as BuildKit's `shell.Lex` does it.

The builder expands instruction arguments with this lexer, and the Dockerfile
parser uses it to find heredoc markers. It is a faithful re-implementation of
the lexer's observable behaviour (including its quirks), not a POSIX shell:

* `$name`, `${name}`, `${name:-w}`, `${name-w}`, `${name:+w}`, `${name+w}`,
  `${name:?msg}`, `${name?msg}`, `${name#p}`, `${name##p}`, `${name%p}`,
  `${name%%p}`, `${name/p/r}`, `${name//p/r}`; positional (`$1`) and special
  (`$@ $* $# $? $- $$ $! $0`) parameters are looked up like any name (and
  are normally unset). `${x=w}`, `${x:=w}`, `${}`, `${:x}`, `${x:#p}` are errors.
* Quotes: `'...'` is literal; in `"..."` the escape token escapes only `"`,
  `$` and itself. Outside quotes the escape token escapes any character and a
  trailing one is dropped. The escape token is `\\` or the backtick.
* Word splitting (`process_words`) splits only text that came from outside
  quotes; text from `$var` outside quotes is split on whitespace.
* Known BuildKit quirk kept on purpose: a `${...}` with a modifier resets the
  word being built, so `process_words("a${b:-c}")` is `["c"]` in BuildKit and here.
* Go's text/scanner is the reader: invalid UTF-8 (surrogate escapes in our
  strings) reads as U+FFFD, and a leading U+FEFF is skipped.

API:
    lex = ShellLex("\\\\")                 # escape token from the parse Result
    lex.process_word("${A:-x}/y", {"A": "1"})   -> "1/y"
    lex.process_words("$A b", env)          -> ["1", "b"]
    lex.process_word_with_matches(w, env)   -> WordResult(result, matched, unmatched)
All errors raise ExpansionError (a PybuildError); the builder adds the line.

The ARG/ENV scoping rules the builder follows are written down, with their
helpers, at the end of this module: `default_args` (TARGETPLATFORM & co.),
`meta_arg_env` (ARGs before the first FROM), `stage_arg_value` (an ARG inside a
stage) and `proxy_env` (predefined proxy ARGs); which parts of which instruction
get expanded is each step's `prepare` (pybuild/steps/), as BuildKit's Expand methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pybuild.errors import PybuildError
from pybuild.gostr import GO_SPACES, go_quote, scanner_text
from pybuild.dockerfile.shell_patterns import PatternError, go_replace_all, shell_pattern_regex, trim_prefix, trim_suffix

EOF = ""  # the scanner's end marker (never a real character)

_SPECIAL_PARAMS = frozenset("@*#?-$!0")  # POSIX special parameters: $@ $* $# ...


class ExpansionError(PybuildError):
    """A word could not be expanded (bad substitution, unterminated quote, ${x?})."""


@dataclass(frozen=True, slots=True)
class WordResult:
    result: str
    words: list[str]
    matched: frozenset[str]
    unmatched: frozenset[str]


class _Words:
    """BuildKit's wordsStruct. `buf` is shared by every nested call on purpose."""

    __slots__ = ("buf", "words", "in_word")

    def __init__(self, buf: list[str]) -> None:
        self.buf = buf
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch in GO_SPACES:
            if self.in_word and self.buf:
                self.words.append("".join(self.buf))
                self.buf.clear()
                self.in_word = False
        else:
            self.buf.append(ch)
            self.in_word = True

    def add_raw(self, s: str) -> None:
        if s:  # an empty piece must not make the buffer look non-empty
            self.buf.append(s)
        self.in_word = True

    def add_string(self, s: str) -> None:
        for ch in s:
            self.add_char(ch)

    def get_words(self) -> list[str]:
        if self.buf:
            self.words.append("".join(self.buf))
            self.buf.clear()
            self.in_word = False
        return self.words


@dataclass
class ShellLex:
    """BuildKit's shell.Lex. `escape` is the Dockerfile's escape token."""

    escape: str = "\\"
    raw_quotes: bool = False
    raw_escapes: bool = False
    skip_process_quotes: bool = False
    skip_unset_env: bool = False

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """Expand one word; spaces between words are kept (ProcessWord)."""
        return self._run(word, env).result

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Expand, then split into words on unquoted whitespace (ProcessWords)."""
        return self._run(word, env).words

    def process_word_with_matches(self, word: str, env: Mapping[str, str]) -> WordResult:
        """process_word plus the names that were found / not found in env."""
        return self._run(word, env)

    def _run(self, word: str, env: Mapping[str, str]) -> WordResult:
        sw = _ShellWord(self, scanner_text(word), env)
        try:
            result, words = sw.process_stop_on(EOF, self.raw_escapes)
        except ExpansionError as err:
            raise ExpansionError(f"failed to process {go_quote(word)}: {err}") from None
        return WordResult(result, words, frozenset(sw.matches), frozenset(sw.nonmatches))


@dataclass
class _ShellWord:
    lex: ShellLex
    src: str
    env: Mapping[str, str]
    pos: int = 0
    raw_escapes: bool = False
    wbuf: list[str] = field(default_factory=list)
    matches: set[str] = field(default_factory=set)
    nonmatches: set[str] = field(default_factory=set)

    def peek(self) -> str:
        return self.src[self.pos] if self.pos < len(self.src) else EOF

    def next(self) -> str:
        if self.pos < len(self.src):
            self.pos += 1
            return self.src[self.pos - 1]
        return EOF

    def get_env(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            self.matches.add(name)
            return self.env[name], True
        self.nonmatches.add(name)
        return "", False

    def process_stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        result: list[str] = []
        self.wbuf.clear()
        words = _Words(self.wbuf)
        quotes = not self.lex.skip_process_quotes
        esc = self.lex.escape
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            while (ch := self.peek()) != EOF:
                if stop != EOF and ch == stop:
                    self.next()
                    return "".join(result), words.get_words()
                if ch == "$":
                    tmp = self.process_dollar()
                    result.append(tmp)
                    words.add_string(tmp)
                elif ch == "<" or (quotes and ch in "'\""):
                    tmp = (self.process_heredoc_marker() if ch == "<" else
                           self.process_single_quote() if ch == "'" else self.process_double_quote())
                    result.append(tmp)
                    words.add_raw(tmp)
                else:
                    ch = self.next()
                    if ch == esc:
                        if self.raw_escapes:
                            words.add_raw(ch)
                            result.append(ch)
                        ch = self.next()
                        if ch == EOF:
                            break
                        words.add_raw(ch)
                    else:
                        words.add_char(ch)
                    result.append(ch)
            if stop != EOF:
                raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
            return "".join(result), words.get_words()
        finally:
            self.raw_escapes = saved

    def process_single_quote(self) -> str:
        raw = self.lex.raw_quotes
        opening = self.next()
        out = [opening] if raw else []
        while True:
            ch = self.next()
            if ch == EOF:
                raise ExpansionError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                if raw:
                    out.append(ch)
                return "".join(out)
            out.append(ch)

    def process_double_quote(self) -> str:
        raw = self.lex.raw_quotes
        esc = self.lex.escape
        opening = self.next()
        out = [opening] if raw else []
        while True:
            p = self.peek()
            if p == EOF:
                raise ExpansionError("unexpected end of statement while looking for matching double-quote")
            if p == '"':
                ch = self.next()
                if raw:
                    out.append(ch)
                return "".join(out)
            if p == "$":
                out.append(self.process_dollar())
                continue
            ch = self.next()
            if ch == esc:
                if self.raw_escapes:
                    out.append(ch)
                q = self.peek()
                if q == EOF:
                    continue
                if q in ('"', "$", esc):
                    ch = self.next()
            out.append(ch)

    def process_name(self) -> str:
        name: list[str] = []
        while (ch := self.peek()) != EOF:
            if not name and ch.isdecimal():
                while (d := self.peek()) != EOF and d.isdecimal():
                    name.append(self.next())
                return "".join(name)
            if not name and ch in _SPECIAL_PARAMS:
                return self.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            name.append(self.next())
        return "".join(name)

    def process_heredoc_marker(self) -> str:
        self.next()
        if self.peek() != "<":
            return "<"
        self.next()
        space = []
        while (ch := self.peek()) != EOF and ch in "\t\r ":
            space.append(self.next())
        return "<<" + "".join(space)

    def process_dollar(self) -> str:
        self.next()
        skip_unset = self.lex.skip_unset_env
        if self.peek() != "{":
            name = self.process_name()
            if not name:
                return "$"
            value, found = self.get_env(name)
            return "$" + name if not found and skip_unset else value
        self.next()
        p = self.peek()
        if p == EOF:
            raise ExpansionError("syntax error: missing '}'")
        if p in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.process_name()
        ch = self.next()
        chs = ch or "\ufffd"  # Go's string(EOF)
        if ch == "}":
            value, found = self.get_env(name)
            return "${%s}" % name if not found and skip_unset else value
        if ch == ":" or (ch and ch in "+-?#%"):
            return self._modifier(name, ch, chs)
        if ch == "/":
            return self._replace(name)
        raise ExpansionError(f"unsupported modifier ({chs}) in substitution")

    def _modifier(self, name: str, ch: str, chs: str) -> str:
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            chs += ch or "\ufffd"
        raw = ch in ("#", "%") and ch != EOF
        if null_is_unset and raw:
            raise ExpansionError(f"unsupported modifier ({chs}) in substitution")
        word = self._until("}", raw, "syntax error: missing '}'")
        value, found = self.get_env(name)
        if self.lex.skip_unset_env and not found:
            return "${%s%s%s}" % (name, chs, word)
        empty = null_is_unset and value == ""
        if ch == "-":
            return word if not found or empty else value
        if ch == "+":
            return "" if not found or empty else word
        if ch == "?":
            if not found:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            if empty:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if ch in ("%", "#"):
            greedy = word.startswith(ch)
            if greedy:
                word = word[1:]
            try:
                if ch == "%":
                    return trim_suffix(word, value, greedy)
                return trim_prefix(word, value, greedy)
            except PatternError as err:
                raise ExpansionError(str(err)) from None
        raise ExpansionError(f"unsupported modifier ({chs}) in substitution")

    def _until(self, stop: str, raw: bool, missing: str) -> str:
        """process_stop_on, with BuildKit's message when the input ends first."""
        try:
            word, _ = self.process_stop_on(stop, raw)
        except ExpansionError:
            if self.peek() == EOF:
                raise ExpansionError(missing) from None
            raise
        return word

    def _replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        pattern = self._until("/", True, "syntax error: missing '/' in ${}")
        replacement = self._until("}", True, "syntax error: missing '}'")
        value, found = self.get_env(name)
        if self.lex.skip_unset_env and not found:
            return "${%s/%s/%s}" % (name, pattern, replacement)
        try:
            rx = shell_pattern_regex(pattern, greedy=True, anchored=False)
        except PatternError as err:
            raise ExpansionError(str(err)) from None
        if replace_all:
            return go_replace_all(rx, value, replacement)
        m = rx.search(value)
        if m:
            value = value[: m.start()] + replacement + value[m.end():]
        return value


# ---------------------------------------------------------------------------
# ARG / ENV scoping, as BuildKit's dockerfile2llb applies it.
#
# * Global (meta) ARGs are the ARGs before the first FROM. They, the platform
#   ARGs below and build args are the only names FROM lines (image and
#   --platform) can expand. Inside a stage they are invisible until redeclared
#   by name (`ARG NAME` without a default takes the global value).
# * An ARG in a stage is in scope from its line to the stage end; its value is
#   the build arg if given, else its default expanded with the stage env so far,
#   else (no default) the global value, else it is declared but unset.
# * ARG and ENV values share one stage env (BuildKit's llb state env), which
#   expands later instructions and is what RUN sees: the later of the two
#   instructions wins, so `ARG V` then `ENV V=x` gives x (the documented "ENV
#   overrides ARG"). Only ENV values are written to the image config.
# * A stage built FROM another stage inherits that stage's env, ARGs included.
# * Proxy build args (HTTP_PROXY, ... any case) reach RUN without being
#   declared and are kept out of the image and its history.
# ---------------------------------------------------------------------------

PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")


def _platform_parts(platform: str) -> tuple[str, str, str]:
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ExpansionError(f"invalid platform {platform!r}: want os/arch[/variant]")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else ""


def host_platform() -> str:
    """The platform this machine runs, in BuildKit's os/arch[/variant] spelling."""
    import platform as _platform

    machine = _platform.machine()
    return {"x86_64": "linux/amd64", "aarch64": "linux/arm64", "armv7l": "linux/arm/v7",
            "ppc64le": "linux/ppc64le", "s390x": "linux/s390x", "riscv64": "linux/riscv64",
            "i686": "linux/386"}.get(machine, f"linux/{machine}")


def default_args(target_platform: str | None = None, build_platform: str | None = None,
                 target: str = "", overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """BuildKit's automatic global ARGs (BUILDPLATFORM, TARGETARCH, ...,
    TARGETSTAGE); a build arg of the same name overrides one."""
    build = build_platform or host_platform()
    tgt = target_platform or build
    bos, barch, bvar = _platform_parts(build)
    tos, tarch, tvar = _platform_parts(tgt)
    args = {
        "BUILDPLATFORM": build, "BUILDOS": bos, "BUILDOSVERSION": "", "BUILDARCH": barch,
        "BUILDVARIANT": bvar, "TARGETPLATFORM": tgt, "TARGETOS": tos, "TARGETOSVERSION": "",
        "TARGETARCH": tarch, "TARGETVARIANT": tvar, "TARGETSTAGE": target or "default",
    }
    for key in args:
        if overrides and key in overrides:
            args[key] = overrides[key]
    return args


def proxy_env(build_args: Mapping[str, str]) -> dict[str, str]:
    """The proxy build args (matched case-insensitively) that RUN steps get."""
    names = {n.lower() for n in PROXY_ARGS}
    return {k: v for k, v in sorted(build_args.items()) if k.lower() in names}


def meta_arg_env(meta_args: list[tuple[str, str | None]], build_args: Mapping[str, str],
                 lex: ShellLex, base: Mapping[str, str]) -> dict[str, str]:
    """The global scope: `base` (default_args) plus each ARG before the first
    FROM, in order. A build arg wins; a default is expanded with the scope so far."""
    env = dict(base)
    for key, default in meta_args:
        if key in build_args:
            env[key] = build_args[key]
        elif default is not None:
            env[key] = lex.process_word(default, env)
    return env


def stage_arg_value(key: str, default: str | None, build_args: Mapping[str, str],
                    global_env: Mapping[str, str], stage_env: Mapping[str, str],
                    lex: ShellLex) -> str | None:
    """The value an `ARG key[=default]` inside a stage takes (None: declared, unset)."""
    if key in build_args:
        return build_args[key]
    if default is not None:
        return lex.process_word(default, stage_env)
    return global_env.get(key)
