"""pybuild's command line: `pybuild [opts] -t NAME CONTEXT` builds; other verbs are subcommands.

The verbs live in `pybuild.commands`, whose COMMANDS table is the one list of them; this
file parses the global options, routes a docker-style `pybuild -t x .` to `build`, enters
the user namespace for the verbs that need it, imports the verb's module when that verb
runs, and is the one error handler every verb goes through: PybuildError, click's usage
errors and OSError each become one `pybuild: …` line and an exit code.
"""

from __future__ import annotations

import os
import sys

import click

from pybuild import rootless
from pybuild.commands import COMMANDS
from pybuild.errors import PybuildError

class _Group(click.Group):
    """A group whose subcommands are imported on use; an unknown first word
    that is not a verb means 'build' (docker-style `pybuild -t x .`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = COMMANDS.get(name)
        return None if command is None else command.load()

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


# What an ordinary user runs as themselves: the verbs that never touch the store or run
# anything (COMMANDS' userns=False), help and the version.
_NO_NAMESPACE = (*(name for name, c in COMMANDS.items() if not c.userns), "-h", "--help", "--version")


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
