"""Fuzzing build contexts and .dockerignore through `pybuild build` (issue 18): odd names (spaces,
newlines, unicode, leading dashes, globs, 255 bytes), symlinks (absolute and relative ones out to a
host tree, dangling, loops), hard links, fifos, devices, empty and sparse files, and .dockerignore
patterns (negations, **, anchors, junk), copied with `COPY . /ctx/` and written out with
`--output type=local`.

Each build succeeds or fails with one `pybuild: ...` line (no traceback), and: the host tree the links
point at is unchanged, the context itself is unchanged (a build only reads it), the store is sound
(fsck finds no error). A build that succeeds copied the context faithfully: without a .dockerignore
every entry arrives with its type, content, link target and device number; with one, nothing arrives
that the context does not hold, as it is there.
PYRUNC_FUZZ_EXAMPLES=N runs N examples (default: a short run).
"""

from __future__ import annotations

import os
import stat

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pbsec import assert_intact, busybox_tar, pb, snapshot_tree, victim  # noqa: F401

EXAMPLES = int(os.environ.get("PYRUNC_FUZZ_EXAMPLES", "0")) or 6
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 6,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

PARTS = ["a", "b c", "é", "-rf", "--", "..x", "x..", "*", "?", "[ab]", "\\", "new\nline", "x" * 255, "#c", "!neg",
         " lead", "trail ", "\t", ".hidden", "Dockerfile", "ü" * 60]
KINDS = ["file", "file", "dir", "symlink", "symlink", "hardlink", "fifo", "chardev", "empty", "sparse"]
TARGETS = ["VICTIM/canary", "VICTIM", "RELVICTIM/canary", "/etc/passwd", "missing", "loop", ".", "..", "a", "../a"]
IGNORES = ["*", "!a", "**/b*", "a/**", "../", "/abs", "# comment", "", "!", "[", "\\", "d/*/x", "**", "!Dockerfile",
           ".dockerignore", "**/.*", "*.x", "a/../b", "!**/é", "fifo*"]


@st.composite
def contexts(draw) -> tuple[list[tuple[str, str, str]], list[str] | None]:  # type: ignore[no-untyped-def]
    entries: list[tuple[str, str, str]] = []
    used = {"Dockerfile", ".dockerignore"}
    for _ in range(draw(st.integers(1, 8))):
        depth = draw(st.integers(1, 2))
        rel = "/".join(draw(st.sampled_from(PARTS)) for _ in range(depth))
        if rel in used or any(rel.startswith(u + "/") for u in used):
            continue
        used.add(rel)
        entries.append((rel, draw(st.sampled_from(KINDS)), draw(st.sampled_from(TARGETS))))
    ignore = draw(st.none() | st.lists(st.sampled_from(IGNORES), min_size=1, max_size=4))
    return entries, ignore


def _make(ctx: str, entries, ignore, victim_dir: str) -> None:  # type: ignore[no-untyped-def]
    os.makedirs(ctx)
    with open(os.path.join(ctx, "Dockerfile"), "w") as fh:
        fh.write("FROM busybox\nCOPY . /ctx/\n")
    if ignore is not None:
        with open(os.path.join(ctx, ".dockerignore"), "w") as fh:
            fh.write("\n".join(ignore) + "\n")
    files = []
    for rel, kind, target in entries:
        path = os.path.join(ctx, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.lexists(path) or not os.path.isdir(os.path.dirname(path)):
            continue
        target = target.replace("RELVICTIM", "../" * (rel.count("/") + 12) + victim_dir.lstrip("/")) \
            .replace("VICTIM", victim_dir).replace("loop", os.path.basename(rel))
        if kind == "dir":
            os.makedirs(path)
        elif kind == "symlink":
            os.symlink(target, path)
        elif kind == "hardlink" and files:
            os.link(files[0], path)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "chardev":
            os.mknod(path, stat.S_IFCHR | 0o644, os.makedev(1, 3))
        elif kind == "sparse":
            with open(path, "wb") as fh:
                fh.truncate(64 << 20)
                fh.write(b"end")
            files.append(path)
        else:
            with open(path, "wb") as fh:
                fh.write(b"" if kind == "empty" else rel.encode() * 3)
            files.append(path)


def _entry(path: str) -> tuple:
    st_ = os.lstat(path)
    kind = stat.S_IFMT(st_.st_mode)
    if stat.S_ISLNK(st_.st_mode):
        return kind, os.readlink(path)
    if stat.S_ISREG(st_.st_mode):
        with open(path, "rb") as fh:
            head = fh.read(64)
        return kind, st_.st_size, head
    if stat.S_ISCHR(st_.st_mode) or stat.S_ISBLK(st_.st_mode):
        return kind, st_.st_rdev
    return (kind,)


def _tree(root: str) -> dict[str, tuple]:
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(dirpath, name)
            out[os.path.relpath(full, root)] = _entry(full)
    return out


@FUZZ
@given(contexts())
def test_hostile_context(pb, victim, tmp_path_factory, case) -> None:
    entries, ignore = case
    work = tmp_path_factory.mktemp("fuzzctx")
    ctx, out = str(work / "ctx"), str(work / "out")
    _make(ctx, entries, ignore, victim)
    before_victim, before_ctx = snapshot_tree(victim), snapshot_tree(ctx)
    res = pb.build(ctx, "--network", "none", "-o", f"type=local,dest={out}")
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    if res.returncode != 0:
        lines = [line for line in res.stderr.splitlines() if line.startswith("pybuild: ")]
        assert len(lines) == 1 and res.stderr.rstrip().endswith(lines[0]), res.stderr[-3000:]
    assert_intact(victim, before_victim)
    assert snapshot_tree(ctx) == before_ctx, "the build changed its context"
    fsck = pb("fsck")
    assert fsck.returncode == 0 and "error:" not in fsck.stdout, fsck.stdout
    if res.returncode != 0:
        return
    copied, source = _tree(os.path.join(out, "ctx")), _tree(ctx)
    for rel, entry in copied.items():
        assert source.get(rel) == entry, f"{rel!r}: {entry} is not the context's {source.get(rel)}"
    if ignore is None:
        assert set(copied) == set(source), sorted(set(copied) ^ set(source))
