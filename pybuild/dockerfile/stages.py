"""Parsed nodes -> typed, frozen instructions and build stages (BuildKit's
`instructions` package), with the checks BuildKit makes at this layer.

    result = dockerfile_parser.parse(data)
    meta_args, stages = parse_stages(result)      # ARGs before the first FROM, stages
    stage = stages[select_target(stages, "build")]  # --target (default: last stage)
    for instr in stage.instructions: ...          # RunInstr, CopyInstr, EnvInstr, ...
                                                  # (types in instructions.py, re-exported here)

Each keyword's reader is in its row of `keywords.KEYWORDS`; this module dispatches to it,
names the rows in "unknown instruction" (with a "did you mean" hint) and groups the records
into stages. Checks (each raises DockerfileError "Dockerfile:LINE: message", BuildKit's
wording): in the readers, argument counts, unknown and repeated flags and bad flag values per
instruction, ONBUILD ONBUILD/FROM/MAINTAINER, SHELL not in JSON form, HEALTHCHECK types and
durations, RUN --network and --security values, heredocs as a COPY/ADD destination; here,
unknown instructions, instructions before the first FROM, invalid and duplicate stage names
(BuildKit only lints duplicates; a build here must know which stage a name means).

Nothing is expanded here: values are kept as written (ENV/LABEL/ARG values keep
their quotes, as BuildKit keeps them, for the shell lexer to process later).
`RunInstr.mounts` are the raw `--mount` specs; the builder parses them.
"""

from __future__ import annotations

from pybuild.dockerfile import keywords
from pybuild.dockerfile.flags import FlagError, Flags, parse_go_duration, suggest  # parse_go_duration: re-exported
from pybuild.dockerfile.instructions import (  # re-exported: the public types
    Instruction,
    KeyValue,
    ArgDef,
    SourceContent,
    InlineFile,
    EnvInstr,
    LabelInstr,
    ArgInstr,
    MaintainerInstr,
    AddInstr,
    CopyInstr,
    RunInstr,
    CmdInstr,
    EntrypointInstr,
    HealthcheckInstr,
    ExposeInstr,
    UserInstr,
    VolumeInstr,
    StopSignalInstr,
    WorkdirInstr,
    ShellInstr,
    OnbuildInstr,
    Stage,
)
from pybuild.dockerfile.keywords import StageStart
from pybuild.dockerfile.parser import Node, Result
from pybuild.errors import DockerfileError
from pybuild.gostr import go_lower, go_quote, go_trim_space, go_upper, printable
from pyrunc.record import replace


def _node_args(node: Node) -> list[str]:
    """BuildKit's nodeArgs: an ONBUILD trigger contributes its keyword and its args."""
    out: list[str] = []
    while node.sub is not None:
        node = node.sub
        out.append(node.value)
    return out + node.args


def parse_instruction(node: Node, filename: str = "Dockerfile") -> Instruction | StageStart:
    """One node -> its row's record, or (base, name, platform) for FROM."""
    keyword = go_lower(node.value)
    req = keywords.Req(node, keyword, _node_args(node), Flags(list(node.flags)))
    try:
        row = keywords.KEYWORDS.get(keyword)
        if row is None:
            raise FlagError(suggest(f"unknown instruction: {node.value}", node.value,
                                    [go_upper(n) for n in sorted(keywords.KEYWORDS)], case_sensitive=False))
        return row.read(req)
    except FlagError as err:
        raise DockerfileError(printable(str(err)), node.start_line, filename) from None


def parse_stages(result: Result) -> tuple[list[ArgInstr], list[Stage]]:
    """All instructions, grouped: (ARGs before the first FROM, stages in order)."""
    meta: list[ArgInstr] = []
    stages: list[Stage] = []
    body: list[Instruction] = []
    names: dict[str, int] = {}
    fn = result.filename

    def close() -> None:
        if stages:
            stages[-1] = replace(stages[-1], instructions=tuple(body))

    for node in result.nodes:
        parsed = parse_instruction(node, fn)
        if isinstance(parsed, tuple):
            close()
            body = []
            base, name, platform = parsed
            if name:
                if name in names:
                    raise DockerfileError(f"Duplicate stage name {go_quote(name)}, stage names should be unique",
                                          node.start_line, fn)
                names[name] = len(stages)
            stages.append(Stage(len(stages), base, name, platform, node.start_line, go_trim_space(node.original)))
            continue
        if not stages:
            if isinstance(parsed, ArgInstr):
                meta.append(parsed)
                continue
            raise DockerfileError("no build stage in current context", node.start_line, fn)
        body.append(parsed)
    close()
    return meta, stages


def select_target(stages: list[Stage], target: str = "") -> int:
    """Index of the stage `--target` names (case-insensitive); "" means the last."""
    if not stages:
        raise DockerfileError("no build stage in current context", None)
    if not target:
        return len(stages) - 1
    for stage in stages:
        if stage.name and stage.name == go_lower(target):
            return stage.index
    names = [s.name for s in stages if s.name]
    raise DockerfileError(suggest(f"target stage {go_quote(target)} could not be found", target, names, True), None)
