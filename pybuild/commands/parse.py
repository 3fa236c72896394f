"""`pybuild parse [-f Dockerfile] [--dump] [--target T]`: show how pybuild reads a Dockerfile.

With --dump it prints BuildKit's AST dump format byte for byte (the `result`
files of BuildKit's parser tests), which is how the parser is checked against
BuildKit. Without it, it lists the global ARGs and the stages with their typed
instructions, so instruction-level errors (unknown flags, argument counts,
duplicate stage names) show up too.
"""

from __future__ import annotations

import sys

import click

from pybuild.errors import DockerfileError
from pyrunc.record import fields


def _read(path: str) -> tuple[bytes, str]:
    if path == "-":
        return sys.stdin.buffer.read(), "Dockerfile"
    try:
        with open(path, "rb") as fh:
            return fh.read(), path
    except OSError as err:
        raise DockerfileError(f"cannot read: {err.strerror}", None, path) from None


_DEFAULTS = {"prepend_shell": True, "network": "default", "security": "sandbox"}


def _value(value: object) -> str:
    from pybuild.dockerfile import instructions as ins

    if isinstance(value, tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, ins.KeyValue):
        return f"{value.key}={value.value}" if not value.no_delim else f"{value.key} {value.value}"
    if isinstance(value, ins.ArgDef):
        return value.key if value.default is None else f"{value.key}={value.default}"
    if isinstance(value, ins.SourceContent):
        return f"<<{value.path} ({len(value.data)} bytes)"
    if isinstance(value, ins.InlineFile):
        return f"<<{value.name} ({len(value.data)} bytes)"
    return repr(value)


def _describe(instr: object) -> str:
    """`field=value` for every field that differs from its default."""
    skip = {"keyword", "line", "end_line", "original", "flags"}  # flags: shown by the typed fields
    parts = []
    for name in fields(instr):  # type: ignore[arg-type]
        value = getattr(instr, name)
        if name in skip or value in ((), "", None, False) or _DEFAULTS.get(name, object()) == value:
            continue
        parts.append(f"{name.rstrip('_')}={_value(value)}")
    return " ".join(parts)


@click.command("parse")
@click.option("-f", "--file", "path", default="Dockerfile", show_default=True,
              help="Dockerfile to read ('-' for stdin).")
@click.option("--dump", is_flag=True, help="Print BuildKit's AST dump format.")
@click.option("--target", default="", help="Mark the stage --target would build.")
def parse(path: str, dump: bool, target: str) -> None:
    """Parse a Dockerfile and print what pybuild understood."""
    from pybuild.dockerfile import parser as dockerfile_parser, stages as instructions
    from pybuild.gostr import printable

    data, name = _read(path)
    result = dockerfile_parser.parse(data, filename=name)
    if dump:
        click.echo(dockerfile_parser.dump(result))
        return
    meta, stages = instructions.parse_stages(result)
    chosen = instructions.select_target(stages, target)
    click.echo(f"escape {result.escape!r}" + "".join(f"  {k}={v}" for k, v in result.directives.items()
                                                      if k != "escape"))
    for warning in result.warnings:
        click.echo(printable(f"warning: {name}:{warning.line}: {warning.message}"))
    for arg in meta:
        click.echo(f"{arg.line:>5}  global ARG {_describe(arg)}")
    for stage in stages:
        label = f"stage {stage.index}" + (f" {stage.name!r}" if stage.name else "")
        mark = "  <- target" if stage.index == chosen else ""
        platform = f" --platform={stage.platform}" if stage.platform else ""
        click.echo(f"{stage.line:>5}  {label}: FROM{platform} {stage.base_name}{mark}")
        for instr in stage.instructions:
            click.echo(f"{instr.line:>5}    {instr.keyword.upper()} {_describe(instr)}".rstrip())
