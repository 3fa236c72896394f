"""pyrunc's entry point: argv parsing for the fast verbs without click, and the
one place a verb's errors are caught.

containerd, podman and pybuild call `create/start/run/state/kill/delete` for
every container; click costs ≈ 25 ms to import, close to a whole `runc run`.
This parser handles the verbs of verbs.VERBS marked `fast`; anything it does not
understand (help, usage errors, the other verbs) goes to `cli.parse`, which
owns all help and usage texts. Either way the verb runs in `main`, where
PyruncError, OSError and ^C become one line (or a runc JSON log line with
`--log-format json`) and an exit code.
"""

from __future__ import annotations

import sys

from pyrunc.errors import PyruncError
from pyrunc.verbs import GLOBAL_OPTS, VERBS, GlobalOptions, Opt, Verb


class _Fallback(Exception):
    """Let click handle this argv."""


def _match(arg: str, opts: tuple[Opt, ...]) -> tuple[Opt, str | None] | None:
    name, eq, value = arg.partition("=")
    for opt in opts:
        if name in opt.names:
            return opt, (value if eq else None)
    return None


def _take(opt: Opt, inline: str | None, argv: list[str], i: int, out: dict) -> int:
    if opt.kind == "flag":
        if inline is not None:
            if inline not in ("true", "false"):
                raise _Fallback
            out[opt.dest] = inline == "true"
        else:
            out[opt.dest] = True
        return i
    if inline is None:
        if i >= len(argv):
            raise _Fallback
        inline = argv[i]
        i += 1
    if opt.kind == "list":
        out[opt.dest] = (out.get(opt.dest) or ()) + (inline,)
        return i
    if opt.kind == "int":
        if not inline.lstrip("-").isdigit():
            raise _Fallback
        out[opt.dest] = int(inline)
    else:
        out[opt.dest] = inline
    return i


def parse(argv: list[str]) -> tuple[GlobalOptions, str, dict]:
    g: dict = {o.dest: o.default for o in GLOBAL_OPTS}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        found = _match(argv[i], GLOBAL_OPTS)
        if found is None:
            raise _Fallback
        i = _take(found[0], found[1], argv, i + 1, g)
    if i >= len(argv) or argv[i] not in VERBS or not VERBS[argv[i]].fast:
        raise _Fallback
    verb = VERBS[argv[i]]
    values: dict = {o.dest: o.default for o in verb.options}
    positional: list[str] = []
    i += 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            positional.extend(argv[i + 1:])
            break
        if positional and verb.args[-1].endswith("*") and len(positional) >= len(verb.args) - 1:
            positional.extend(argv[i:])  # exec: the command's own flags are not ours
            break
        if arg.startswith("-") and len(arg) > 1:
            if arg in ("-h", "--help"):
                raise _Fallback
            found = _match(arg, verb.options)
            if found is None:
                raise _Fallback
            i = _take(found[0], found[1], argv, i + 1, values)
            continue
        positional.append(arg)
        i += 1
    required = [a for a in verb.args if not a.endswith(("?", "*"))]
    rest = verb.args[-1].endswith("*") if verb.args else False
    if len(positional) < len(required) or (not rest and len(positional) > len(verb.args)):
        raise _Fallback
    for name, value in zip(verb.args, positional):
        values[name.rstrip("?*")] = value
    if rest:
        values[verb.args[-1].rstrip("*")] = tuple(positional[len(verb.args) - 1:])
    return GlobalOptions(**g), verb.name, values


def _with_verb(parsed: tuple[GlobalOptions, str, dict]) -> tuple[GlobalOptions, Verb, dict]:
    return parsed[0], VERBS[parsed[1]], parsed[2]


def main(argv: list[str], early_error: PyruncError | None = None) -> int:
    """Parse argv (here, or with click for what this parser leaves), then run the
    verb; `early_error` (the interpreter guard's, raised before the CLI was
    imported) is reported here, through the log settings argv asks for."""
    try:
        parsed: tuple[GlobalOptions, Verb, dict] | int | None = _with_verb(parse(argv))
    except _Fallback:
        parsed = None
    from pyrunc import logs

    name = parsed[1].name if isinstance(parsed, tuple) else "pyrunc"
    try:
        if isinstance(parsed, tuple):
            logs.configure(parsed[0].log, parsed[0].log_format, parsed[0].debug)
        if early_error is not None:
            raise early_error
        if parsed is None:
            from pyrunc.cli import parse as click_parse

            parsed = click_parse(argv)  # configures logs; an int: help shown or a usage error
            if isinstance(parsed, int):
                return parsed
            name = parsed[1].name
        return parsed[1].call(parsed[0], parsed[2])
    except PyruncError as err:
        logs.error(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except OSError as err:
        # Unexpected kernel errors still get one line, naming the call's path.
        where = f"{err.filename}: " if err.filename else ""
        logs.error(f"{name}: {where}{err.strerror or err}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
