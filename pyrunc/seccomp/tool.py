"""`pyrunc seccomp compile|check|disasm`: the compiler as a tool for people.

PROFILE.json may be an OCI `linux.seccomp` object, a whole config.json or a
Docker/containers-common profile (resolved for this host's kernel, the given
`--arch`, and `--caps` or the config's bounding set or Docker's defaults).
`check` runs the compiled filter in pyrunc's own BPF interpreter.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from pyrunc.errors import ConfigError

_ARCH_CHOICE = click.Choice(["x86_64", "x86", "x32", "aarch64", "arm", "riscv64", "s390x",
                             "ppc64le", "ppc64", "s390"])


def _compile(path: str, arch_name: str | None, caps: str | None) -> tuple[Any, Any, list[Any]]:
    from pyrunc.seccomp import codegen, compiler, profiles, rules
    from pyrunc.seccomp.arches import ARCHES, native

    arch = ARCHES[arch_name] if arch_name else native()
    source = os.path.basename(path)
    from pyrunc.spec import read_json

    obj = read_json(path, source)
    cap_list = [c.strip() for c in caps.split(",") if c.strip()] if caps is not None else None
    oci, field = profiles.load_any(obj, arch, cap_list, source=source)
    try:
        profile = rules.parse(oci, field, arch)
        dbs = compiler.build(profile)
    except ConfigError as err:
        raise ConfigError(err.field, str(err).split(": ", 2)[-1], source) from None
    return arch, profile, codegen.generate(dbs, profile.default_action,
                                           libseccomp_tree=compiler.libseccomp_tree_layout(profile))


@click.group("seccomp")
def seccomp() -> None:
    """Compile, check and disassemble seccomp profiles (pyrunc's own compiler)."""


@seccomp.command("compile")
@click.argument("profile", type=click.Path(dir_okay=False))
@click.option("--arch", type=_ARCH_CHOICE, help="Target architecture (default: this machine).")
@click.option("--caps", help="Bounding capabilities for Docker profiles, e.g. CAP_SYS_ADMIN,CAP_KILL.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output file (default: stdout).")
def compile_cmd(profile: str, arch: str | None, caps: str | None, output: str | None) -> None:
    """Write the raw filter: struct sock_filter[] (8 bytes each, native byte order)."""
    from pyrunc.seccomp import bpf

    _, _, program = _compile(profile, arch, caps)
    data = bpf.encode(program)
    if output:
        with open(output, "wb") as f:
            f.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


@seccomp.command("check")
@click.argument("profile", type=click.Path(dir_okay=False))
@click.argument("syscall")
@click.argument("args", nargs=-1)
@click.option("--arch", type=_ARCH_CHOICE, help="Architecture of the call (default: this machine).")
@click.option("--caps", help="Bounding capabilities for Docker profiles.")
@click.option("-v", "--verbose", is_flag=True, help="Also print the number of instructions run.")
def check_cmd(profile: str, syscall: str, args: tuple[str, ...], arch: str | None, caps: str | None,
              verbose: bool) -> None:
    """Print the action the filter gives SYSCALL (a name or number) with ARGS."""
    from pyrunc.seccomp import bpf

    target, _, program = _compile(profile, arch, caps)
    if syscall.isdigit() or syscall.startswith("0x"):
        nr = int(syscall, 0)
    else:
        number = target.number(syscall)
        if number is None:
            raise click.BadParameter(f"{syscall!r} is not a syscall on {target.name}", param_hint="SYSCALL")
        nr = number
    try:
        values = tuple(int(a, 0) & 0xFFFFFFFFFFFFFFFF for a in args)
    except ValueError:
        raise click.BadParameter("arguments must be integers (decimal, 0x…, 0o…)", param_hint="ARGS") from None
    if len(values) > 6:
        raise click.BadParameter("at most 6 arguments", param_hint="ARGS")
    data = bpf.seccomp_data(nr, target.audit, values, big_endian=target.big_endian)
    ret, steps = bpf.run(program, data, big_endian=target.big_endian)
    click.echo(bpf.action_name(ret) + (f"  ({steps} instructions)" if verbose else ""))


@seccomp.command("disasm")
@click.argument("filter_file", metavar="FILE", type=click.File("rb"))
def disasm_cmd(filter_file: Any) -> None:
    """List a raw filter (as written by `compile` or libseccomp's export) readably."""
    from pyrunc.seccomp import bpf

    try:
        program = bpf.decode(filter_file.read())
    except bpf.BPFError as err:
        raise click.ClickException(str(err)) from None
    click.echo(bpf.disassemble(program))
