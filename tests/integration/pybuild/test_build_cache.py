"""The step cache: full hits run nothing, a changed file reruns only what follows,
and --explain-cache says what changed."""

from __future__ import annotations

import hashlib
import os
import time

from test_build_common import base_image_tar, pb, write_context  # noqa: F401

APP = """\
FROM busybox
ARG MODE=dev
ENV APP=/app
WORKDIR /app
COPY requirements.txt .
RUN cat requirements.txt > installed.txt
COPY src/ ./src/
RUN ls src > listing.txt && echo $MODE > mode.txt
CMD ["sh"]
"""


def _ctx(tmp_path):
    return write_context(tmp_path / "ctx", {"Dockerfile": APP, "requirements.txt": "flask\n",
                                            "src/app.py": "print('v1')\n", "src/util.py": "x = 1\n"})


def _failing_runtime(tmp_path) -> str:
    """A runtime that fails loudly: a fully cached build must never call it."""
    path = tmp_path / "no-runtime"
    path.write_text("#!/bin/sh\necho 'runtime was called' >&2\nexit 99\n")
    path.chmod(0o755)
    return str(path)


def test_rebuild_with_nothing_changed_runs_no_container(pb, tmp_path):
    ctx = _ctx(tmp_path)
    first = pb.build(ctx, "-t", "app").stdout.strip()
    pb_cached = type(pb)(pb.root, _failing_runtime(tmp_path))
    start = time.monotonic()
    res = pb_cached.build(ctx, "-t", "app")
    elapsed = time.monotonic() - start
    assert res.stdout.strip() == first            # same image ID: timestamps come from the cache
    assert res.stderr.count("--> CACHED") == 8
    assert "runtime was called" not in res.stderr
    assert elapsed < 5   # typically ~0.3 s; generous bound for a loaded machine


def test_changed_file_reruns_only_later_steps(pb, tmp_path):
    ctx = _ctx(tmp_path)
    pb.build(ctx, "-t", "app")
    before = pb.manifest("app")["layers"]
    os.utime(os.path.join(ctx, "src", "app.py"), (1, 1))   # touching is not changing
    assert pb.build(ctx, "-t", "app").stderr.count("--> CACHED") == 8
    with open(os.path.join(ctx, "src", "app.py"), "w") as fh:
        fh.write("print('v2')\n")
    res = pb.build(ctx, "-t", "app", "--explain-cache")
    assert res.stderr.count("--> CACHED") == 5     # ARG ENV WORKDIR COPY RUN before src/
    assert "--> cache miss: source files changed: src/app.py" in res.stderr
    assert "--> cache miss: an earlier step of this stage was rebuilt" in res.stderr
    after = pb.manifest("app")["layers"]
    assert after[:4] == before[:4] and after[4:] != before[4:]


def test_explain_names_arg_instruction_and_added_removed_files(pb, tmp_path):
    ctx = _ctx(tmp_path)
    pb.build(ctx, "-t", "app")
    res = pb.build(ctx, "-t", "app", "--explain-cache", "--build-arg", "MODE=prod")
    assert "--> cache miss: ARG MODE changed: 'dev' → 'prod'" in res.stderr
    os.unlink(os.path.join(ctx, "src", "util.py"))
    with open(os.path.join(ctx, "src", "new.py"), "w") as fh:
        fh.write("new\n")
    res = pb.build(ctx, "-t", "app", "--explain-cache", "--build-arg", "MODE=prod")
    assert "source files added: src/new.py" in res.stderr
    assert "source files removed: src/util.py" in res.stderr
    with open(os.path.join(ctx, "Dockerfile"), "w") as fh:
        fh.write(APP.replace("echo $MODE", "echo mode=$MODE"))
    res = pb.build(ctx, "-t", "app", "--explain-cache", "--build-arg", "MODE=prod")
    assert "instruction changed: 'RUN ls src > listing.txt && echo $MODE > mode.txt' → " \
           "'RUN ls src > listing.txt && echo mode=$MODE > mode.txt'" in res.stderr
    assert pb.flatten("app")["app/mode.txt"][1] == b"mode=prod\n"


