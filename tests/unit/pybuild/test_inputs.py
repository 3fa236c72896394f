"""Input that must never reach a traceback (issue 11 finding 8): Dockerfile bytes no JSON config
can hold, and image documents of any shape. Property tests: only PybuildError may escape, and
whatever is accepted can be written back."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybuild.dockerfile import parser as dockerfile_parser, stages as instructions
from pybuild.errors import DockerfileError, PybuildError
from pybuild.image import parse_config, parse_index, parse_manifest, to_json
from pybuild.utf8 import check_dockerfile, check_value, first_bad, go_strings


def _check(data: bytes) -> None:
    result = dockerfile_parser.parse(data)
    instructions.parse_stages(result)
    check_dockerfile(result, "Dockerfile")


@pytest.mark.parametrize("data,line,text", [
    (b"FROM x\nRUN echo caf\xe9\n", 2, "RUN: invalid UTF-8 (byte 0xE9) at column 13"),
    (b"FROM x\nRUN \\\n  echo \xff\n", 2, "byte 0xFF"),
    (b"FROM x\nLABEL a=\xc3\n", 2, "LABEL: invalid UTF-8 (byte 0xC3)"),
    (b"FROM x\nRUN <<EOF\nok\n\xff\nEOF\n", 2, "heredoc <<EOF, character 4"),
    (b"FROM x\nONBUILD RUN \xfe\n", 2, "ONBUILD: invalid UTF-8"),
    (b"FROM x\nWORKDIR /a\x00b\n", 2, "a NUL byte at column 11"),
    (b"FROM \xff\n", 1, "FROM"),
])
def test_dockerfile_no_config_can_hold(data, line, text):
    with pytest.raises(DockerfileError) as err:
        _check(data)
    assert err.value.line == line and text in str(err.value)


@pytest.mark.parametrize("data", [
    "FROM x\nLABEL who=\"José ✓ 中文\"\nRUN echo 😀\n".encode(),
    b"FROM x\nCOPY <<EOF /f\ncaf\xe9\nEOF\n",       # a file body: any bytes
    b"# comment with \xff\nFROM x\nRUN true\n",       # comments never reach a config
])
def test_valid_dockerfiles_pass(data):
    _check(data)


def test_values_and_go_strings():
    assert first_bad("ok ✓") is None
    assert first_bad("a\udcffb") == (1, "invalid UTF-8 (byte 0xFF)")
    with pytest.raises(PybuildError, match="--label x: invalid UTF-8"):
        check_value("x=\udce9", "--label x")
    assert go_strings({"a\ud800": ["x\udfff", 1, None]}) == {"a\ufffd": ["x\ufffd", 1, None]}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_after_from_are_an_error_or_accepted(data):
    try:
        _check(b"FROM scratch\n" + data)
    except PybuildError:
        pass


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) |
                     st.text(alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from("\ud800\udfff")),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=12)
_VALID = {"architecture": "amd64", "os": "linux", "config": {"Env": ["A=1"], "Cmd": ["sh"], "Labels": {"a": "b"}},
          "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]},
          "history": [{"created_by": "x", "empty_layer": True}]}
_PATHS = [(), ("config",), ("config", "Env"), ("config", "Cmd"), ("config", "Labels"), ("config", "ExposedPorts"),
          ("rootfs",), ("rootfs", "diff_ids"), ("history",), ("history", 0), ("config", "Healthcheck"),
          ("config", "OnBuild"), ("created",), ("config", "User")]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_PATHS), _json)
def test_image_configs_of_any_shape_parse_or_fail_with_one_line(path, value):
    doc = json.loads(json.dumps(_VALID))
    node = doc
    for key in path[:-1]:
        node = node[key]
    if path:
        node[path[-1]] = value
    else:
        doc = value
    raw = json.dumps(doc).encode()  # lone surrogates go in as escapes, as in a hostile image
    try:
        config = parse_config(raw)
    except PybuildError:
        return
    to_json(config)  # anything accepted can be written back


@settings(max_examples=200, deadline=None)
@given(_json)
def test_manifests_and_indexes_of_any_shape(value):
    for parse, wrap in ((parse_manifest, lambda v: {"config": v, "layers": [v]}), (parse_index, lambda v: {"manifests": v})):
        try:
            result = parse(json.dumps(wrap(value)).encode())
        except PybuildError:
            continue
        to_json(result)
