"""The typed, frozen instructions and stages that `instructions.parse_stages`
produces (BuildKit's instructions.*Command types). Values are as written in the
Dockerfile: nothing is expanded yet; the builder expands with `shell_words`.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Instruction:
    """Common part: lowercased keyword, source lines (1-based), the joined line and the flag
    words as written (`--from=build`), for texts that quote the instruction (history, cache
    keys); what the flags mean is in the typed fields of each record."""

    keyword: str
    line: int
    end_line: int
    original: str
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: str
    no_delim: bool = False  # the legacy `ENV key value` form


@dataclass(frozen=True, slots=True)
class ArgDef:
    key: str
    default: str | None  # None: `ARG NAME` without a value


@dataclass(frozen=True, slots=True)
class SourceContent:
    """A heredoc source of COPY/ADD: becomes the file `path` with `data`."""

    path: str
    data: str
    expand: bool


@dataclass(frozen=True, slots=True)
class InlineFile:
    """A heredoc of RUN/CMD/ENTRYPOINT; `chomp` means strip leading tabs."""

    name: str
    data: str
    chomp: bool


@dataclass(frozen=True, slots=True)
class EnvInstr(Instruction):
    pairs: tuple[KeyValue, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelInstr(Instruction):
    pairs: tuple[KeyValue, ...] = ()


@dataclass(frozen=True, slots=True)
class ArgInstr(Instruction):
    args: tuple[ArgDef, ...] = ()


@dataclass(frozen=True, slots=True)
class MaintainerInstr(Instruction):
    maintainer: str = ""


@dataclass(frozen=True, slots=True)
class AddInstr(Instruction):
    sources: tuple[str, ...] = ()
    dest: str = ""
    contents: tuple[SourceContent, ...] = ()
    chown: str = ""
    chmod: str = ""
    link: bool = False
    keep_git_dir: bool | None = None
    checksum: str = ""
    unpack: bool | None = None
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CopyInstr(Instruction):
    sources: tuple[str, ...] = ()
    dest: str = ""
    contents: tuple[SourceContent, ...] = ()
    from_: str = ""
    chown: str = ""
    chmod: str = ""
    link: bool = False
    parents: bool = False
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunInstr(Instruction):
    """`cmd` is one shell string (prepend_shell) or the exec-form argv."""

    cmd: tuple[str, ...] = ()
    prepend_shell: bool = True
    files: tuple[InlineFile, ...] = ()
    mounts: tuple[str, ...] = ()
    network: str = "default"
    security: str = "sandbox"
    devices: tuple[str, ...] = ()
    flags_used: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CmdInstr(Instruction):
    cmd: tuple[str, ...] = ()
    prepend_shell: bool = True
    files: tuple[InlineFile, ...] = ()


@dataclass(frozen=True, slots=True)
class EntrypointInstr(Instruction):
    cmd: tuple[str, ...] | None = None  # None: `ENTRYPOINT []` / empty clears it
    prepend_shell: bool = True
    files: tuple[InlineFile, ...] = ()


@dataclass(frozen=True, slots=True)
class HealthcheckInstr(Instruction):
    """test is ["NONE"], ["CMD", argv...] or ["CMD-SHELL", cmd]; durations in ns."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True, slots=True)
class ExposeInstr(Instruction):
    ports: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UserInstr(Instruction):
    user: str = ""


@dataclass(frozen=True, slots=True)
class VolumeInstr(Instruction):
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StopSignalInstr(Instruction):
    signal: str = ""


@dataclass(frozen=True, slots=True)
class WorkdirInstr(Instruction):
    path: str = ""


@dataclass(frozen=True, slots=True)
class ShellInstr(Instruction):
    shell: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OnbuildInstr(Instruction):
    """`expression` is the trigger text (heredoc bodies appended) for the image config."""

    expression: str = ""


@dataclass(frozen=True, slots=True)
class Stage:
    """A FROM and the instructions up to the next FROM. `name` is lowercased."""

    index: int
    base_name: str
    name: str
    platform: str
    line: int
    original: str
    instructions: tuple[Instruction, ...] = field(default=())
