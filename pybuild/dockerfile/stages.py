"""Parsed nodes -> typed, frozen instructions and build stages (BuildKit's
`instructions` package), with the checks BuildKit makes at this layer.

    result = dockerfile_parser.parse(data)
    meta_args, stages = parse_stages(result)      # ARGs before the first FROM, stages
    stage = stages[select_target(stages, "build")]  # --target (default: last stage)
    for instr in stage.instructions: ...          # RunInstr, CopyInstr, EnvInstr, ...
                                                  # (types in instruction_types, re-exported here)

Checks (each raises DockerfileError "Dockerfile:LINE: message", BuildKit's wording):
argument counts, unknown and repeated flags and bad flag values per instruction,
unknown instructions (with a "did you mean" hint), instructions before the
first FROM, invalid and duplicate stage names (BuildKit only lints duplicates;
a build here must know which stage a name means), ONBUILD ONBUILD/FROM/MAINTAINER,
SHELL not in JSON form, HEALTHCHECK types and durations, RUN --network and
--security values, heredocs as a COPY/ADD destination.

Nothing is expanded here: values are kept as written (ENV/LABEL/ARG values keep
their quotes, as BuildKit keeps them, for the shell lexer to process later).
`RunInstr.mounts` are the raw `--mount` specs; the builder parses them.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from pybuild.dockerfile.parser import Node, Result, chomp_heredoc, must_parse_heredoc
from pybuild.errors import DockerfileError
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
from pybuild.gostr import go_lower, go_quote, go_trim_space, go_upper, printable
from pybuild.dockerfile.flags import FlagError, Flags, parse_go_duration, suggest



_Err = FlagError  # one message-without-location error for the whole layer


# --- per-instruction parsers -------------------------------------------------------------


@dataclass
class _Req:
    node: Node
    keyword: str
    args: list[str]
    flags: Flags

    @property
    def base(self) -> dict[str, object]:
        n = self.node
        return {"keyword": self.keyword, "line": n.start_line, "end_line": n.end_line, "original": n.original,
                "flags": tuple(n.flags)}


def _node_args(node: Node) -> list[str]:
    """BuildKit's nodeArgs: an ONBUILD trigger contributes its keyword and its args."""
    out: list[str] = []
    while node.sub is not None:
        node = node.sub
        out.append(node.value)
    return out + node.args


def _at_least_one(cmd: str) -> _Err:
    return _Err(f"{cmd} requires at least one argument")


def _exactly_one(cmd: str) -> _Err:
    return _Err(f"{cmd} requires exactly one argument")


def _kvps(args: list[str], cmd: str) -> tuple[KeyValue, ...]:
    if not args:
        raise _at_least_one(cmd)
    if len(args) % 3:
        raise _Err(f"Bad input to {cmd}, too many arguments")
    out = []
    for j in range(0, len(args), 3):
        if not args[j]:
            raise _Err(f"{cmd} names can not be blank")
        out.append(KeyValue(args[j], args[j + 1], args[j + 2] == ""))
    return tuple(out)


def _env(r: _Req) -> Instruction:
    r.flags.parse()
    return EnvInstr(**r.base, pairs=_kvps(r.args, "ENV"))


def _label(r: _Req) -> Instruction:
    r.flags.parse()
    return LabelInstr(**r.base, pairs=_kvps(r.args, "LABEL"))


def _maintainer(r: _Req) -> Instruction:
    if len(r.args) != 1:
        raise _exactly_one("MAINTAINER")
    r.flags.parse()
    return MaintainerInstr(**r.base, maintainer=r.args[0])


def _sources_and_dest(r: _Req, cmd: str) -> dict[str, object]:
    srcs, dest = r.args[:-1], r.args[-1]
    if must_parse_heredoc(dest) is not None:
        raise _Err(f"{cmd} cannot accept a heredoc as a destination")
    bodies = {h.name: h for h in r.node.heredocs}
    paths: list[str] = []
    contents: list[SourceContent] = []
    for src in srcs:
        doc = must_parse_heredoc(src)
        if doc is None:
            paths.append(src)
            continue
        found = bodies.get(doc.name)
        data = found.content if found else ""
        contents.append(SourceContent(doc.name, chomp_heredoc(data) if doc.chomp else data, doc.expand))
    return {"sources": tuple(paths), "dest": dest, "contents": tuple(contents)}


