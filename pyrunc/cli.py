"""The click half of pyrunc's command line: help, usage errors, and the verbs
fastcli does not parse.

Nothing here runs a verb. `parse(argv)` builds the click commands from the one
table, verbs.VERBS (global options from verbs.GLOBAL_OPTS), lets click parse
argv, and hands back (GlobalOptions, Verb, values) for fastcli.main to run, or
the exit code when click answered by itself (help, --version, a usage error).
"""

from __future__ import annotations

import click

from pyrunc.verbs import GLOBAL_OPTS, VERBS, GlobalOptions, Opt, Verb

Parsed = tuple[GlobalOptions, Verb, dict]


def _option(opt: Opt) -> click.Option:
    if opt.kind == "flag":
        return click.Option([*opt.names, opt.dest], is_flag=True, default=False, help=opt.help,
                            hidden=opt.hidden)
    if opt.kind == "list":
        return click.Option([*opt.names, opt.dest], multiple=True, help=opt.help, hidden=opt.hidden)
    kind: click.ParamType | type = click.Choice(list(opt.choices)) if opt.choices else \
        int if opt.kind == "int" else str
    return click.Option([*opt.names, opt.dest], type=kind, default=opt.default, help=opt.help,
                        hidden=opt.hidden)


def _command(verb: Verb) -> click.Command:
    """The click command (or group, for a verb with subverbs) of one table row."""
    if verb.subverbs:
        group = click.Group(verb.name, help=verb.help, short_help=verb.short_help)
        for sub in verb.subverbs:
            group.add_command(_command(sub))
        return group
    params: list[click.Parameter] = [_option(opt) for opt in verb.options]
    for i, arg in enumerate(verb.args):
        metavar = verb.metavars[i] if i < len(verb.metavars) else None
        name = arg.rstrip("?*")
        if arg.endswith("*"):
            params.append(click.Argument([name], nargs=-1, metavar=metavar,
                                         type=click.UNPROCESSED if verb.passthrough else None))
        else:
            params.append(click.Argument([name], required=not arg.endswith("?"), metavar=metavar))

    @click.pass_context
    def callback(ctx: click.Context, **values: object) -> Parsed:
        return ctx.find_root().obj, verb, values

    settings = {"ignore_unknown_options": True, "allow_interspersed_args": False} if verb.passthrough else {}
    return click.Command(verb.name, params=params, callback=callback, help=verb.help,
                         short_help=verb.short_help, context_settings=settings)


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return _command(VERBS[name]) if name in VERBS else None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]},
             params=[_option(o) for o in GLOBAL_OPTS])
@click.version_option(package_name="pyrunc", prog_name="pyrunc")
@click.pass_context
def cli(ctx: click.Context, **g: object) -> None:
    """An OCI runtime with runc's command line."""
    from pyrunc import logs

    ctx.obj = GlobalOptions(**g)
    logs.configure(ctx.obj.log, ctx.obj.log_format, ctx.obj.debug)


def parse(argv: list[str]) -> Parsed | int:
    """argv parsed by click; an int when click answered itself (help, --version: 0; usage error: 2)."""
    try:
        parsed = cli.main(args=argv, prog_name="pyrunc", standalone_mode=False)
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    except click.exceptions.Abort:
        return 130
    return parsed if isinstance(parsed, tuple) else 0


def main(argv: list[str]) -> int:
    """Run argv as the pyrunc command does (tests call this)."""
    from pyrunc.fastcli import main as run

    return run(argv)
