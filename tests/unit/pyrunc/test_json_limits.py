"""The pure parts of issue 11 finding 8: JSON that is deep, malformed or not a
C string becomes one ValueError / ConfigError line, never a traceback."""

from __future__ import annotations

import json
import os

import pytest

from pyrunc import jsonfast, spec
from pyrunc.errors import ConfigError
from pyrunc.config.checks import Invalid, _c_string
from pyrunc.state import CorruptState, State


def _deep(n: int, opener: str = "[", closer: str = "]") -> str:
    return opener * n + closer * n


@pytest.mark.parametrize("n", [1, 900, 3000, jsonfast.MAX_DEPTH])
def test_deep_documents_up_to_runcs_limit_parse(n):
    value = jsonfast.loads(_deep(n))
    depth = 0
    while value:
        value = value[0]
        depth += 1
    assert depth == n - 1


def test_deep_objects_parse():
    doc = '{"a":' * 5000 + "1" + "}" * 5000
    assert jsonfast.loads(doc.encode())["a"]["a"]["a"]


@pytest.mark.parametrize("n", [jsonfast.MAX_DEPTH + 1, 100_000])
def test_deeper_than_runcs_limit_is_a_value_error(n):
    with pytest.raises(ValueError, match="exceeded max depth"):
        jsonfast.loads(_deep(n))


def test_deep_and_malformed_is_jsons_error():
    with pytest.raises(ValueError) as err:
        jsonfast.loads("[" * 5000)
    assert "Expecting value" in str(err.value)


def test_recursion_limit_is_restored():
    import sys

    before = sys.getrecursionlimit()
    jsonfast.loads(_deep(4000))
    assert sys.getrecursionlimit() == before


@pytest.mark.parametrize("text, depth", [
    ("[]", 1), ("{}", 1), ("1", 0), ('"[[["', 0), ('["[", [[]]]', 3), ('["\\"[", [1]]', 2),
    ('["\\\\", [1]]', 2), ('{"a": {"b": [{}]}}', 4), ('[' * 7, 7),
])
def test_nesting_depth(text, depth):
    assert jsonfast.nesting_depth(text) == depth


@pytest.mark.parametrize("value, message", [
    ("a\0b", "NUL"), ("\ud800", "lone surrogate"), ("x\udfffy", "lone surrogate"),
])
def test_c_strings(value, message):
    with pytest.raises(Invalid) as bad:
        _c_string(value, ".p")
    assert message in bad.value.message and bad.value.path == ".p"


@pytest.mark.parametrize("value", ["", "plain", "ünïcödé ✓", "\U0001f600"])
def test_c_strings_ok(value):
    assert _c_string(value, ".p") == value


def test_annotations_may_hold_anything_runc_accepts():
    cfg = spec.default_config()
    cfg["annotations"] = {"a\0": "b\0\ud800"}
    assert spec.parse(cfg).annotations == cfg["annotations"]


@pytest.mark.parametrize("data, message", [
    (b"\xff{}", "invalid JSON"), (b"[" * 20000 + b"]" * 20000, "exceeded max depth"), (b"", "invalid JSON"),
    (b'{"a": "\xc0\xaf"}', "invalid JSON"),
])
def test_decode_json_is_one_config_error(data, message):
    with pytest.raises(ConfigError) as err:
        spec.decode_json(data, "process.json")
    text = str(err.value)
    assert text.startswith("process.json: ") and message in text and "\n" not in text


def test_read_json_missing_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        spec.read_json(str(tmp_path / "nope.json"))
    assert "cannot read" in str(err.value)


GOOD_STATE = {"id": "c", "bundle": "/b", "rootfs": "/b/rootfs", "created": "2024-01-01T00:00:00Z",
              "pid": 5, "pid_start": 7, "status": "created"}


def test_state_roundtrip():
    st = State.from_json(json.dumps(GOOD_STATE).encode(), "/run/pyrunc/c")
    assert st.pid == 5 and st.status == "created"
    assert State.from_json(st.to_json(), "/run/pyrunc/c").pid_start == 7


@pytest.mark.parametrize("doc, message", [
    (b"[]", "not a JSON object"),
    (b"\xff", "invalid JSON"),
    (b"[" * 20000, "exceeded max depth"),
    (json.dumps({**GOOD_STATE, "pid": "5"}).encode(), ".pid must be a JSON integer"),
    (json.dumps({**GOOD_STATE, "cgroup": []}).encode(), ".cgroup must be a JSON object"),
    (json.dumps({**GOOD_STATE, "status": "zombie"}).encode(), "not a container status"),
    (json.dumps({k: v for k, v in GOOD_STATE.items() if k != "bundle"}).encode(), ".bundle is missing"),
    (json.dumps({**GOOD_STATE, "hooks": {"poststop": [{"args": ["x"]}]}}).encode(), ".hooks.poststop[0].path"),
    (json.dumps({**GOOD_STATE, "hooks": {"poststop": [{"path": "/x\u0000"}]}}).encode(), "NUL"),
])
def test_corrupt_state_is_one_line(doc, message):
    with pytest.raises(CorruptState) as err:
        State.from_json(doc, "/run/pyrunc/c")
    text = str(err.value)
    assert text.startswith(os.path.join("/run/pyrunc/c", "state.json")) and message in text
    assert "\n" not in text


def test_state_ignores_unknown_keys():
    st = State.from_json(json.dumps({**GOOD_STATE, "future": [1, 2]}).encode(), "/d")
    assert st.id == "c"
