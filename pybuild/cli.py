"""pybuild's command line: `pybuild [opts] -t NAME CONTEXT` builds; other verbs are subcommands.

The verbs live in their own modules; this file only knows their names (COMMANDS)
and imports a verb's module when that verb runs, so `pybuild parse` does not pay
for the builder and vice versa. PybuildError is caught once, here.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from pybuild import rootless
from pybuild.errors import PybuildError

# verb -> "module:click_command_attribute". Each module defines a click.Command.
COMMANDS: dict[str, str] = {
    "build": "pybuild.commands.build:build",
    "parse": "pybuild.commands.parse:parse",
    "images": "pybuild.commands.images:images",
    "inspect": "pybuild.commands.inspect:inspect",
    "tag": "pybuild.commands.images:tag",
    "rmi": "pybuild.commands.images:rmi",
    "prune": "pybuild.commands.images:prune",
    "fsck": "pybuild.commands.images:fsck",
    "export": "pybuild.commands.images:export",
    "import": "pybuild.commands.images:import_",
    "bundle": "pybuild.commands.images:bundle",
    "pull": "pybuild.commands.registry:pull",
    "push": "pybuild.commands.registry:push",
    "login": "pybuild.commands.registry:login",
    "logout": "pybuild.commands.registry:logout",
    "save": "pybuild.commands.archives:save",
    "load": "pybuild.commands.archives:load",
    "run": "pybuild.commands.run:run",
    "ps": "pybuild.commands.containers:ps",
    "stop": "pybuild.commands.containers:stop",
    "rm": "pybuild.commands.containers:rm",
    "logs": "pybuild.commands.containers:logs",
    "commit": "pybuild.commands.containers:commit",
    "exec": "pybuild.commands.exec:exec_",
    "top": "pybuild.commands.lifecycle:top",
    "port": "pybuild.commands.lifecycle:port",
    "wait": "pybuild.commands.lifecycle:wait",
    "kill": "pybuild.commands.lifecycle:kill",
    "restart": "pybuild.commands.lifecycle:restart",
    "volume": "pybuild.commands.volumes:volume",
    "info": "pybuild.commands.info:info",
    "system": "pybuild.commands.info:system",
}


class _Group(click.Group):
    """A group whose subcommands are imported on use; an unknown first word
    that is not a verb means 'build' (docker-style `pybuild -t x .`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def resolve_command(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and args[0] not in COMMANDS and "build" in COMMANDS:
            args = ["build", *args]
        return super().resolve_command(ctx, args)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pyrunc", prog_name="pybuild", message="%(prog)s, version %(version)s")
@click.option("--root", envvar="PYBUILD_ROOT", default=lambda: rootless.default_store(),
              show_default="/var/lib/pybuild; ~/.local/share/pybuild for a user",
              help="Image store (an OCI image layout).")
@click.option("--runtime", default="pyrunc", show_default=True,
              help="OCI runtime for RUN steps: pyrunc, runc, crun or a path.")
@click.pass_context
def cli(ctx: click.Context, root: str, runtime: str) -> None:
    """Build OCI images from Dockerfiles."""
    ctx.obj = {"root": root, "runtime": runtime}


_GLOBAL_OPTS_WITH_VALUE = ("--root", "--runtime")


def route_build(argv: list[str]) -> list[str]:
    """Docker-style `pybuild [--root R] -t x .`: click parses group options
    before it looks for a verb, so insert `build` where the verb would be
    when what follows the global options is not a verb (nor help)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in _GLOBAL_OPTS_WITH_VALUE:
            i += 2
        elif arg.startswith(tuple(o + "=" for o in _GLOBAL_OPTS_WITH_VALUE)):
            i += 1
        else:
            break
    if i < len(argv) and argv[i] not in COMMANDS and argv[i] not in ("-h", "--help", "--version") and "build" in COMMANDS:
        return argv[:i] + ["build"] + argv[i:]
    return argv


# Verbs that never touch the store or run anything: an ordinary user runs them as themselves.
_NO_NAMESPACE = ("parse", "login", "logout", "-h", "--help", "--version")


def _verb(argv: list[str]) -> str | None:
    """The verb (or help/version flag) `main` will run: the first word after the global options."""
    routed = route_build(argv)
    i = 0
    while i < len(routed) and (routed[i] in _GLOBAL_OPTS_WITH_VALUE
                               or routed[i].startswith(tuple(o + "=" for o in _GLOBAL_OPTS_WITH_VALUE))):
        i += 2 if routed[i] in _GLOBAL_OPTS_WITH_VALUE else 1
    return routed[i] if i < len(routed) else None


def main(argv: list[str]) -> int:
    try:
        if os.geteuid() != 0 and _verb(argv) not in (*_NO_NAMESPACE, None):
            rootless.enter()  # before anything else: single-threaded, nothing opened yet
        code = cli.main(args=route_build(argv), prog_name="pybuild", standalone_mode=False)
    except PybuildError as err:
        click.echo(f"pybuild: {err}", err=True)
        return err.exit_code
    except click.exceptions.Abort:
        click.echo("pybuild: aborted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    except OSError as err:
        # What the system refuses (no space left, a read-only file system, a quota) reaches the user
        # as one line naming the file, as in pyrunc's CLI; whatever was half-written has been removed
        # by the unwinding (temp files, blob writers, layer temp dirs, the build's temp dir).
        where = f"{err.filename}: " if err.filename else ""
        click.echo(f"pybuild: {where}{err.strerror or err}", err=True)
        return 1
    return code if isinstance(code, int) else 0  # ctx.exit(N) of `run`: the container's status
