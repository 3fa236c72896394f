"""Fuzzing config.json and process.json (issue 18): types, huge arrays, deep nesting, unicode, path
tricks. The loader (spec.decode_json + spec.parse, what create and exec run first) gives a Spec or one
ConfigError line naming the field; never another exception, never a message on two lines. process.json
goes through exec's own entry (exec.build_process with --process FILE).

test_spec_property.py holds the loader and the JSON schema in agreement; this file reaches what the
schema does not describe: sizes, depth, strings no kernel call takes.
PYRUNC_FUZZ_EXAMPLES=N runs N examples (default: a short run).
"""

from __future__ import annotations

import copy
import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc import spec
from pyrunc.errors import PyruncError
from pyrunc.exec import ExecOptions, build_process

EXAMPLES = int(os.environ.get("PYRUNC_FUZZ_EXAMPLES", "0")) or 100
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

BASE = spec.default_config()
PATHS = ["/", "", ".", "..", "../../etc", "/proc/self/root/etc", "/tmp/../../etc/passwd", "//x//", "/dev/null",
         "relative", "/a" * 2000, "/\u00e9\u202e", "/x\x00y", "/\udcff", "/proc/1/exe", "/sys/fs/cgroup/../.."]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.sampled_from(PATHS), st.text(max_size=8))
JSONISH = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                       max_leaves=12)


def _nodes(value: object, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _nodes(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _nodes(v, path + (i,))
    return out


def _set(doc: dict, path: tuple, value: object) -> None:
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


@st.composite
def hostile_configs(draw) -> bytes:  # type: ignore[no-untyped-def]
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_nodes(doc)[1:]))
        kind = draw(st.sampled_from(["value", "huge", "deep", "path"]))
        if kind == "value":
            value: object = draw(JSONISH)
        elif kind == "huge":  # a huge array of a plausible item
            value = [draw(SCALARS)] * draw(st.sampled_from([1000, 20000]))
        elif kind == "deep":
            value = json.loads("[" * 500 + "]" * 500) if draw(st.booleans()) else {"a": {"b": {"c": [[[[{}]]]]}}}
        else:
            value = draw(st.sampled_from(PATHS))
        _set(doc, path, value)
    if isinstance(doc.get("mounts"), list) and draw(st.booleans()):  # a mount with tricks in every field
        doc["mounts"].append({"destination": draw(st.sampled_from(PATHS)), "type": draw(st.sampled_from(
            ["bind", "tmpfs", "proc", "", "none", "\u00e9"])), "source": draw(st.sampled_from(PATHS)),
            "options": draw(st.lists(st.sampled_from(["rbind", "ro", "rro", "mode=777", "size=-1", "idmap",
                                                      "x-create=dir", "=", "", "bind,ro", "\x00"]), max_size=4))})
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")


def _one_line(err: PyruncError) -> None:
    text = str(err)
    assert text and "\n" not in text, repr(text)
    text.encode("utf-8", "surrogateescape")


@FUZZ
@given(hostile_configs())
def test_hostile_config_json(data: bytes) -> None:
    try:
        loaded = spec.parse(spec.decode_json(data))
    except PyruncError as err:
        _one_line(err)
        return
    assert loaded.process is None or isinstance(loaded.process.args, tuple)


@FUZZ
@given(st.one_of(hostile_configs().map(lambda d: json.dumps(json.loads(d).get("process")).encode()),
                 st.binary(max_size=100), JSONISH.map(lambda v: json.dumps(v).encode())))
def test_hostile_process_json(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("process") / "process.json"
    path.write_bytes(data)
    try:
        process = build_process(None, ExecOptions(process_json=str(path)))
    except PyruncError as err:
        _one_line(err)
        return
    assert process.args
