"""instructions: typed values, stages, targets and BuildKit's checks.

Expected error messages were checked against BuildKit's instructions package.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pybuild.dockerfile import stages as ins
from pybuild.dockerfile.parser import parse
from pybuild.errors import DockerfileError
from pybuild.gostr import printable
from pybuild.dockerfile.stages import (
    AddInstr,
    ArgDef,
    ArgInstr,
    CmdInstr,
    CopyInstr,
    EntrypointInstr,
    EnvInstr,
    ExposeInstr,
    HealthcheckInstr,
    KeyValue,
    OnbuildInstr,
    RunInstr,
    ShellInstr,
    StopSignalInstr,
    parse_go_duration,
    parse_stages,
    select_target,
)


def stages_of(text: str):
    return parse_stages(parse(text.encode()))


def test_stages_and_meta_args() -> None:
    meta, stages = stages_of("ARG A=1 B\nFROM --platform=linux/arm64 img:${A} AS Build\nRUN x\nfrom scratch\nCMD y\n")
    assert meta[0].args == (ArgDef("A", "1"), ArgDef("B", None)) and meta[0].line == 1
    assert [(s.index, s.base_name, s.name, s.platform, s.line) for s in stages] == [
        (0, "img:${A}", "build", "linux/arm64", 2), (1, "scratch", "", "", 4)]
    assert isinstance(stages[0].instructions[0], RunInstr)
    assert isinstance(stages[1].instructions[0], CmdInstr)
    assert select_target(stages) == 1 and select_target(stages, "BUILD") == 0


def test_unknown_target_suggests() -> None:
    _, stages = stages_of("FROM a AS builder\nFROM b\n")
    with pytest.raises(DockerfileError, match=r'target stage "buidler" could not be found \(did you mean builder\?\)'):
        select_target(stages, "buidler")


def test_run_forms_and_flags() -> None:
    _, (stage,) = stages_of('FROM a\nRUN --mount=type=cache,target=/c --mount=type=tmpfs,target=/t --network=none '
                            'echo $HOME\nRUN ["ls", "-l"]\nRUN <<EOF\necho hi\nEOF\n')
    shell, exec_form, heredoc = stage.instructions
    assert shell.cmd == ("echo $HOME",) and shell.prepend_shell
    assert shell.mounts == ("type=cache,target=/c", "type=tmpfs,target=/t") and shell.network == "none"
    assert exec_form.cmd == ("ls", "-l") and not exec_form.prepend_shell
    assert heredoc.files[0].name == "EOF" and heredoc.files[0].data == "echo hi\n"


def test_copy_add_fields() -> None:
    _, (stage,) = stages_of("FROM a\nCOPY --from=b --chown=1:2 --chmod=755 --link --parents --exclude=x --exclude=y "
                            "s1 s2 /d/\nADD --keep-git-dir --unpack=false --checksum=sha256:ab u /d\n"
                            "COPY <<-EOF /f\n\tbody\n\tEOF\n")
    copy, add, heredoc = stage.instructions
    assert isinstance(copy, CopyInstr) and copy.sources == ("s1", "s2") and copy.dest == "/d/"
    assert (copy.from_, copy.chown, copy.chmod, copy.link, copy.parents, copy.excludes) == (
        "b", "1:2", "755", True, True, ("x", "y"))
    assert isinstance(add, AddInstr) and add.keep_git_dir is True and add.unpack is False
    assert add.checksum == "sha256:ab" and add.link is False
    assert heredoc.sources == () and heredoc.contents[0].path == "EOF"
    assert heredoc.contents[0].data == "body\n" and heredoc.contents[0].expand


def test_env_label_arg_values_keep_quotes() -> None:
    _, (stage,) = stages_of('FROM a\nENV A="x y" B=1\nENV OLD some value\nARG C="q" D\n')
    env, old, arg = stage.instructions
    assert isinstance(env, EnvInstr) and env.pairs == (KeyValue("A", '"x y"'), KeyValue("B", "1"))
    assert old.pairs == (KeyValue("OLD", "some value", no_delim=True),)
    assert isinstance(arg, ArgInstr) and arg.args == (ArgDef("C", '"q"'), ArgDef("D", None))


def test_cmd_entrypoint_shell_healthcheck_misc() -> None:
    _, (stage,) = stages_of('FROM a\nCMD echo hi\nENTRYPOINT []\nSHELL ["bash", "-c"]\n'
                            'HEALTHCHECK --interval=1m30s --retries=2 CMD curl x\nHEALTHCHECK NONE\n'
                            'EXPOSE 80 443/tcp 53/udp\nSTOPSIGNAL SIGINT\nONBUILD RUN <<EOF\nx\nEOF\n')
    cmd, ep, shell, hc, none, expose, sig, onbuild = stage.instructions
    assert cmd.cmd == ("echo hi",) and cmd.prepend_shell
    assert isinstance(ep, EntrypointInstr) and ep.cmd is None
    assert isinstance(shell, ShellInstr) and shell.shell == ("bash", "-c")
    assert isinstance(hc, HealthcheckInstr) and hc.test == ("CMD-SHELL", "curl x")
    assert hc.interval == 90 * 10**9 and hc.retries == 2
    assert none.test == ("NONE",)
    assert isinstance(expose, ExposeInstr) and expose.ports == ("443/tcp", "53/udp", "80")
    assert isinstance(sig, StopSignalInstr) and sig.signal == "SIGINT"
    assert isinstance(onbuild, OnbuildInstr) and onbuild.expression == "RUN <<EOF\nx\nEOF"


@pytest.mark.parametrize(("text", "message"), [
    ("FROM a\nCOPY --chwon=1 a b\n", "Dockerfile:2: unknown flag: --chwon (did you mean chown?)"),
    ("FROM a\nRUN --from=x y\n", "Dockerfile:2: unknown flag: --from"),
    ("FROM a\nENV --x=1 A=b\n", "Dockerfile:2: unknown flag: --x"),
    ("FROM a\nCOPY --link=maybe a b\n", "Dockerfile:2: expecting boolean value for flag --link, not: maybe"),
    ("FROM a\nCOPY --from a b\n", "Dockerfile:2: missing a value on flag: --from"),
    ("FROM a\nCOPY --from=a --from=b a b\n", "Dockerfile:2: duplicate flag specified: --from"),
    ("FROM a\nCOPY a\n", "Dockerfile:2: COPY requires at least two arguments, but only one was provided. "
                         "Destination could not be determined"),
    ("FROM a\nUSER\n", "Dockerfile:2: USER requires exactly one argument"),
    ("FROM a\nEXPOSE\n", "Dockerfile:2: EXPOSE requires at least one argument"),
    ("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments"),
    ("FROM a AS 9x\n", 'Dockerfile:1: invalid name for build stage: "9x", name can\'t start with a number or '
                       "contain symbols"),
    ("FROM a AS x\nFROM b AS X\n", 'Dockerfile:2: Duplicate stage name "x", stage names should be unique'),
    ("FROM a\nFORM b\n", "Dockerfile:2: unknown instruction: FORM (did you mean FROM?)"),
    ("RUN x\n", "Dockerfile:1: no build stage in current context"),
    ("FROM a\nONBUILD MAINTAINER x\n", "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("FROM a\nSHELL sh -c\n", "Dockerfile:2: SHELL requires the arguments to be in JSON form"),
    ("FROM a\nHEALTHCHECK NONE x\n", "Dockerfile:2: HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", "Dockerfile:2: --retries cannot be negative (-1)"),
    ("FROM a\nHEALTHCHECK --interval=5 CMD x\n", 'Dockerfile:2: time: missing unit in duration "5"'),
    ("FROM a\nRUN --security=x y\n", 'Dockerfile:2: security "x" is not valid'),
    ("FROM a\nVOLUME [\" \"]\n", "Dockerfile:2: VOLUME specified can not be an empty string"),
    ("FROM a\nCOPY x <<EOF\nEOF\n", "Dockerfile:2: COPY cannot accept a heredoc as a destination"),
])
def test_instruction_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as info:
        stages_of(text)
    assert str(info.value) == message


@pytest.mark.parametrize(("text", "ns"), [("0", 0), ("1s", 10**9), ("1m30s", 90 * 10**9), ("1.5h", 5400 * 10**9),
                                          ("-2ms", -2 * 10**6), ("300us", 300_000), ("1µs", 1000)])
def test_go_duration(text: str, ns: int) -> None:
    assert parse_go_duration(text) == ns


def test_bad_durations() -> None:
    for text in ("", "1", "s", "1x", ".s"):
        with pytest.raises(DockerfileError):
            stages_of(f"FROM a\nHEALTHCHECK --timeout={text} CMD x\n" if text else
                      "FROM a\nHEALTHCHECK --timeout=1 CMD x\n")


# --- typed values against BuildKit: corpus/own/<case>/instructions.json --------------------
# Each file holds BuildKit's instructions.Parse result (its exported fields) for the case.

OWN = Path(__file__).parent / "corpus" / "own"
TYPED_CASES = sorted(p.parent for p in OWN.glob("*/instructions.json"))


def _kv(p: KeyValue) -> dict[str, object]:
    return {"Key": p.key, "Value": p.value, "NoDelim": p.no_delim}


def _as_buildkit(x: object) -> dict[str, object]:
    """Our instruction in the shape of BuildKit's JSON-encoded command."""
    if isinstance(x, ins.EnvInstr | ins.LabelInstr):
        return {"Env" if isinstance(x, ins.EnvInstr) else "Labels": [_kv(p) for p in x.pairs]}
    if isinstance(x, ArgInstr):
        return {"Args": [{"Key": a.key, "Value": a.default} for a in x.args]}
    if isinstance(x, ins.MaintainerInstr):
        return {"Maintainer": x.maintainer}
    if isinstance(x, AddInstr | CopyInstr):
        out: dict[str, object] = {
            "DestPath": x.dest, "SourcePaths": list(x.sources) or None,
            "SourceContents": [{"Path": c.path, "Data": c.data, "Expand": c.expand} for c in x.contents] or None,
            "Chown": x.chown, "Chmod": x.chmod, "Link": x.link, "ExcludePatterns": list(x.excludes) or None}
        if isinstance(x, AddInstr):
            out.update(KeepGitDir=x.keep_git_dir, Checksum=x.checksum, Unpack=x.unpack)
        else:
            out.update(From=x.from_, Parents=x.parents)
        return out
    if isinstance(x, RunInstr | CmdInstr | EntrypointInstr):
        out = {"CmdLine": None if x.cmd is None else list(x.cmd), "PrependShell": x.prepend_shell,
               "Files": [{"Name": f.name, "Data": f.data, "Chomp": f.chomp} for f in x.files] or None}
        if isinstance(x, RunInstr):
            out["FlagsUsed"] = sorted(x.flags_used)
        return out
    if isinstance(x, HealthcheckInstr):
        health: dict[str, object] = {"Test": list(x.test)}
        for key, value in (("Interval", x.interval), ("Timeout", x.timeout), ("StartPeriod", x.start_period),
                           ("StartInterval", x.start_interval), ("Retries", x.retries)):
            if value:
                health[key] = value
        return {"Health": health}
    simple = {ExposeInstr: ("Ports", "ports"), ins.UserInstr: ("User", "user"), ins.VolumeInstr: ("Volumes", "volumes"),
              StopSignalInstr: ("Signal", "signal"), ins.WorkdirInstr: ("Path", "path"), ShellInstr: ("Shell", "shell"),
              OnbuildInstr: ("Expression", "expression")}
    key, attr = simple[type(x)]
    value = getattr(x, attr)
    return {key: list(value) if isinstance(value, tuple) else value}


def test_typed_cases_exist() -> None:
    assert len(TYPED_CASES) >= 15


@pytest.mark.parametrize("case", TYPED_CASES, ids=[c.name for c in TYPED_CASES])
def test_typed_values_match_buildkit(case: Path) -> None:
    want = json.loads((case / "instructions.json").read_text())
    meta, stages = parse_stages(parse((case / "Dockerfile").read_bytes()))
    got = {"meta": [_as_buildkit(a) for a in meta],
           "stages": [{"Name": s.name, "BaseName": s.base_name, "Platform": s.platform, "SourceCode": s.original,
                       "Commands": [_as_buildkit(i) for i in s.instructions]} for s in stages]}
    # BuildKit's JSON encoder shows each undecodable byte as U+FFFD.
    assert json.loads(printable(json.dumps(got, ensure_ascii=False))) == want


def test_flags_used_once() -> None:
    _, (stage,) = stages_of("FROM a\nRUN --mount=type=tmpfs,target=/a --mount=type=tmpfs,target=/b x\n")
    assert stage.instructions[0].flags_used == ("mount",)