def _add(r: _Req) -> Instruction:
    if len(r.args) < 2:
        raise _Err("ADD requires at least two arguments, but only one was provided. Destination could not be determined")
    f = r.flags
    f.string("chown"), f.string("chmod"), f.bool("link"), f.bool("keep-git-dir"), f.string("checksum")
    f.bool("unpack"), f.strings("exclude")
    f.parse()
    return AddInstr(**r.base, **_sources_and_dest(r, "ADD"), chown=f.values["chown"], chmod=f.values["chmod"],
                    link=f.true("link"), keep_git_dir=f.optional_bool("keep-git-dir"),
                    checksum=f.values["checksum"], unpack=f.optional_bool("unpack"),
                    excludes=tuple(f.lists["exclude"]))


def _copy(r: _Req) -> Instruction:
    if len(r.args) < 2:
        raise _Err("COPY requires at least two arguments, but only one was provided. Destination could not be determined")
    f = r.flags
    f.string("chown"), f.string("from"), f.string("chmod"), f.bool("link"), f.strings("exclude"), f.bool("parents")
    f.parse()
    return CopyInstr(**r.base, **_sources_and_dest(r, "COPY"), from_=f.values["from"], chown=f.values["chown"],
                     chmod=f.values["chmod"], link=f.true("link"), parents=f.true("parents"),
                     excludes=tuple(f.lists["exclude"]))


_STAGE_NAME = re.compile(r"[a-z][a-z0-9-_.]*\Z")


def _stage_name(args: list[str]) -> str:
    if len(args) == 3 and go_lower(args[1]) == "as":
        name = go_lower(args[2])
        if not _STAGE_NAME.match(name):
            raise _Err(f"invalid name for build stage: {go_quote(args[2])}, "
                       "name can't start with a number or contain symbols")
        return name
    if len(args) != 1:
        raise _Err("FROM requires either one or three arguments")
    return ""


