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

from pyrunc.errors import ConfigError, PyruncError
from pyrunc.verbs import GlobalOptions


def _compile(path: str, arch_name: str | None, caps: str | None) -> tuple[Any, Any, list[Any]]:
    from pyrunc.seccomp import codegen, ruledb, profiles, rules
    from pyrunc.seccomp.arches import ARCHES, native
    from pyrunc.spec import read_json

    arch = ARCHES[arch_name] if arch_name else native()
    source = os.path.basename(path)
    obj = read_json(path, source)
    cap_list = [c.strip() for c in caps.split(",") if c.strip()] if caps is not None else None
    seccomp, field = profiles.load(obj, arch, cap_list, source=source)
    try:
        profile = rules.resolve(seccomp, field, arch)
        dbs = ruledb.build(profile)
    except ConfigError as err:
        raise ConfigError(err.field, str(err).split(": ", 2)[-1], source) from None
    return arch, profile, codegen.generate(dbs, profile.default_action,
                                           libseccomp_tree=ruledb.libseccomp_tree_layout(profile))


class UsageError(PyruncError):
    """A bad argument (click's usage errors exit 2; so do these)."""

    exit_code = 2


def _file(path: str, name: str) -> str:
    """click.Path(dir_okay=False)'s check, in the verb."""
    if os.path.isdir(path):
        raise UsageError(f"Invalid value for '{name}': File '{path}' is a directory.")
    return path


def compile_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc seccomp compile PROFILE [--arch A] [--caps C] [-o FILE]`."""
    from pyrunc.seccomp import bpf

    output = v.get("output")
    _, _, program = _compile(_file(v["profile"], "PROFILE"), v.get("arch"), v.get("caps"))
    data = bpf.encode(program)
    if output:
        with open(_file(output, "-o"), "wb") as f:
            f.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


def check_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc seccomp check PROFILE SYSCALL [ARGS...] [-v]`."""
    from pyrunc.seccomp import bpf

    syscall, args = v["syscall"], tuple(v.get("args") or ())
    target, _, program = _compile(_file(v["profile"], "PROFILE"), v.get("arch"), v.get("caps"))
    if syscall.isdigit() or syscall.startswith("0x"):
        nr = int(syscall, 0)
    else:
        number = target.number(syscall)
        if number is None:
            raise UsageError(f"Invalid value for SYSCALL: {syscall!r} is not a syscall on {target.name}")
        nr = number
    try:
        values = tuple(int(a, 0) & 0xFFFFFFFFFFFFFFFF for a in args)
    except ValueError:
        raise UsageError("Invalid value for ARGS: arguments must be integers (decimal, 0x…, 0o…)") from None
    if len(values) > 6:
        raise UsageError("Invalid value for ARGS: at most 6 arguments")
    ret, steps = check(target, program, nr, values)
    sys.stdout.write(bpf.action_name(ret) + (f"  ({steps} instructions)" if v.get("verbose") else "") + "\n")
    return 0


def check(target: Any, program: list[Any], nr: int, args: tuple[int, ...] = ()) -> tuple[int, int]:
    """(the filter's return value, instructions run) for syscall `nr` with `args`
    on `target`, in pyrunc's BPF interpreter (`seccomp check`, `explain`)."""
    from pyrunc.seccomp import bpf

    data = bpf.seccomp_data(nr, target.audit, args, big_endian=target.big_endian)
    return bpf.run(program, data, big_endian=target.big_endian)


def disasm_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc seccomp disasm FILE`."""
    from pyrunc.seccomp import bpf

    path = v["filter_file"]
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise UsageError(f"Invalid value for 'FILE': '{path}': {err.strerror}") from None
    try:
        program = bpf.decode(data)
    except bpf.BPFError as err:
        raise PyruncError(str(err)) from None
    sys.stdout.write(bpf.disassemble(program) + "\n")
    return 0