def test_explain_names_a_changed_base(pb, tmp_path, base_image_tar):
    ctx = _ctx(tmp_path)
    pb.build(ctx, "-t", "app")
    pb.run("import", base_image_tar, "-t", "busybox", env={"SOURCE_DATE_EPOCH": "12345"})
    res = pb.build(ctx, "-t", "app", "--explain-cache")
    assert "--> cache miss: base image changed: sha256:" in res.stderr


def test_no_cache_reruns_everything(pb, tmp_path):
    ctx = _ctx(tmp_path)
    pb.build(ctx, "-t", "app")
    res = pb.build(ctx, "-t", "app", "--no-cache")
    assert "CACHED" not in res.stderr


def test_chain_ids_match_the_layer_tars(pb, tmp_path):
    """diffIDs recomputed here from the blobs; chainIDs from them; the unpacked layer dirs exist under them."""
    import gzip

    ctx = _ctx(tmp_path)
    pb.build(ctx, "-t", "app")
    cfg = pb.config("app")
    diff_ids = ["sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest() for blob in pb.raw_layers("app")]
    assert diff_ids == cfg["rootfs"]["diff_ids"]
    chain = []
    for d in diff_ids:
        chain.append(d if not chain else "sha256:" + hashlib.sha256(f"{chain[-1]} {d}".encode()).hexdigest())
    for c in chain:
        assert os.path.isdir(os.path.join(pb.root, "layers", c.split(":")[1], "diff")), c


def test_source_date_epoch_makes_builds_reproducible(pb, tmp_path):
    ctx = _ctx(tmp_path)
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    first = pb.build(ctx, "-t", "r1", "--no-cache", env=env).stdout.strip()
    second = pb.build(ctx, "-t", "r2", "--no-cache", env=env).stdout.strip()
    assert first == second
    assert pb.config("r1")["created"] == "2023-11-14T22:13:20Z"


def test_bind_mounted_context_is_a_cache_input(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"data.txt": "one\n", "Dockerfile": (
        "FROM busybox\nRUN --mount=type=bind,target=/ctx cp /ctx/data.txt /copied\n")})
    pb.build(ctx, "-t", "bind")
    assert pb.build(ctx, "-t", "bind").stderr.count("--> CACHED") == 1
    with open(os.path.join(ctx, "data.txt"), "w") as fh:
        fh.write("two\n")
    res = pb.build(ctx, "-t", "bind")
    assert "CACHED" not in res.stderr
    assert pb.flatten("bind")["copied"][1] == b"two\n"


def test_metadata_steps_follow_build_args_and_keep_their_timestamps(pb, tmp_path):
    """Metadata steps keep only their timestamps in the cache (issue 11: a config per step made n
    LABEL lines O(n²)); what they compute still follows every input their keys cover."""
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": (
        "FROM busybox\nARG V=0\nLABEL v=$V\nENV E=$V\n" + "".join(f"LABEL l{i}={i}\n" for i in range(200)))})
    one = pb.build(ctx, "-t", "m", "--build-arg", "V=1").stdout.strip()
    cfg = pb.config("m")
    assert cfg["config"]["Labels"]["v"] == "1" and "E=1" in cfg["config"]["Env"]
    assert len(cfg["config"]["Labels"]) == 201 and len(cfg["history"]) >= 203
    again = pb.build(ctx, "-t", "m", "--build-arg", "V=1")
    assert again.stdout.strip() == one and again.stderr.count("--> CACHED") == 203
    two = pb.build(ctx, "-t", "m", "--build-arg", "V=2").stdout.strip()
    assert two != one
    cfg = pb.config("m")
    assert cfg["config"]["Labels"]["v"] == "2" and "E=2" in cfg["config"]["Env"]
    assert len(os.listdir(os.path.join(pb.root, "cache", "meta"))) <= 2   # one record per run of steps
