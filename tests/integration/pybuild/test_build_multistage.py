"""Multi-stage builds: --target, only the needed stages, COPY --from a stage or an image."""

from __future__ import annotations

from test_build_common import base_image_tar, pb, write_context  # noqa: F401

MULTI = """\
ARG BASE=busybox
FROM ${BASE} AS builder
RUN mkdir -p /out && echo compiled > /out/app && echo junk > /junk

FROM busybox AS broken
RUN echo this stage must never run && exit 7

FROM builder AS tester
RUN cat /out/app > /tested

FROM busybox
COPY --from=builder /out/app /usr/local/bin/app
COPY --from=0 /out/app /from-index
COPY --from=busybox /bin/busybox /bb-copy
CMD ["/usr/local/bin/app"]
"""


def test_final_stage_builds_only_what_it_needs(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": MULTI})
    res = pb.build(ctx, "-t", "multi")
    assert "must never run" not in res.stderr
    # builder and the final stage; `broken` and `tester` are not needed (--from=busybox is an image)
    assert "[stage 1/2]" in res.stderr and "[stage 2/2]" in res.stderr and "[stage 3/" not in res.stderr
    files = pb.flatten("multi")
    assert files["usr/local/bin/app"][1] == b"compiled\n"
    assert "junk" not in files and "tested" not in files
    assert files["from-index"][1] == b"compiled\n"
    assert files["bb-copy"][1] == open("/bin/busybox", "rb").read()
    assert pb.config("multi")["config"]["Cmd"] == ["/usr/local/bin/app"]


def test_target_stops_at_the_named_stage(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": MULTI})
    res = pb.build(ctx, "-t", "tester", "--target", "tester")
    assert "must never run" not in res.stderr
    files = pb.flatten("tester")
    assert files["tested"][1] == b"compiled\n" and files["junk"][1] == b"junk\n"
    # the stage built on another stage shares its layers
    assert pb.manifest("tester")["layers"][:2] == pb.manifest("tester")["layers"][:2]


def test_target_of_broken_stage_fails(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": MULTI})
    res = pb.build(ctx, "--target", "broken", check=False)
    assert res.returncode != 0
    assert "Dockerfile:6: RUN echo this stage must never run && exit 7: exit code 7" in res.stderr


def test_unknown_target(pb, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": MULTI})
    res = pb.build(ctx, "--target", "nosuch", check=False)
    assert res.returncode != 0 and "nosuch" in res.stderr and "Traceback" not in res.stderr
