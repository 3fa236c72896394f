"""The typed, frozen instructions and stages that `instructions.parse_stages`
produces (BuildKit's instructions.*Command types). Values are as written in the
Dockerfile: nothing is expanded yet; the builder expands with `shell_words`.

They are pyrunc's `Record`s, not dataclasses: a frozen slotted dataclass costs
≈0.4 ms to create at import (its methods are generated and compiled), ≈10 ms
for these 23 classes on every `pybuild` command that reads a Dockerfile.
"""

from __future__ import annotations

from pyrunc.record import Record


class Instruction(Record):
    """Common part: lowercased keyword, source lines (1-based), the joined line and the flag
    words as written (`--from=build`), for texts that quote the instruction (history, cache
    keys); what the flags mean is in the typed fields of each record."""

    keyword: str
    line: int
    end_line: int
    original: str
    flags: tuple[str, ...]


class KeyValue(Record):
    key: str
    value: str
    no_delim: bool = False  # the legacy `ENV key value` form


class ArgDef(Record):
    key: str
    default: str | None  # None: `ARG NAME` without a value


class SourceContent(Record):
    """A heredoc source of COPY/ADD: becomes the file `path` with `data`."""

    path: str
    data: str
    expand: bool


class InlineFile(Record):
    """A heredoc of RUN/CMD/ENTRYPOINT; `chomp` means strip leading tabs."""

    name: str
    data: str
    chomp: bool


class EnvInstr(Instruction):
    pairs: tuple[KeyValue, ...] = ()


class LabelInstr(Instruction):
    pairs: tuple[KeyValue, ...] = ()


class ArgInstr(Instruction):
    args: tuple[ArgDef, ...] = ()


class MaintainerInstr(Instruction):
    maintainer: str = ""


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


class CmdInstr(Instruction):
    cmd: tuple[str, ...] = ()
    prepend_shell: bool = True
    files: tuple[InlineFile, ...] = ()


class EntrypointInstr(Instruction):
    cmd: tuple[str, ...] | None = None  # None: `ENTRYPOINT []` / empty clears it
    prepend_shell: bool = True
    files: tuple[InlineFile, ...] = ()


class HealthcheckInstr(Instruction):
    """test is ["NONE"], ["CMD", argv...] or ["CMD-SHELL", cmd]; durations in ns."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


class ExposeInstr(Instruction):
    ports: tuple[str, ...] = ()


class UserInstr(Instruction):
    user: str = ""


class VolumeInstr(Instruction):
    volumes: tuple[str, ...] = ()


class StopSignalInstr(Instruction):
    signal: str = ""


class WorkdirInstr(Instruction):
    path: str = ""


class ShellInstr(Instruction):
    shell: tuple[str, ...] = ()


class OnbuildInstr(Instruction):
    """`expression` is the trigger text (heredoc bodies appended) for the image config."""

    expression: str = ""


class Stage(Record):
    """A FROM and the instructions up to the next FROM. `name` is lowercased."""

    index: int
    base_name: str
    name: str
    platform: str
    line: int
    original: str
    instructions: tuple[Instruction, ...] = ()
