"""Steps that change only the image config: ENV ARG LABEL USER EXPOSE CMD
ENTRYPOINT VOLUME SHELL STOPSIGNAL HEALTHCHECK ONBUILD MAINTAINER (and
WORKDIR, which also creates its directory, in steps/workdir.py).

Each handler takes the stage state and its typed instruction (checked by
`pybuild.dockerfile.stages`; what is left to check here is what only the
expanded values show) and returns the new config plus the history
`created_by` text, written the way BuildKit writes it (Go's `%q` / `%v`
formatting of slices and maps included), so `docker history` style tools show
what they show for docker-built images. `@config_step(EnvInstr)` makes a
handler the Step of its record (`MetadataStep`); `table.STEPS` collects them.
"""

from __future__ import annotations

import re
import signal
from typing import Callable, Generic, TypeVar

from pybuild.dockerfile.instructions import (ArgInstr, CmdInstr, EntrypointInstr, EnvInstr, ExposeInstr,
                                             HealthcheckInstr, Instruction, KeyValue, LabelInstr, MaintainerInstr,
                                             OnbuildInstr, ShellInstr, StopSignalInstr, UserInstr, VolumeInstr)
from pybuild.dockerfile.shell_words import go_quote, stage_arg_value
from pybuild.errors import InstructionError
from pybuild.image import ImageConfig
from pybuild.steps.contract import BuildEnv, Outcome, Prepared, StageState, with_container
from pyrunc.record import replace

I = TypeVar("I", bound=Instruction)
Handler = Callable[[BuildEnv, StageState, I], tuple[ImageConfig, str]]


class MetadataStep(Generic[I]):
    """A config-only Step from a handler; `text` (ARG, CMD) runs at prepare time, on cache hits
    too, for what is build state rather than config, and gives the text the cache key covers."""

    metadata_only = True

    def __init__(self, record: type[I], handler: Handler[I],
                 text: Callable[[BuildEnv, StageState, I], str] | None = None) -> None:
        self.record = record
        self.handler = handler
        self.text = text

    def prepare(self, b: BuildEnv, st: StageState, ins: I) -> Prepared:
        return Prepared(text=self.text(b, st, ins) if self.text else ins.original)

    def apply(self, b: BuildEnv, st: StageState, ins: I, prep: Prepared) -> Outcome:
        config, created_by = self.handler(b, st, ins)
        return Outcome(config=config, created_by=created_by)


def config_step(record: type[I], text: Callable[[BuildEnv, StageState, I], str] | None = None,
                ) -> Callable[[Handler[I]], MetadataStep[I]]:
    """`@config_step(EnvInstr)` on a handler: the handler becomes the step of that record (a
    `MetadataStep`, which `table.STEPS` collects from this module)."""

    def bind(handler: Handler[I]) -> MetadataStep[I]:
        return MetadataStep(record, handler, text)

    return bind


def go_q_list(items: list[str] | tuple[str, ...]) -> str:
    """fmt.Sprintf("%q", []string{...}) → ["a" "b"]."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def _pairs(b: BuildEnv, st: StageState, keyword: str, pairs: tuple[KeyValue, ...]) -> list[tuple[str, str]]:
    """ENV/LABEL pairs expanded with the environment as it was before the instruction
    (a name may expand to nothing: only then is it blank)."""
    env = st.env()
    out = []
    for pair in pairs:
        key = b.lex.process_word(pair.key, env)
        value = b.lex.process_word(pair.value, env)
        if not key:
            raise InstructionError(f"{keyword} names can not be blank")
        out.append((key, value))
    return out


@config_step(EnvInstr)
def env(b: BuildEnv, st: StageState, ins: EnvInstr) -> tuple[ImageConfig, str]:
    pairs = _pairs(b, st, "ENV", ins.pairs)
    return with_container(st, env=st.set_env(pairs)), "ENV " + " ".join(f"{k}={v}" for k, v in pairs)


@config_step(LabelInstr)
def label(b: BuildEnv, st: StageState, ins: LabelInstr) -> tuple[ImageConfig, str]:
    pairs = _pairs(b, st, "LABEL", ins.pairs)
    labels = st.labels_to_update()
    labels.update(pairs)
    return with_container(st, labels=labels), "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)


def declare_args(b: BuildEnv, st: StageState, ins: ArgInstr) -> str:
    """Bring an ARG's names into the stage scope (also on a cache hit: the
    scope is build state, not image config); returns the resolved text."""
    shown = []
    for arg in ins.args:
        value = stage_arg_value(arg.key, arg.default, b.build_args, st.global_args, st.env(), b.lex)
        st.set_arg(arg.key, value)
        shown.append(arg.key if value is None else f"{arg.key}={value}")
    return "ARG " + " ".join(shown)


@config_step(ArgInstr, text=declare_args)
def arg(b: BuildEnv, st: StageState, ins: ArgInstr) -> tuple[ImageConfig, str]:
    values = ((a.key, st.args.get(a.key)) for a in ins.args)
    return st.config, "ARG " + " ".join(k if v is None else f"{k}={v}" for k, v in values)


@config_step(UserInstr)
def user(b: BuildEnv, st: StageState, ins: UserInstr) -> tuple[ImageConfig, str]:
    user = b.lex.process_word(ins.user, st.env())
    return with_container(st, user=user or None), f"USER {user}"


_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?$", re.IGNORECASE)


@config_step(ExposeInstr)
def expose(b: BuildEnv, st: StageState, ins: ExposeInstr) -> tuple[ImageConfig, str]:
    env = st.env()
    ports = set(st.container.exposed_ports)
    new: set[str] = set()
    for raw in ins.ports:
        for word in b.lex.process_words(raw, env):
            m = _PORT.match(word)
            if not m:
                raise InstructionError(f"EXPOSE {word}: invalid port (want PORT[-END][/tcp|udp|sctp])")
            start = int(m.group(1))
            end = int(m.group(2) or start)
            proto = (m.group(3) or "tcp").lower()
            if not (0 < start <= end <= 65535):
                raise InstructionError(f"EXPOSE {word}: invalid port range")
            new.update(f"{p}/{proto}" for p in range(start, end + 1))
    ports |= new
    shown = " ".join(f"{p}:{{}}" for p in sorted(new))
    return with_container(st, exposed_ports=tuple(sorted(ports))), f"EXPOSE map[{shown}]"


def _command(st: StageState, cmd: tuple[str, ...], prepend_shell: bool) -> list[str]:
    """Exec form as written; shell form through the image's SHELL."""
    if not prepend_shell:
        return list(cmd)
    shell = list(st.container.shell or ("/bin/sh", "-c"))
    return shell + [cmd[0]] if cmd else shell


