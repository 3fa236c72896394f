"""jsonfast must give exactly what json gives."""

import json

import pytest
from hypothesis import given, strategies as st

from pyrunc import jsonfast

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=30)


@given(values)
def test_roundtrip_matches_json(v):
    assert jsonfast.dumps(v) == json.dumps(v)
    assert jsonfast.loads(json.dumps(v)) == json.loads(json.dumps(v))
    assert jsonfast.loads(json.dumps(v, indent=2).encode()) == v


@pytest.mark.parametrize("bad", ["", "{", "[1,]", "{\"a\" 1}", "1 2", "\ufeff{}", b"\xff"])
def test_errors_are_jsons(bad):
    with pytest.raises(ValueError) as mine:
        jsonfast.loads(bad)
    with pytest.raises(ValueError) as theirs:
        json.loads(bad)
    assert str(mine.value) == str(theirs.value)


def test_not_serializable():
    with pytest.raises(TypeError):
        jsonfast.dumps({"a": object()})


def test_errors_without_json_imported():
    """In a fresh interpreter json.decoder is not loaded: errors must still be json's."""
    import subprocess
    import sys

    code = ("import sys; from pyrunc import jsonfast\n"
            "assert 'json.decoder' not in sys.modules\n"
            "try:\n    jsonfast.loads('{not json')\nexcept ValueError as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("JSONDecodeError Expecting property name enclosed in double quotes")


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(), kids, max_size=4),
                    max_leaves=20))
def test_dumps_indent_and_compact_match_json(doc) -> None:
    import json

    assert jsonfast.dumps_indent(doc, 2) == json.dumps(doc, indent=2)
    assert jsonfast.dumps(doc, compact=True) == json.dumps(doc, separators=(",", ":"))
