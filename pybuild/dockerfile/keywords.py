"""KEYWORDS: the one table of Dockerfile instructions. A row says, for one keyword, how its line
splits into arguments (BuildKit's line parser), which record it becomes and the reader that
makes that record (flags declared, arguments counted, BuildKit's messages), an example line,
whether it takes heredoc bodies and whether it may follow ONBUILD.
Everything else that depends on the keyword derives from the row:

    parser.py    splits a line with `split` (a keyword without a row: one empty argument, as
                 BuildKit does), reads heredoc bodies where `heredocs` says so
    stages.py    `read` → the typed record; "unknown instruction" and its "did you mean" hint
                 name the rows; `pybuild parse` prints the record
    utf8.py      the bodies that become a command line (`Heredocs.COMMAND`) must be UTF-8
    steps/       a Step declares the `record` it runs (`record = RunInstr`, `@config_step(EnvInstr)`);
                 tests/unit/pybuild/test_steps.py fails while a row's record has no step or a
                 step's record no row

Adding an instruction: its record in `instructions.py`, its reader here, its row in KEYWORDS,
its step in `pybuild/steps/` (docs/ARCHITECTURE.md, "Where to add a Dockerfile instruction").
The parser and stages look the table up when they run (`keywords.KEYWORDS`), so a test can
monkeypatch a copy with one more row.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from pybuild.dockerfile import lines
from pybuild.dockerfile.flags import FlagError, Flags, parse_go_duration
from pybuild.dockerfile.heredocs import chomp_heredoc, must_parse_heredoc
from pybuild.dockerfile.instructions import (AddInstr, ArgDef, ArgInstr, CmdInstr, CopyInstr, EntrypointInstr,
                                             EnvInstr, ExposeInstr, HealthcheckInstr, InlineFile, Instruction,
                                             KeyValue, LabelInstr, MaintainerInstr, OnbuildInstr, RunInstr,
                                             ShellInstr, SourceContent, StopSignalInstr, UserInstr, VolumeInstr,
                                             WorkdirInstr)
from pybuild.gostr import go_lower, go_quote, go_upper

if TYPE_CHECKING:
    from pybuild.dockerfile.parser import Node

_Err = FlagError  # one message-without-location error for the whole layer
StageStart = tuple[str, str, str]  # what FROM reads: (base, stage name, platform)


@dataclass
class Req:
    """What a reader is given: the node, its lowercased keyword, its arguments (an ONBUILD
    trigger's keyword first) and its flag words, for the reader to declare and check."""

    node: Node
    keyword: str
    args: list[str]
    flags: Flags

    @property
    def base(self) -> dict[str, object]:
        """The fields every record has (`Instruction`)."""
        n = self.node
        return {"keyword": self.keyword, "line": n.start_line, "end_line": n.end_line, "original": n.original,
                "flags": tuple(n.flags)}

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


def _env(r: Req) -> Instruction:
    r.flags.parse()
    return EnvInstr(**r.base, pairs=_kvps(r.args, "ENV"))


def _label(r: Req) -> Instruction:
    r.flags.parse()
    return LabelInstr(**r.base, pairs=_kvps(r.args, "LABEL"))


def _maintainer(r: Req) -> Instruction:
    if len(r.args) != 1:
        raise _exactly_one("MAINTAINER")
    r.flags.parse()
    return MaintainerInstr(**r.base, maintainer=r.args[0])


def _sources_and_dest(r: Req, cmd: str) -> dict[str, object]:
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


def _add(r: Req) -> Instruction:
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


def _copy(r: Req) -> Instruction:
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


def _onbuild(r: Req) -> Instruction:
    if not r.args:
        raise _at_least_one("ONBUILD")
    r.flags.parse()
    trigger = go_upper(r.args[0].strip())
    if trigger == "ONBUILD":
        raise _Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in (go_upper(name) for name, row in KEYWORDS.items() if not row.trigger):  # MAINTAINER, FROM
        raise _Err(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = re.sub(r"(?i)\A[\t\n\f\r ]*ONBUILD[\t\n\f\r ]*", "", r.node.original, count=1)
    for doc in r.node.heredocs:
        expression += "\n" + doc.content + doc.name
    return OnbuildInstr(**r.base, expression=expression)


def _workdir(r: Req) -> Instruction:
    if len(r.args) != 1:
        raise _exactly_one("WORKDIR")
    r.flags.parse()
    return WorkdirInstr(**r.base, path=r.args[0])


def _cmdline(r: Req) -> tuple[tuple[str, ...], bool, tuple[InlineFile, ...]]:
    files = tuple(InlineFile(h.name, h.content, h.chomp) for h in r.node.heredocs)
    args = r.args if r.node.json or not r.args else [" ".join(r.args)]
    return tuple(args), not r.node.json, files


def _run(r: Req) -> Instruction:
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


def _cmd(r: Req) -> Instruction:
    r.flags.parse()
    cmd, shell, files = _cmdline(r)
    return CmdInstr(**r.base, cmd=cmd, prepend_shell=shell, files=files)


def _entrypoint(r: Req) -> Instruction:
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


def _healthcheck(r: Req) -> Instruction:
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


def _expose(r: Req) -> Instruction:
    if not r.args:
        raise _at_least_one("EXPOSE")
    r.flags.parse()
    return ExposeInstr(**r.base, ports=tuple(sorted(r.args, key=lambda p: p.encode("utf-8", "surrogateescape"))))


def _user(r: Req) -> Instruction:
    if len(r.args) != 1:
        raise _exactly_one("USER")
    r.flags.parse()
    return UserInstr(**r.base, user=r.args[0])


def _volume(r: Req) -> Instruction:
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


def _stopsignal(r: Req) -> Instruction:
    if len(r.args) != 1:
        raise _exactly_one("STOPSIGNAL")
    return StopSignalInstr(**r.base, signal=r.args[0])


def _arg(r: Req) -> Instruction:
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


def _shell(r: Req) -> Instruction:
    r.flags.parse()
    if not r.args:
        raise _at_least_one("SHELL")
    if not r.node.json:
        raise _Err("SHELL requires the arguments to be in JSON form")
    return ShellInstr(**r.base, shell=tuple(r.args))


def _from(r: Req) -> tuple[str, str, str]:
    name = _stage_name(r.args)
    r.flags.string("platform")
    r.flags.parse()
    return r.args[0], name, r.flags.values["platform"]


class Heredocs(enum.Enum):
    """What an instruction does with heredoc bodies (`<<EOF`): none are read after its line
    (NONE), each becomes a file and may hold any bytes (FILES: COPY, ADD), or they are part of
    the command and its history text, so JSON, so UTF-8 (COMMAND: RUN)."""

    NONE = "none"
    FILES = "files"
    COMMAND = "command"


@dataclass(frozen=True, slots=True)
class Keyword:
    """One row of KEYWORDS (module docstring)."""

    split: lines.LineParser | None       # BuildKit's line parser; None: the rest is a line of its own (ONBUILD)
    read: Callable[[Req], Instruction | StageStart]  # → `record`; FROM → StageStart
    record: type[Instruction] | None     # what `read` returns; None: FROM, which starts a Stage
    example: str                         # one valid line (the table's tests parse it; docs)
    heredocs: Heredocs = Heredocs.NONE
    trigger: bool = True                 # may follow ONBUILD


KEYWORDS: Mapping[str, Keyword] = MappingProxyType({
    "add": Keyword(lines.parse_maybe_json_to_list, _add, AddInstr, "ADD a /b", heredocs=Heredocs.FILES),
    "arg": Keyword(lines.parse_name_or_name_val, _arg, ArgInstr, "ARG x"),
    "cmd": Keyword(lines.parse_maybe_json, _cmd, CmdInstr, "CMD x"),
    "copy": Keyword(lines.parse_maybe_json_to_list, _copy, CopyInstr, "COPY a /b", heredocs=Heredocs.FILES),
    "entrypoint": Keyword(lines.parse_maybe_json, _entrypoint, EntrypointInstr, "ENTRYPOINT x"),
    "env": Keyword(lines.parse_name_val("ENV"), _env, EnvInstr, "ENV A=1"),
    "expose": Keyword(lines.parse_whitespace_list, _expose, ExposeInstr, "EXPOSE 80"),
    "from": Keyword(lines.parse_whitespace_list, _from, None, "FROM busybox AS base", trigger=False),
    "healthcheck": Keyword(lines.parse_health, _healthcheck, HealthcheckInstr, "HEALTHCHECK NONE"),
    "label": Keyword(lines.parse_name_val("LABEL"), _label, LabelInstr, "LABEL a=b"),
    "maintainer": Keyword(lines.parse_string, _maintainer, MaintainerInstr, "MAINTAINER me", trigger=False),
    "onbuild": Keyword(None, _onbuild, OnbuildInstr, "ONBUILD RUN x", trigger=False),
    "run": Keyword(lines.parse_maybe_json, _run, RunInstr, "RUN true", heredocs=Heredocs.COMMAND),
    "shell": Keyword(lines.parse_maybe_json, _shell, ShellInstr, 'SHELL ["sh", "-c"]'),
    "stopsignal": Keyword(lines.parse_string, _stopsignal, StopSignalInstr, "STOPSIGNAL 9"),
    "user": Keyword(lines.parse_string, _user, UserInstr, "USER u"),
    "volume": Keyword(lines.parse_maybe_json_to_list, _volume, VolumeInstr, "VOLUME /v"),
    "workdir": Keyword(lines.parse_string, _workdir, WorkdirInstr, "WORKDIR /w"),
})
