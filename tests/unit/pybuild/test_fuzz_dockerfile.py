"""Fuzzing a build's front end (issue 18): everything pybuild does with a Dockerfile before a step
touches a filesystem, as builder.build does it: parse, stages, UTF-8 checks, the target, the global
ARG scope, each stage's base name expanded, each instruction typed with its flags, and every
metadata instruction (ENV ARG LABEL USER EXPOSE CMD ENTRYPOINT VOLUME SHELL STOPSIGNAL HEALTHCHECK
ONBUILD MAINTAINER) prepared and applied to a config. The result is a DockerfileError/PybuildError
(one printable line) or a config that serialises; never another exception.

The parser alone has its own fuzzers (test_dockerfile_parser.py); this one reaches the code after it.
PYRUNC_FUZZ_EXAMPLES=N runs N examples (default: a short run).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybuild import utf8
from pybuild.dockerfile import keywords, parser as dockerfile_parser, stages as instructions
from pybuild.builder import _stage_refs
from pybuild.errors import PybuildError
from pybuild.image import ImageConfig, to_json
from pybuild.dockerfile.shell_words import ShellLex, default_args, meta_arg_env
from pybuild.steps.contract import BuildEnv, StageState
from pybuild.steps.table import step_for

EXAMPLES = int(os.environ.get("PYRUNC_FUZZ_EXAMPLES", "0")) or 300
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Every row of the keyword table, FROM first: a new instruction is fuzzed without an edit here.
KEYWORDS = ["FROM", *(name.upper() for name in keywords.KEYWORDS if name != "from")]
WORDS = ["a", "A=b", "a=", "=b", "${a}", "${a:-x}", "${a:+y}", "${a?err}", "$a", "${", "}", "$", "\\", "\\\n", '"',
         "'", "[", "]", '["a","b"]', '["a",1]', "[]", "{}", "80", "80/tcp", "80-90/udp", "99999999999", "0", "-1",
         "1/xyz", "SIGKILL", "9", "SIGNOPE", "root", "1000:1000", "user:group", ":", "NONE", "CMD", "--interval=1s",
         "--timeout=0s", "--retries=-3", "--start-period=1h", "--start-interval=5s", "--interval=x", "--from=0",
         "--platform=$BUILDPLATFORM", "--mount=type=cache,target=/x", "--chmod=999", "--link", "AS", "base",
         "é", "\u202e", "\u00a0", "\x00", "\udcff", "# comment", "x" * 300, " ", "\t", "scratch", "busybox"]


KEYS = ["a", "A_B", "PATH", "x-y", "é", "HOME", "1", "a.b", "a/b"]
VALUE = st.one_of(st.sampled_from(WORDS), st.text(min_size=1, max_size=6).filter(lambda s: s.strip() and "\n" not in s))
TEMPLATES = {
    "ENV": ["{k}={v}", "{k} {v}", "{k}={v} {k}2={w}", '{k}="{v} {w}"'],
    "ARG": ["{k}", "{k}={v}"],
    "LABEL": ["{k}={v}", '"{k}"="{v}" {k}2={w}'],
    "USER": ["{v}", "{k}:{v}"],
    "EXPOSE": ["{v}", "{v} {w}"],
    "CMD": ['["{v}", "{w}"]', "{v} {w}", "[]"],
    "ENTRYPOINT": ['["{v}"]', "{v} {w}"],
    "SHELL": ['["{v}", "{w}"]'],
    "VOLUME": ["{v}", '["{v}", "{w}"]'],
    "STOPSIGNAL": ["{v}"],
    "HEALTHCHECK": ["{v} CMD {w}", "NONE", "CMD {v}", "{v} {w} CMD-SHELL {w}"],
    "ONBUILD": ["{kw} {v}", "{kw} {v} {w}"],
    "MAINTAINER": ["{v}"],
}
FROMS = ["scratch", "busybox", "${IMG}", "$IMG:tag", "busybox AS base", "scratch AS s2", "base",
         "--platform=$BUILDPLATFORM busybox", "--platform=linux/arm64 busybox", "0", "busybox@sha256:" + "a" * 64]


@st.composite
def dockerfiles(draw) -> bytes:  # type: ignore[no-untyped-def]
    lines = []
    for _ in range(draw(st.integers(0, 3))):
        lines.append("ARG " + draw(st.sampled_from(["a", "a=1", "b=${a}", "IMG=busybox", "x=${a:-$b}"])))
    for _stage in range(draw(st.integers(1, 3))):
        lines.append("FROM " + draw(st.sampled_from(FROMS + WORDS[:12])))
        for _ in range(draw(st.integers(0, 8))):
            keyword = draw(st.sampled_from(KEYWORDS[1:]))
            if draw(st.integers(0, 9)) == 0:  # now and then a line of anything
                words = draw(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=4)), max_size=4))
                lines.append(keyword + " " + " ".join(words))
                continue
            slots = {"k": draw(st.sampled_from(KEYS)), "v": draw(VALUE), "w": draw(VALUE),
                     "kw": draw(st.sampled_from(KEYWORDS[1:]))}
            lines.append(keyword + " " + draw(st.sampled_from(TEMPLATES.get(keyword, ["{v} {w}"]))).format(**slots))
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def front(data: bytes) -> list[ImageConfig]:
    """What builder.build does before it touches a filesystem; returns each stage's final config."""
    result = dockerfile_parser.parse(data, "Dockerfile")
    meta, stages = instructions.parse_stages(result)
    utf8.check_dockerfile(result, "Dockerfile")
    target = instructions.select_target(stages, "")
    lex = ShellLex(result.escape)
    global_args = meta_arg_env([(a.key, a.default) for m in meta for a in m.args], {}, lex,
                               default_args(target=stages[target].name))
    env = BuildEnv(store=None, cache=None, context=None, temp=None, progress=None, lex=lex,  # type: ignore[arg-type]
                   runtime=["pyrunc"])
    configs = []
    for stage in stages:
        lex.process_word(stage.base_name, global_args)
        _stage_refs(stage)
        st_ = StageState(config=ImageConfig(architecture="amd64", os="linux"), layers=(), key="scratch",
                         base_digest="scratch", global_args=dict(global_args))
        for ins in stage.instructions:
            step = step_for(ins)
            if not step.metadata_only:
                continue
            prep = step.prepare(env, st_, ins)
            st_.config = step.apply(env, st_, ins, prep).config
        configs.append(st_.config)
    return configs


@FUZZ
@given(dockerfiles())
def test_front_end_of_a_fuzzed_dockerfile(data: bytes) -> None:
    try:
        configs = front(data)
    except PybuildError as err:
        text = str(err)
        assert text and "\n" not in text.strip("\n"), repr(text)
        text.encode("utf-8")
        return
    for config in configs:
        to_json(config).decode("utf-8")


@FUZZ
@given(st.binary(max_size=200))
def test_front_end_of_random_bytes(data: bytes) -> None:
    try:
        front(b"FROM scratch\n" + data)
    except PybuildError as err:
        str(err).encode("utf-8")
