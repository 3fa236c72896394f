"""Steps that change only the image config: ENV ARG LABEL USER EXPOSE CMD
ENTRYPOINT VOLUME SHELL STOPSIGNAL HEALTHCHECK ONBUILD MAINTAINER (and
WORKDIR, which also creates its directory, in steps/workdir.py).

Each handler takes the stage state and the instruction and returns the new
config plus the history `created_by` text, written the way BuildKit writes it
(Go's `%q` / `%v` formatting of slices and maps included), so `docker history`
style tools show what they show for docker-built images.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

from pybuild.image import ImageConfig
from pybuild.dockerfile.shell_words import go_quote, stage_arg_value
from pybuild.steps import BuildEnv, Instr, Outcome, Prepared, StageState, with_container

Handler = Callable[[BuildEnv, StageState, Instr], tuple[ImageConfig, str]]
HANDLERS: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn
    return register


def go_q_list(items: list[str] | tuple[str, ...]) -> str:
    """fmt.Sprintf("%q", []string{...}) → ["a" "b"]."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def _pairs(b: BuildEnv, st: StageState, ins: Instr) -> list[tuple[str, str]]:
    """ENV/LABEL arguments (parser triples key, value, sep) expanded with the
    environment as it was before the instruction."""
    env = st.env()
    args = list(ins.args)
    if len(args) % 3 != 0 or not args:
        raise ins.error(f"{ins.keyword.upper()} requires at least one argument")
    out = []
    for i in range(0, len(args), 3):
        key = b.lex.process_word(args[i], env)
        value = b.lex.process_word(args[i + 1], env)
        if not key:
            raise ins.error(f"{ins.keyword.upper()} names can not be blank")
        out.append((key, value))
    return out


@handler("env")
def _env(b: BuildEnv, st: StageState, ins: Instr) -> tuple[ImageConfig, str]:
    pairs = _pairs(b, st, ins)
    return with_container(st, env=st.set_env(pairs)), "ENV " + " ".join(f"{k}={v}" for k, v in pairs)


@handler("label")
def _label(b: BuildEnv, st: StageState, ins: Instr) -> tuple[ImageConfig, str]:
    pairs = _pairs(b, st, ins)
    labels = st.labels_to_update()
    labels.update(pairs)
    return with_container(st, labels=labels), "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)


def declare_args(b: BuildEnv, st: StageState, ins: Instr) -> str:
    """Bring an ARG's names into the stage scope (also on a cache hit: the
    scope is build state, not image config); returns the resolved text."""
    shown = []
    for raw in ins.args:
        key, eq, default = raw.partition("=")
        if not key:
            raise ins.error("ARG names can not be blank")
        value = stage_arg_value(key, default if eq else None, b.build_args, st.global_args, st.env(), b.lex)
        st.set_arg(key, value)
        shown.append(key if value is None else f"{key}={value}")
    return "ARG " + " ".join(shown)


@handler("arg")
def _arg(b: BuildEnv, st: StageState, ins: Instr) -> tuple[ImageConfig, str]:
    return st.config, "ARG " + " ".join(k if v is None else f"{k}={v}" for k, v in
                                       ((r.partition("=")[0], st.args.get(r.partition("=")[0])) for r in ins.args))


@handler("user")
def _user(b: BuildEnv, st: StageState, ins: Instr) -> tuple[ImageConfig, str]:
    user = b.lex.process_word(ins.args[0], st.env())
    return with_container(st, user=user or None), f"USER {user}"


_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$", re.IGNORECASE)


@handler("expose")
def _expose(b: BuildEnv, st: StageState, ins: Instr) -> tuple[ImageConfig, str]:
    env = st.env()
    ports = set(st.container.exposed_ports)
    new: set[str] = set()
    for raw in ins.args:
        for word in b.lex.process_words(raw, env):
            m = _PORT.match(word)
            if not m:
                raise ins.error(f"EXPOSE {word}: invalid port (want PORT[-END][/tcp|udp|sctp])")
            start = int(m.group(1))
            end = int(m.group(2) or start)
            proto = (m.group(3) or "tcp").lower()
            if not (0 < start <= end <= 65535):
                raise ins.error(f"EXPOSE {word}: invalid port range")
            new.update(f"{p}/{proto}" for p in range(start, end + 1))
    ports |= new
    shown = " ".join(f"{p}:{{}}" for p in sorted(new))
    return with_container(st, exposed_ports=tuple(sorted(ports))), f"EXPOSE map[{shown}]"


def _command(st: StageState, ins: Instr) -> list[str]:
    if ins.json:
        return list(ins.args)
    shell = list(st.container.shell or ("/bin/sh", "-c"))
    return shell + [ins.args[0]] if ins.args else shell


@handler("cmd")
def _cmd(b: BuildEnv, st: StageState, ins: Instr) -> tuple[ImageConfig, str]:
    cmd = _command(st, ins)
    return with_container(st, cmd=tuple(cmd)), f"CMD {go_q_list(cmd)}"


@handler("entrypoint")
def _entrypoint(b: BuildEnv, st: StageState, ins: Instr) -> tuple[ImageConfig, str]:
    entry = _command(st, ins)
    fields: dict = {"entrypoint": tuple(entry)}
    if not st.cmd_set:
        fields["cmd"] = None  # a CMD inherited from the base image is reset (Dockerfile reference)
    return with_container(st, **fields), f"ENTRYPOINT {go_q_list(entry)}"


