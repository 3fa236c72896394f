"""pyrunc's command line, runc-compatible.

Verbs live in their own modules; COMMANDS maps each verb to the click command
that implements it, imported only when that verb runs. Global flags land in
`ctx.obj` (a GlobalOptions). PyruncError is caught once, in `main`, and printed
as `pyrunc: <message>` or as a runc JSON log line with `--log-format json`.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass

import click

from pyrunc.errors import PyruncError

# verb -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "seccomp": "pyrunc.seccomp.tool:seccomp",
}


@dataclass(slots=True)
class GlobalOptions:
    root: str = "/run/pyrunc"
    log: str | None = None
    log_format: str = "text"
    debug: bool = False
    systemd_cgroup: bool = False
    rootless: str = "auto"


class _Group(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", default="/run/pyrunc", show_default=True, help="Directory for container state.")
@click.option("--log", default=None, help="Log file (default: stderr).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text")
@click.option("--debug", is_flag=True, help="Debug logging.")
@click.option("--systemd-cgroup", is_flag=True, help="cgroupsPath is slice:prefix:name (systemd).")
@click.option("--rootless", default="auto", help="Ignore cgroup permission errors (true|false|auto).")
@click.version_option(package_name="pyrunc", prog_name="pyrunc")
@click.pass_context
def cli(ctx: click.Context, root: str, log: str | None, log_format: str, debug: bool,
        systemd_cgroup: bool, rootless: str) -> None:
    """An OCI runtime with runc's command line."""
    ctx.obj = GlobalOptions(root, log, log_format, debug, systemd_cgroup, rootless)


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

    logs.error(message, argv)
