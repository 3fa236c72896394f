"""pybuild.cache: step keys, records, and --explain-cache reasons."""

from __future__ import annotations

import os

from pybuild.cache import Cache, CacheRecord, StepInputs, explain, nearest_build, step_key


def test_key_depends_on_every_input():
    base = step_key("sha256:p", "RUN make", None, {"A": "1"})
    assert base == step_key("sha256:p", "RUN make", None, {"A": "1"})
    assert base != step_key("sha256:q", "RUN make", None, {"A": "1"})
    assert base != step_key("sha256:p", "RUN make all", None, {"A": "1"})
    assert base != step_key("sha256:p", "RUN make", "sha256:src", {"A": "1"})
    assert base != step_key("sha256:p", "RUN make", None, {"A": "2"})
    assert base != step_key("sha256:p", "RUN make", None, {})
    assert step_key("p", "x", None, {"A": "1", "B": "2"}) == step_key("p", "x", None, {"B": "2", "A": "1"})


def test_record_roundtrip_and_miss(tmp_path):
    cache = Cache(str(tmp_path))
    key = step_key("p", "RUN x", None, {})
    assert cache.lookup(key) is None
    rec = CacheRecord(config={"architecture": "amd64"}, layers=[{"digest": "sha256:ab", "size": 3}])
    cache.record(key, rec)
    assert cache.lookup(key) == rec
    cache.forget(key)
    assert cache.lookup(key) is None


def test_junk_record_is_a_miss(tmp_path):
    cache = Cache(str(tmp_path))
    key = step_key("p", "RUN x", None, {})
    with open(cache._step_path(key), "w") as fh:
        fh.write("{not json")
    assert cache.lookup(key) is None


def _inputs(key, text, scope=None, base=None, sources=None):
    return StepInputs(key=key, text=text, scope=scope or {}, base=base, sources=sources or {})


def test_stage_history_keeps_recent_builds(tmp_path):
    cache = Cache(str(tmp_path))
    for i in range(12):
        cache.save_stage_build("ctx:Dockerfile:0", [_inputs(f"k{i}", "RUN a")])
    builds = cache.stage_builds("ctx:Dockerfile:0")
    assert len(builds) == 8 and builds[0][0].key == "k11"
    assert cache.stage_builds("other") == []


def test_nearest_build_prefers_longest_prefix():
    a = [_inputs("1", "FROM"), _inputs("2", "COPY"), _inputs("3", "RUN")]
    b = [_inputs("1", "FROM"), _inputs("x", "COPY")]
    done = [_inputs("1", "FROM"), _inputs("2", "COPY")]
    assert nearest_build([b, a], done) is a
    assert nearest_build([], done) is None


def test_explain_names_what_changed():
    old = _inputs("k1", "COPY app.py /app/", scope={"ARG V": "1", "ENV X": "a"}, base="sha256:b1",
                  sources={"app.py": "f644:aa", "gone.py": "f644:bb", "same": "f644:cc"})
    new = _inputs("k2", "COPY app.py /srv/", scope={"ARG V": "2", "ENV X": "a"}, base="sha256:b2",
                  sources={"app.py": "f644:zz", "new.py": "f644:dd", "same": "f644:cc"})
    reasons = explain(old, new, parent_rebuilt=False)
    text = "\n".join(reasons)
    assert "base image changed: sha256:b1 → sha256:b2" in text
    assert "instruction changed: 'COPY app.py /app/' → 'COPY app.py /srv/'" in text
    assert "ARG V changed: '1' → '2'" in text
    assert "ENV X" not in text
    assert "source files added: new.py" in text
    assert "source files removed: gone.py" in text
    assert "source files changed: app.py" in text


def test_explain_without_history_and_parent_rebuilt():
    assert explain(None, _inputs("k", "RUN a"), False) == ["no earlier build of this stage reached this step"]
    same = _inputs("k1", "RUN a")
    assert explain(same, _inputs("k2", "RUN a"), True) == ["an earlier step of this stage was rebuilt"]
    assert explain(same, _inputs("k1", "RUN a"), False) == ["the cached result is gone from the store (pruned)"]


def test_metadata_runs_are_one_buffered_record_each(tmp_path):
    """A run of metadata steps is written once (not one file, nor one full config, per step)."""
    cache = Cache(str(tmp_path))
    for i in range(1000):
        cache.record_meta("sha256:run1", f"sha256:k{i}", f"2024-01-01T00:00:{i % 60:02d}Z")
    assert os.listdir(cache.meta_dir) == []          # buffered until the run ends
    cache.record_meta("sha256:run2", "sha256:x", "t2")  # another run: the first is flushed
    assert len(os.listdir(cache.meta_dir)) == 1
    cache.flush_meta()
    assert len(os.listdir(cache.meta_dir)) == 2
    again = Cache(str(tmp_path))
    assert again.lookup_meta("sha256:run1", "sha256:k61") == "2024-01-01T00:00:01Z"
    assert again.lookup_meta("sha256:run2", "sha256:x") == "t2"
    assert again.lookup_meta("sha256:run1", "sha256:nope") is None
    assert again.lookup_meta("sha256:none", "sha256:x") is None


def test_junk_metadata_record_is_a_miss(tmp_path):
    cache = Cache(str(tmp_path))
    with open(cache._meta_path("sha256:r"), "w") as fh:
        fh.write('{"created": ["not", "a", "map"]}')
    assert cache.lookup_meta("sha256:r", "sha256:k") is None