@handler("volume")
def _volume(b: BuildEnv, st: StageState, ins: Instr) -> tuple[ImageConfig, str]:
    env = st.env()
    paths = [b.lex.process_word(p, env) for p in ins.args]
    if not paths or any(not p for p in paths):
        raise ins.error("VOLUME specified can not be an empty string")
    volumes = set(st.container.volumes) | set(paths)
    return with_container(st, volumes=tuple(sorted(volumes))), "VOLUME [" + " ".join(paths) + "]"


@handler("shell")
def _shell(b: BuildEnv, st: StageState, ins: Instr) -> tuple[ImageConfig, str]:
    if not ins.json or not ins.args:
        raise ins.error("SHELL requires the arguments to be in JSON form")
    return with_container(st, shell=tuple(ins.args)), "SHELL [" + " ".join(ins.args) + "]"


_SIGNAL = re.compile(r"^(SIG)?[A-Z0-9+-]+$")


@handler("stopsignal")
def _stopsignal(b: BuildEnv, st: StageState, ins: Instr) -> tuple[ImageConfig, str]:
    sig = b.lex.process_word(ins.args[0], st.env())
    import signal

    name = sig.upper()
    valid = sig.isdigit() or name in signal.Signals.__members__ or f"SIG{name}" in signal.Signals.__members__ \
        or re.match(r"^(SIG)?RTM(IN|AX)([+-]\d+)?$", name)
    if not valid:
        raise ins.error(f"STOPSIGNAL {sig}: invalid signal")
    return with_container(st, stop_signal=sig), f"STOPSIGNAL {sig}"


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_duration(text: str, ins: Instr, flag: str) -> int:
    """Go's time.ParseDuration subset → nanoseconds."""
    if text in ("0", ""):
        return 0
    pos, total = 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _UNITS[m.group(2)])
        pos = m.end()
    if pos != len(text):
        raise ins.error(f"HEALTHCHECK --{flag}={text}: invalid duration")
    return total


def _go_duration(ns: int) -> str:
    if ns == 0:
        return "0s"
    if ns % 10**9 == 0:
        secs = ns // 10**9
        h, rem = divmod(secs, 3600)
        m, s = divmod(rem, 60)
        return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{s}s"
    return f"{ns / 10**9:g}s"


@handler("healthcheck")
def _healthcheck(b: BuildEnv, st: StageState, ins: Instr) -> tuple[ImageConfig, str]:
    kind = ins.args[0].upper() if ins.args else ""
    if kind == "NONE":
        if len(ins.args) > 1:
            raise ins.error("HEALTHCHECK NONE takes no arguments")
        hc: dict = {"Test": ["NONE"]}
        return with_container(st, healthcheck=hc), f"HEALTHCHECK &{{[{go_quote('NONE')}] \"0s\" \"0s\" \"0s\" \"0s\" '\\x00'}}"
    if kind != "CMD" or len(ins.args) < 2:
        raise ins.error("HEALTHCHECK requires CMD (or NONE)")
    test = ["CMD", *ins.args[1:]] if ins.json else ["CMD-SHELL", ins.args[1]]
    hc = {"Test": test}
    durations = []
    for flag, field in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                        ("start-interval", "StartInterval")):
        ns = parse_duration(ins.flag(flag) or "0", ins, flag)
        if ns:
            hc[field] = ns
        durations.append(ns)
    retries_raw = ins.flag("retries")
    retries = 0
    if retries_raw:
        if not retries_raw.isdigit():
            raise ins.error(f"HEALTHCHECK --retries={retries_raw}: not a number")
        retries = int(retries_raw)
        if retries:
            hc["Retries"] = retries
    shown = " ".join(f'"{_go_duration(d)}"' for d in durations)
    created = f"HEALTHCHECK &{{{go_q_list(test)} {shown} '\\x{retries:02x}'}}"
    return with_container(st, healthcheck=hc), created


@handler("onbuild")
def _onbuild(b: BuildEnv, st: StageState, ins: Instr) -> tuple[ImageConfig, str]:
    if ins.sub is None:
        raise ins.error("ONBUILD requires an instruction")
    if ins.sub.keyword in ("onbuild", "from", "maintainer"):
        raise ins.error(f"{ins.sub.keyword.upper()} isn't allowed as an ONBUILD trigger")
    trigger = re.sub(r"^\s*onbuild\s+", "", ins.original, flags=re.IGNORECASE).strip()
    triggers = tuple(st.container.on_build) + (trigger,)
    return with_container(st, on_build=triggers), f"ONBUILD {trigger}"


@handler("maintainer")
def _maintainer(b: BuildEnv, st: StageState, ins: Instr) -> tuple[ImageConfig, str]:
    author = ins.args[0] if ins.args else ""
    return dataclasses.replace(st.config, author=author), f"MAINTAINER {author}"


class MetadataStep:
    metadata_only = True

    def __init__(self, keyword: str) -> None:
        self.keyword = keyword

    def prepare(self, b: BuildEnv, st: StageState, ins: Instr) -> Prepared:
        if self.keyword == "arg":
            # The ARG's resolved value is what later steps see: make it part of the text.
            return Prepared(text=declare_args(b, st, ins))
        if self.keyword == "cmd":
            st.cmd_set = True  # ENTRYPOINT after this keeps the CMD (build state, replayed on hits)
        return Prepared(text=ins.original)

    def apply(self, b: BuildEnv, st: StageState, ins: Instr, prep: Prepared) -> Outcome:
        config, created_by = HANDLERS[self.keyword](b, st, ins)
        return Outcome(config=config, created_by=created_by)