def _onbuild(r: _Req) -> Instruction:
    if not r.args:
        raise _at_least_one("ONBUILD")
    r.flags.parse()
    trigger = go_upper(r.args[0].strip())
    if trigger == "ONBUILD":
        raise _Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise _Err(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = re.sub(r"(?i)\A[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*", "", r.node.original, count=1)
    for doc in r.node.heredocs:
        expression += "\n" + doc.content + doc.name
    return OnbuildInstr(**r.base, expression=expression)


def _workdir(r: _Req) -> Instruction:
    if len(r.args) != 1:
        raise _exactly_one("WORKDIR")
    r.flags.parse()
    return WorkdirInstr(**r.base, path=r.args[0])


def _cmdline(r: _Req) -> tuple[tuple[str, ...], bool, tuple[InlineFile, ...]]:
    files = tuple(InlineFile(h.name, h.content, h.chomp) for h in r.node.heredocs)
    args = r.args if r.node.json or not r.args else [" ".join(r.args)]
    return tuple(args), not r.node.json, files


def _run(r: _Req) -> Instruction:
    f = r.flags
    f.strings("mount"), f.string("network", "default"), f.string("security", "sandbox"), f.strings("device")
    f.parse()
    cmd, shell, files = _cmdline(r)
    network, security = f.values["network"], f.values["security"]
    if network not in ("default", "none", "host", "bridge"):  # bridge: pybuild's own, = default
        raise _Err(f"invalid network mode {go_quote(network)}")
    if security not in ("insecure", "sandbox"):
        raise _Err(f"security {go_quote(security)} is not valid")
    return RunInstr(**r.base, cmd=cmd, prepend_shell=shell, files=files, mounts=tuple(f.lists["mount"]),
                    network=network, security=security, devices=tuple(f.lists["device"]),
                    flags_used=tuple(f.used))


def _cmd(r: _Req) -> Instruction:
    r.flags.parse()
    cmd, shell, files = _cmdline(r)
    return CmdInstr(**r.base, cmd=cmd, prepend_shell=shell, files=files)


def _entrypoint(r: _Req) -> Instruction:
    r.flags.parse()
    cmd, shell, files = _cmdline(r)
    return EntrypointInstr(**r.base, cmd=cmd or None, prepend_shell=shell, files=files)


def _interval(f: Flags, name: str) -> int:
    value = f.values[name]
    if not value:
        return 0
    d = parse_go_duration(value)
    if d == 0:
        return 0
    if d < 10**6:
        raise _Err(f'Interval "{name}" cannot be less than 1ms')
    return d


def _healthcheck(r: _Req) -> Instruction:
    if not r.args:
        raise _at_least_one("HEALTHCHECK")
    typ, args = go_upper(r.args[0]), r.args[1:]
    if typ == "NONE":
        if args:
            raise _Err("HEALTHCHECK NONE takes no arguments")
        return HealthcheckInstr(**r.base, test=("NONE",))
    f = r.flags
    for name in ("interval", "timeout", "start-period", "start-interval", "retries"):
        f.string(name)
    f.parse()
    if typ != "CMD":
        raise _Err(f"Unknown type {go_quote(typ)} in HEALTHCHECK (try CMD)")
    cmd = args if r.node.json or not args else [" ".join(args)]
    if not cmd:
        raise _Err("Missing command after HEALTHCHECK CMD")
    test = ("CMD" if r.node.json else "CMD-SHELL", *cmd)
    retries = 0
    if f.values["retries"]:
        text = f.values["retries"]
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise _Err(f'strconv.ParseInt: parsing {go_quote(text)}: invalid syntax')
        retries = int(text)
        if not -(2**31) <= retries < 2**31:
            raise _Err(f'strconv.ParseInt: parsing {go_quote(text)}: value out of range')
        if retries < 0:
            raise _Err(f"--retries cannot be negative ({retries})")
    return HealthcheckInstr(**r.base, test=test, interval=_interval(f, "interval"), timeout=_interval(f, "timeout"),
                            start_period=_interval(f, "start-period"),
                            start_interval=_interval(f, "start-interval"), retries=retries)


def _expose(r: _Req) -> Instruction:
    if not r.args:
        raise _at_least_one("EXPOSE")
    r.flags.parse()
    return ExposeInstr(**r.base, ports=tuple(sorted(r.args, key=lambda p: p.encode("utf-8", "surrogateescape"))))


def _user(r: _Req) -> Instruction:
    if len(r.args) != 1:
        raise _exactly_one("USER")
    r.flags.parse()
    return UserInstr(**r.base, user=r.args[0])


def _volume(r: _Req) -> Instruction:
    if not r.args:
        raise _at_least_one("VOLUME")
    r.flags.parse()
    vols = []
    for v in r.args:
        v = v.strip(" \t\n\v\f\r\x85\xa0")
        if not v:
            raise _Err("VOLUME specified can not be an empty string")
        vols.append(v)
    return VolumeInstr(**r.base, volumes=tuple(vols))


def _stopsignal(r: _Req) -> Instruction:
    if len(r.args) != 1:
        raise _exactly_one("STOPSIGNAL")
    return StopSignalInstr(**r.base, signal=r.args[0])


def _arg(r: _Req) -> Instruction:
    if not r.args:
        raise _at_least_one("ARG")
    defs = []
    for word in r.args:
        if "=" in word:
            key, _, value = word.partition("=")
            if not key:
                raise _Err("ARG names can not be blank")
            defs.append(ArgDef(key, value))
        else:
            defs.append(ArgDef(word, None))
    return ArgInstr(**r.base, args=tuple(defs))


def _shell(r: _Req) -> Instruction:
    r.flags.parse()
    if not r.args:
        raise _at_least_one("SHELL")
    if not r.node.json:
        raise _Err("SHELL requires the arguments to be in JSON form")
    return ShellInstr(**r.base, shell=tuple(r.args))


# The one table of what each keyword reads: keyword -> its parser (declares and checks its flags,
# counts its arguments, returns its typed record). FROM is handled by parse_stages.
PARSERS = {"env": _env, "maintainer": _maintainer, "label": _label, "add": _add, "copy": _copy,
            "onbuild": _onbuild, "workdir": _workdir, "run": _run, "cmd": _cmd, "healthcheck": _healthcheck,
            "entrypoint": _entrypoint, "expose": _expose, "user": _user, "volume": _volume,
            "stopsignal": _stopsignal, "arg": _arg, "shell": _shell}


INSTRUCTION_NAMES = tuple(sorted([*PARSERS, "from"]))


def _from(r: _Req) -> tuple[str, str, str]:
    name = _stage_name(r.args)
    r.flags.string("platform")
    r.flags.parse()
    return r.args[0], name, r.flags.values["platform"]


def parse_instruction(node: Node, filename: str = "Dockerfile") -> Instruction | tuple[str, str, str]:
    """One node -> an Instruction, or (base, name, platform) for FROM."""
    keyword = go_lower(node.value)
    req = _Req(node, keyword, _node_args(node), Flags(list(node.flags)))
    try:
        if keyword == "from":
            return _from(req)
        parser = PARSERS.get(keyword)
        if parser is None:
            raise _Err(suggest(f"unknown instruction: {node.value}", node.value,
                                [go_upper(n) for n in INSTRUCTION_NAMES], case_sensitive=False))
        return parser(req)
    except _Err as err:
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
            stages[-1] = dataclasses.replace(stages[-1], instructions=tuple(body))

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
