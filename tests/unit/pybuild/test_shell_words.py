"""shell_words against BuildKit's own envVarTest/wordsTest data and hand cases."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybuild.gostr import go_quote
from pybuild.dockerfile.shell_words import (
    ExpansionError,
    ShellLex,
    default_args,
    meta_arg_env,
    proxy_env,
    stage_arg_value,
)

SHELL_DIR = Path(__file__).parent / "corpus" / "buildkit" / "shell"
ENV_VAR_ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


def _env_var_cases() -> list[tuple[int, str, str]]:
    cases = []
    for num, line in enumerate(SHELL_DIR.joinpath("envVarTest").read_text().split("\n"), 1):
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        fields = line.split("|")
        assert len(fields) == 3, f"envVarTest:{num}: bad line"
        platform, source, expected = (f.strip() for f in fields)
        if platform == "W":
            continue  # Windows-only (case-insensitive names); pybuild builds Linux images
        cases.append((num, source, expected))
    return cases


ENV_VAR_CASES = _env_var_cases()


def test_env_var_corpus_size() -> None:
    assert len(ENV_VAR_CASES) == 228  # 226 A + 2 U


@pytest.mark.parametrize(("num", "source", "expected"), ENV_VAR_CASES, ids=[str(c[0]) for c in ENV_VAR_CASES])
def test_env_var_corpus(num: int, source: str, expected: str) -> None:
    lex = ShellLex("\\")
    if expected == "error":
        with pytest.raises(ExpansionError):
            lex.process_word(source, ENV_VAR_ENV)
    else:
        assert lex.process_word(source, ENV_VAR_ENV) == expected


def _words_cases() -> list[tuple[int, dict[str, str], str, list[str] | None]]:
    env: dict[str, str] = {}
    cases = []
    for num, line in enumerate(SHELL_DIR.joinpath("wordsTest").read_text().split("\n"), 1):
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith("ENV "):
            key, _, value = line[3:].lstrip().partition("=")
            env[key] = value
            continue
        fields = line.split("|")
        assert len(fields) == 2, f"wordsTest:{num}: bad line"
        source, expected = fields[0].strip(), fields[1].lstrip()
        cases.append((num, dict(env), source, None if expected == "error" else expected.split(",")))
    return cases


WORDS_CASES = _words_cases()


def test_words_corpus_size() -> None:
    assert len(WORDS_CASES) == 24


@pytest.mark.parametrize(("num", "env", "source", "expected"), WORDS_CASES, ids=[str(c[0]) for c in WORDS_CASES])
def test_words_corpus(num: int, env: dict[str, str], source: str, expected: list[str] | None) -> None:
    lex = ShellLex("\\")
    if expected is None:
        with pytest.raises(ExpansionError):
            lex.process_words(source, env)
    else:
        assert lex.process_words(source, env) == expected


# Expected values checked against BuildKit's own lexer.
PATTERN_CASES = [
    ("${FOO#*.}", {"FOO": "a.b.c"}, "b.c"),
    ("${FOO##*.}", {"FOO": "a.b.c"}, "c"),
    ("${FOO%.*}", {"FOO": "a.b.c"}, "a.b"),
    ("${FOO%%.*}", {"FOO": "a.b.c"}, "a"),
    ("${FOO#?}", {"FOO": "abc"}, "bc"),
    ("${FOO%?}", {"FOO": "abc"}, "ab"),
    ("${FOO#x}", {"FOO": "abc"}, "abc"),
    ("${FOO#a\\*}", {"FOO": "a*bc"}, "bc"),
    ("${FOO%\\*c}", {"FOO": "ab*c"}, "ab"),
    ("${FOO/b/x}", {"FOO": "abab"}, "axab"),
    ("${FOO//b/x}", {"FOO": "abab"}, "axax"),
    ("${FOO//*/x}", {"FOO": "abab"}, "x"),
    ("${FOO/?/x}", {"FOO": "abab"}, "xbab"),
    ("${FOO//\\//-}", {"FOO": "a/b/c"}, "a-b-c"),
    ("${FOO/a/\\}}", {"FOO": "ab"}, "\\}b"),  # the replacement keeps raw escapes
    ("${FOO//b/$$}", {"FOO": "abab"}, "aa"),  # $$ is the (unset) special parameter
    ("${FOO//b/\\$0}", {"FOO": "abab"}, "a\\ba\\b"),  # Go's $0 template: the match
    ("${FOO:-x}", {"FOO": ""}, "x"),
    ("${FOO-x}", {"FOO": ""}, ""),
    ("${FOO:+x}", {"FOO": ""}, ""),
    ("${FOO+x}", {"FOO": ""}, "x"),
    ("${FOO:-${BAR:-y}}", {}, "y"),
]


@pytest.mark.parametrize(("word", "env", "expected"), PATTERN_CASES)
def test_pattern_operators(word: str, env: dict[str, str], expected: str) -> None:
    assert ShellLex("\\").process_word(word, env) == expected


@pytest.mark.parametrize("word", ["${FOO?}", "${FOO:?}", "${FOO?oops}", "${FOO:#a}", "${FOO:%a}", "${FOO=a}",
                                  "${FOO:=a}", "${}", "${:a}", "${FOO", "${FOO/a", "'abc", '"abc', "${FOO#\\a}"])
def test_expansion_errors(word: str) -> None:
    with pytest.raises(ExpansionError, match="failed to process"):
        ShellLex("\\").process_word(word, {"BAR": ""})


def test_question_mark_message() -> None:
    with pytest.raises(ExpansionError, match="FOO: is not allowed to be empty"):
        ShellLex("\\").process_word("${FOO:?}", {"FOO": ""})
    with pytest.raises(ExpansionError, match="FOO: custom"):
        ShellLex("\\").process_word("${FOO?custom}", {})


def test_backtick_escape() -> None:
    lex = ShellLex("`")
    assert lex.process_word("a`$b\\c", {"b": "x"}) == "a$b\\c"
    assert lex.process_words('"q`"x" y', {}) == ['q"x', "y"]


def test_buildkit_words_buffer_quirk() -> None:
    # BuildKit resets the word under construction when a ${x:-...} is processed.
    assert ShellLex("\\").process_words("a${b:-c}", {}) == ["c"]
    assert ShellLex("\\").process_word("a${b:-c}", {}) == "ac"


def test_matches_are_reported() -> None:
    res = ShellLex("\\").process_word_with_matches("$A ${B:-x} $C", {"A": "1", "C": "3"})
    assert res.result == "1 x 3"
    assert res.matched == {"A", "C"} and res.unmatched == {"B"}


def test_raw_modes_keep_text() -> None:
    lex = ShellLex("\\", raw_quotes=True, raw_escapes=True, skip_unset_env=True)
    assert lex.process_words("RUN 'a b' \\\"c ${X:-y} $Z <<EOF", {}) == ["RUN", "'a b'", '\\"c', "${X:-y}", "$Z",
                                                                         "<<EOF"]


def test_invalid_utf8_reads_as_replacement_char() -> None:
    word = b"a\xffb".decode("utf-8", "surrogateescape")
    assert ShellLex("\\").process_word(word, {}) == "a\ufffdb"
    assert ShellLex("\\").process_word("\ufeffabc", {}) == "abc"


def test_go_quote() -> None:
    assert go_quote('a"\\\n\x00\x7f♥\u00a0') == '"a\\"\\\\\\n\\x00\\x7f♥\\u00a0"'
    assert go_quote(b"\xff".decode("utf-8", "surrogateescape")) == '"\\xff"'


def test_default_args_and_proxies() -> None:
    args = default_args("linux/arm64/v8", "linux/amd64", target="final")
    assert args["TARGETPLATFORM"] == "linux/arm64/v8" and args["TARGETVARIANT"] == "v8"
    assert args["BUILDARCH"] == "amd64" and args["TARGETSTAGE"] == "final"
    assert default_args("linux/amd64", "linux/amd64")["TARGETSTAGE"] == "default"
    assert proxy_env({"http_proxy": "p", "FOO": "x", "NO_PROXY": "n"}) == {"http_proxy": "p", "NO_PROXY": "n"}


def test_meta_args_and_stage_scope() -> None:
    lex = ShellLex("\\")
    base = {"TARGETOS": "linux"}
    env = meta_arg_env([("A", "x${TARGETOS}"), ("B", None), ("C", "$A-c")], {"B": "cli"}, lex, base)
    assert env == {"TARGETOS": "linux", "A": "xlinux", "B": "cli", "C": "xlinux-c"}
    # ARG redeclared in a stage without default takes the global value
    assert stage_arg_value("A", None, {}, env, {}, lex) == "xlinux"
    # build arg wins over default; default is expanded with the stage env
    assert stage_arg_value("D", "$E", {"D": "cli"}, env, {"E": "e"}, lex) == "cli"
    assert stage_arg_value("D", "$E", {}, env, {"E": "e"}, lex) == "e"
    assert stage_arg_value("Z", None, {}, env, {}, lex) is None


@pytest.mark.parametrize(("word", "env", "expected"), [
    ("${A#$B}", {"A": "ab", "B": "a\\"}, "error"),  # a pattern may not end in a lone backslash
    ("${A%$B}", {"A": "ab", "B": "\\*"}, "ab"),
    ("${A/$B/x}", {"A": "ab", "B": "\\q"}, "error"),
])
def test_patterns_from_variables(word: str, env: dict[str, str], expected: str) -> None:
    lex = ShellLex("\\")
    if expected == "error":
        with pytest.raises(ExpansionError, match="invalid pattern"):
            lex.process_word(word, env)
    else:
        assert lex.process_word(word, env) == expected


def test_empty_quotes_make_no_word() -> None:
    assert ShellLex("\\").process_words('""', {}) == []
    assert ShellLex("\\").process_words("a '' b", {}) == ["a", "b"]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="${}:-+?#%/*\\`'\" \tab0@<", max_size=16), st.sampled_from(["\\", "`"]),
       st.booleans(), st.booleans())
def test_fuzz_lexer_only_raises_expansion_error(word: str, escape: str, words: bool, raw: bool) -> None:
    lex = ShellLex(escape, raw_quotes=raw, raw_escapes=raw, skip_unset_env=raw)
    env = {"a": "x y", "b": ""}
    try:
        out = lex.process_words(word, env) if words else lex.process_word(word, env)
    except ExpansionError as err:
        str(err).encode("utf-8")
        return
    assert isinstance(out, list if words else str)