def mark_cmd(b: BuildEnv, st: StageState, ins: CmdInstr) -> str:
    st.cmd_set = True  # ENTRYPOINT after this keeps the CMD (build state, replayed on hits)
    return ins.original


@config_step(CmdInstr, text=mark_cmd)
def cmd(b: BuildEnv, st: StageState, ins: CmdInstr) -> tuple[ImageConfig, str]:
    cmd = _command(st, ins.cmd, ins.prepend_shell)
    return with_container(st, cmd=tuple(cmd)), f"CMD {go_q_list(cmd)}"


@config_step(EntrypointInstr)
def entrypoint(b: BuildEnv, st: StageState, ins: EntrypointInstr) -> tuple[ImageConfig, str]:
    entry = _command(st, ins.cmd or (), ins.prepend_shell)
    fields: dict = {"entrypoint": tuple(entry)}
    if not st.cmd_set:
        fields["cmd"] = None  # a CMD inherited from the base image is reset (Dockerfile reference)
    return with_container(st, **fields), f"ENTRYPOINT {go_q_list(entry)}"


@config_step(VolumeInstr)
def volume(b: BuildEnv, st: StageState, ins: VolumeInstr) -> tuple[ImageConfig, str]:
    env = st.env()
    paths = [b.lex.process_word(p, env) for p in ins.volumes]
    if any(not p for p in paths):
        raise InstructionError("VOLUME specified can not be an empty string")
    volumes = set(st.container.volumes) | set(paths)
    return with_container(st, volumes=tuple(sorted(volumes))), "VOLUME [" + " ".join(paths) + "]"


@config_step(ShellInstr)
def shell(b: BuildEnv, st: StageState, ins: ShellInstr) -> tuple[ImageConfig, str]:
    return with_container(st, shell=ins.shell), "SHELL [" + " ".join(ins.shell) + "]"


_SIGNAL = re.compile(r"^(SIG)?[A-Z0-9+-]+$")


@config_step(StopSignalInstr)
def stopsignal(b: BuildEnv, st: StageState, ins: StopSignalInstr) -> tuple[ImageConfig, str]:
    sig = b.lex.process_word(ins.signal, st.env())
    name = sig.upper()
    valid = sig.isdigit() or name in signal.Signals.__members__ or f"SIG{name}" in signal.Signals.__members__ \
        or re.match(r"^(SIG)?RTM(IN|AX)([+-]\d+)?$", name)
    if not valid:
        raise InstructionError(f"STOPSIGNAL {sig}: invalid signal")
    return with_container(st, stop_signal=sig), f"STOPSIGNAL {sig}"


def _go_duration(ns: int) -> str:
    if ns == 0:
        return "0s"
    if ns % 10**9 == 0:
        secs = ns // 10**9
        h, rem = divmod(secs, 3600)
        m, s = divmod(rem, 60)
        return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{s}s"
    return f"{ns / 10**9:g}s"


@config_step(HealthcheckInstr)
def healthcheck(b: BuildEnv, st: StageState, ins: HealthcheckInstr) -> tuple[ImageConfig, str]:
    if ins.test == ("NONE",):
        hc: dict = {"Test": ["NONE"]}
        return with_container(st, healthcheck=hc), f"HEALTHCHECK &{{[{go_quote('NONE')}] \"0s\" \"0s\" \"0s\" \"0s\" '\\x00'}}"
    test = list(ins.test)
    hc = {"Test": test}
    durations = (ins.interval, ins.timeout, ins.start_period, ins.start_interval)
    for field, ns in zip(("Interval", "Timeout", "StartPeriod", "StartInterval"), durations):
        if ns:
            hc[field] = ns
    if ins.retries:
        hc["Retries"] = ins.retries
    shown = " ".join(f'"{_go_duration(d)}"' for d in durations)
    created = f"HEALTHCHECK &{{{go_q_list(test)} {shown} '\\x{ins.retries:02x}'}}"
    return with_container(st, healthcheck=hc), created


@config_step(OnbuildInstr)
def onbuild(b: BuildEnv, st: StageState, ins: OnbuildInstr) -> tuple[ImageConfig, str]:
    trigger = ins.expression.strip()
    triggers = tuple(st.container.on_build) + (trigger,)
    return with_container(st, on_build=triggers), f"ONBUILD {trigger}"


@config_step(MaintainerInstr)
def maintainer(b: BuildEnv, st: StageState, ins: MaintainerInstr) -> tuple[ImageConfig, str]:
    return replace(st.config, author=ins.maintainer), f"MAINTAINER {ins.maintainer}"
