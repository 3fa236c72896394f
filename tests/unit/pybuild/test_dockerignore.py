"""dockerignore: docker's .dockerignore reading and matching.

Expected values were checked against moby/patternmatcher (ignorefile.ReadAll +
MatchesOrParentMatches) as vendored by BuildKit.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybuild.dockerignore import DockerIgnore, DockerIgnoreError, go_clean, go_filepath_match, ignore_file_for, \
    parse, read_patterns

IGNORE = (b"\xef\xbb\xbf# comment\n/node_modules\n!node_modules/keep\n*.pyc\n**/tmp\ndocs/**\n  ./build/../out  \n"
          b"a?c\n[ab]x\n#not/a/pattern\n \n")


def test_read_patterns() -> None:
    assert read_patterns(IGNORE) == ["node_modules", "!node_modules/keep", "*.pyc", "**/tmp", "docs/**", "out",
                                     "a?c", "[ab]x"]
    assert read_patterns("! /a/../b\r\n/\n./\n") == ["!b", "/", "."]


@pytest.mark.parametrize(("path", "excluded"), [
    ("node_modules", True), ("node_modules/x/y", True), ("node_modules/keep", False),
    ("node_modules/keep/z", False), ("a.pyc", True), ("d/a.pyc", False), ("tmp", True), ("x/y/tmp", True),
    ("x/tmp/f", True), ("docs", False), ("docs/a", True), ("out", True), ("out/f", True), ("abc", True),
    ("a/bc", False), ("ax", True), ("cx", False), ("Dockerfile", False), ("/out", True), ("./docs/a", True),
])
def test_matches(path: str, excluded: bool) -> None:
    assert DockerIgnore.from_bytes(IGNORE).matches(path) is excluded


def test_last_rule_wins_and_reinclude() -> None:
    ign = parse("*\n!src\nsrc/*.tmp\n!src/keep.tmp\n")
    assert ign.matches("README") and not ign.matches("src/a.py")
    assert ign.matches("src/x.tmp") and not ign.matches("src/keep.tmp")
    assert ign.has_exclusions


def test_double_star_forms() -> None:
    ign = DockerIgnore.from_patterns(["**/*.log", "a/**/b", "**"])
    assert ign.matches("anything")
    ign = DockerIgnore.from_patterns(["**/*.log", "a/**/b"])
    assert ign.matches("x.log") and ign.matches("d/e/x.log") and not ign.matches("x.txt")
    assert ign.matches("a/b") and ign.matches("a/x/y/b") and not ign.matches("b")


def test_bad_patterns() -> None:
    with pytest.raises(DockerIgnoreError):
        DockerIgnore.from_patterns(["["])
    with pytest.raises(DockerIgnoreError):
        DockerIgnore.from_patterns(["!"])
    with pytest.raises(DockerIgnoreError):
        DockerIgnore.from_patterns(["a\\"])


def test_go_helpers() -> None:
    assert go_clean("") == "." and go_clean("a//b/./../c/") == "a/c" and go_clean("/../a") == "/a"
    assert go_clean("../../x") == "../../x"
    assert go_filepath_match("*.go", "a.go") and not go_filepath_match("*.go", "d/a.go")
    assert go_filepath_match("[^a-c]x", "dx") and not go_filepath_match("[^a-c]x", "bx")
    assert go_filepath_match("\\*", "*") and go_filepath_match("a*\\", ".") is False


def test_from_file_and_specific_ignore(tmp_path) -> None:
    (tmp_path / ".dockerignore").write_text("*.md\n")
    assert DockerIgnore.from_file(tmp_path / ".dockerignore").matches("README.md")
    assert not DockerIgnore.from_file(tmp_path / "missing").matches("README.md")
    df = tmp_path / "app.Dockerfile"
    assert ignore_file_for(tmp_path, df) == tmp_path / ".dockerignore"
    (tmp_path / "app.Dockerfile.dockerignore").write_text("x\n")
    assert ignore_file_for(tmp_path, df) == tmp_path / "app.Dockerfile.dockerignore"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="ab*?/[]!\\.-^ #", max_size=8), max_size=5),
       st.text(alphabet="ab/.", min_size=1, max_size=8))
def test_fuzz_never_crashes(patterns: list[str], path: str) -> None:
    try:
        DockerIgnore.from_bytes("\n".join(patterns)).matches(path)
    except DockerIgnoreError:
        pass
