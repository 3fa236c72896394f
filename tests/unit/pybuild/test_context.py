"""pybuild.context: safe source resolution, wildcards, .dockerignore, digests."""

from __future__ import annotations

import os

import pytest

from pybuild.context import BuildContext, _go_match_regex
from pybuild.errors import ContextError


def make(tmp_path, files: dict[str, str], ignore: str | None = None) -> BuildContext:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if ignore is not None:
        (tmp_path / ".dockerignore").write_text(ignore)
    return BuildContext(str(tmp_path))


def test_resolve_file_and_dir(tmp_path):
    ctx = make(tmp_path, {"a.txt": "a", "d/b.txt": "b"})
    [src] = ctx.resolve("a.txt")
    assert src.rel == "a.txt" and not src.is_dir
    [src] = ctx.resolve("./d/")
    assert src.rel == "d" and src.is_dir
    [src] = ctx.resolve("/d/../a.txt")
    assert src.rel == "a.txt"
    [src] = ctx.resolve(".")
    assert src.rel == "." and src.is_dir


def test_dotdot_escape_is_refused(tmp_path):
    ctx = make(tmp_path / "ctx", {"a": "a"})
    with pytest.raises(ContextError, match="outside the build context"):
        ctx.resolve("../secret")
    with pytest.raises(ContextError, match="outside the build context"):
        ctx.resolve("d/../../x")


def test_symlink_escape_is_refused(tmp_path):
    (tmp_path / "outside").write_text("secret")
    ctx = make(tmp_path / "ctx", {"a": "a"})
    os.symlink(str(tmp_path / "outside"), tmp_path / "ctx" / "link")
    os.symlink("../outside", tmp_path / "ctx" / "rel")
    for name in ("link", "rel"):
        with pytest.raises(ContextError, match="outside the build context"):
            ctx.resolve(name)


def test_symlink_inside_is_followed(tmp_path):
    ctx = make(tmp_path, {"real/f": "x"})
    os.symlink("real", tmp_path / "alias")
    [src] = ctx.resolve("alias")
    assert src.is_dir and src.path == str(tmp_path / "real")


def test_missing_source(tmp_path):
    ctx = make(tmp_path, {"a": "a"})
    with pytest.raises(ContextError, match="nope: not found"):
        ctx.resolve("nope")
    with pytest.raises(ContextError, match="no source files match"):
        ctx.resolve("*.py")


def test_wildcards(tmp_path):
    ctx = make(tmp_path, {"a.py": "", "b.py": "", "c.txt": "", "sub/x.py": "", "sub/y.txt": ""})
    assert [s.rel for s in ctx.resolve("*.py")] == ["a.py", "b.py"]
    assert [s.rel for s in ctx.resolve("sub/*.py")] == ["sub/x.py"]
    assert [s.rel for s in ctx.resolve("*/*.txt")] == ["sub/y.txt"]
    assert [s.rel for s in ctx.resolve("[ab].py")] == ["a.py", "b.py"]
    assert [s.rel for s in ctx.resolve("[^a].py")] == ["b.py"]
    assert [s.rel for s in ctx.resolve("?.txt")] == ["c.txt"]


def test_go_match_semantics():
    assert _go_match_regex("*.py").match("a.py")
    assert not _go_match_regex("*.py").match("a/b.py")
    assert _go_match_regex(r"\*").match("*")
    assert not _go_match_regex(r"\*").match("a")
    with pytest.raises(ContextError):
        _go_match_regex("[ab")


def test_dockerignore_hides_files(tmp_path):
    ctx = make(tmp_path, {"app.py": "", "secret.env": "", "logs/a.log": "", "logs/keep.log": "",
                          "node_modules/x/y.js": ""},
               ignore="*.env\nlogs\n!logs/keep.log\nnode_modules\n")
    with pytest.raises(ContextError, match="excluded by .dockerignore"):
        ctx.resolve("secret.env")
    assert [s.rel for s in ctx.resolve("*")] == [".dockerignore", "app.py"]
    [root] = ctx.resolve(".")
    rels = [rel for rel, _host, _st in ctx.entries(root)]
    assert "secret.env" not in rels and "logs/a.log" not in rels
    assert "logs/keep.log" in rels and "app.py" in rels
    assert not any(r.startswith("node_modules") for r in rels)


def test_digest_tracks_content_and_mode_not_mtime(tmp_path):
    ctx = make(tmp_path, {"d/a": "one", "d/b": "two"})
    [src] = ctx.resolve("d")
    first = ctx.digest([src])
    os.utime(tmp_path / "d" / "a", (1, 1))
    assert BuildContext(str(tmp_path)).digest([src]).digest == first.digest
    (tmp_path / "d" / "a").write_text("ONE")
    changed = BuildContext(str(tmp_path)).digest([src])
    assert changed.digest != first.digest
    assert {k for k in first.files if first.files[k] != changed.files.get(k)} == {"d/a"}
    os.chmod(tmp_path / "d" / "b", 0o700)
    assert BuildContext(str(tmp_path)).digest([src]).digest != changed.digest


def test_digest_lists_added_and_removed(tmp_path):
    ctx = make(tmp_path, {"d/a": "one"})
    [src] = ctx.resolve("d")
    before = ctx.digest([src]).files
    (tmp_path / "d" / "new").write_text("x")
    after = BuildContext(str(tmp_path)).digest([src]).files
    assert set(after) - set(before) == {"d/new"}


def test_context_must_be_a_directory(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ContextError, match="not a directory"):
        BuildContext(str(tmp_path / "f"))


def test_persistent_digest_cache_reuses_and_detects_changes(tmp_path):
    ctx_dir = tmp_path / "ctx"
    cache_dir = str(tmp_path / "cache")
    ctx = make(ctx_dir, {"a": "one", "b": "two"})
    ctx.use_digest_cache(cache_dir)
    [src] = ctx.resolve(".")
    first = ctx.digest([src])
    ctx.save_digest_cache()
    again = BuildContext(str(ctx_dir))
    again.use_digest_cache(cache_dir)
    assert set(again._hash_cache.values()) == {d.split(":", 1)[1] for d in first.files.values()
                                               if d.startswith("f")}   # loaded from disk
    assert again.digest([src]).digest == first.digest
    # same size, mtime forged back: ctime still changes, so the file is hashed again
    st = os.stat(ctx_dir / "a")
    (ctx_dir / "a").write_text("ONE")
    os.utime(ctx_dir / "a", ns=(st.st_atime_ns, st.st_mtime_ns))
    third = BuildContext(str(ctx_dir))
    third.use_digest_cache(cache_dir)
    changed = third.digest([src])
    assert changed.files["a"] != first.files["a"] and changed.files["b"] == first.files["b"]


def test_corrupt_digest_cache_is_ignored(tmp_path):
    ctx = make(tmp_path / "ctx", {"a": "one"})
    cache_dir = tmp_path / "cache"
    ctx.use_digest_cache(str(cache_dir))
    ctx.save_digest_cache()
    with open(ctx._cache_file, "w") as fh:
        fh.write("{junk")
    fresh = BuildContext(str(tmp_path / "ctx"))
    fresh.use_digest_cache(str(cache_dir))
    [src] = fresh.resolve("a")
    assert fresh.digest([src]).digest.startswith("sha256:")
