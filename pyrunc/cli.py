"""pyrunc's command line, runc-compatible.

Verbs live in their own modules; COMMANDS maps each verb to the click command
that implements it, imported only when that verb runs. Global flags land in
`ctx.obj` (a GlobalOptions). PyruncError is caught once, in `main`, and printed
as `pyrunc: <message>` or as a runc JSON log line with `--log-format json`.
"""

from __future__ import annotations

import importlib
import sys
import click

from pyrunc.errors import PyruncError
from pyrunc.verbs import VERBS, state_root
from pyrunc.verbs import GlobalOptions as _GlobalOptions

# verb -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "seccomp": "pyrunc.seccomp.tool:seccomp",
    "spec": "pyrunc.spec_cmd:spec",
    "features": "pyrunc.features:features",
    "pause": "pyrunc.pause:pause",
    "resume": "pyrunc.pause:resume",
    "update": "pyrunc.update:update",
    "events": "pyrunc.events:events",
    "ps": "pyrunc.ps:ps",
}


GlobalOptions = _GlobalOptions  # the object every command finds in ctx.obj


def _verb_command(verb) -> click.Command:
    """A click command for a lifecycle verb of verbs.VERBS (help and usage errors)."""
    params: list[click.Parameter] = []
    for opt in verb.options:
        if opt.kind == "flag":
            params.append(click.Option(list(opt.names), opt.dest, is_flag=True, default=False, help=opt.help))
        elif opt.kind == "list":
            params.append(click.Option(list(opt.names), opt.dest, multiple=True, help=opt.help))
        else:
            params.append(click.Option(list(opt.names), opt.dest, type=int if opt.kind == "int" else str,
                                       default=opt.default, help=opt.help))
    for arg in verb.args:
        if arg.endswith("*"):
            params.append(click.Argument([arg.rstrip("*")], nargs=-1))
        else:
            params.append(click.Argument([arg.rstrip("?")], required=not arg.endswith("?")))

    @click.pass_context
    def callback(ctx: click.Context, **values: object) -> None:
        code = verb.handler(ctx.obj, values)
        if code:
            ctx.exit(code)

    return click.Command(verb.name, params=params, callback=callback, help=verb.help)


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(VERBS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in VERBS:
            return _verb_command(VERBS[name])
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", default=None,
              help="Directory for container state [default: /run/pyrunc; $XDG_RUNTIME_DIR/pyrunc without root].")
@click.option("--log", default=None, help="Log file (default: stderr).")
@click.option("--log-format", default="text", help="'text' (default) or 'json'.")
@click.option("--debug", is_flag=True, help="Debug logging.")
@click.option("--systemd-cgroup", is_flag=True, help="cgroupsPath is slice:prefix:name (systemd).")
@click.option("--rootless", default="auto", help="Ignore cgroup permission errors (true|false|auto).")
@click.option("--criu", default=None, help="Path to criu (checkpoint/restore is not supported).")
@click.version_option(package_name="pyrunc", prog_name="pyrunc")
@click.pass_context
def cli(ctx: click.Context, root: str, log: str | None, log_format: str, debug: bool,
        systemd_cgroup: bool, rootless: str, criu: str | None) -> None:
    """An OCI runtime with runc's command line."""
    from pyrunc import logs

    logs.configure(log, log_format, debug)
    ctx.obj = GlobalOptions(root, log, log_format, debug, systemd_cgroup, rootless, criu)
    if ctx.invoked_subcommand not in ("spec", "features", None):
        state_root(ctx.obj)


def main(argv: list[str]) -> int:
    try:
        cli.main(args=argv, prog_name="pyrunc", standalone_mode=False)
    except PyruncError as err:
        report_error(str(err), argv)
        return err.exit_code
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    except click.exceptions.Abort:
        return 130
    return 0


def report_error(message: str, argv: list[str]) -> None:
    from pyrunc import logs

    logs.error(message)
