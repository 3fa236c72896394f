"""`pyrunc spec [--bundle DIR] [--rootless]`: write runc's starter config.json.

Behaves as `runc spec`: the file is `<bundle>/config.json` (default: the
current directory), tab-indented exactly as runc writes it, and an existing
config.json is never overwritten.
"""

from __future__ import annotations

import json
import os

import click

from pyrunc.errors import PyruncError


class SpecExists(PyruncError):
    """config.json is already there; runc refuses to overwrite it, so do we."""


def write_spec(bundle: str | None, rootless: bool) -> str:
    """Write the default config.json into `bundle` (or "."); returns the path written."""
    from pyrunc.spec import default_config

    directory = bundle or "."
    if not os.path.isdir(directory):  # runc chdir()s into the bundle: same messages
        try:
            os.stat(directory)
        except OSError as err:
            raise PyruncError(f"chdir {directory}: {err.strerror.lower()}") from None
        raise PyruncError(f"chdir {directory}: not a directory")
    path = os.path.join(directory, "config.json")
    if os.path.lexists(path):
        raise SpecExists("File config.json exists. Remove it first")
    data = json.dumps(default_config(rootless), indent="\t").encode()
    try:  # O_EXCL: a config.json that appears meanwhile is not clobbered either
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        raise SpecExists("File config.json exists. Remove it first") from None
    except OSError as err:
        raise PyruncError(f"open {path}: {err.strerror.lower()}") from None
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return path


_HELP = """Create a new specification file named "config.json" for the bundle.

The spec generated is just a starter file, the same one `runc spec` writes:
its args call "sh", so edit it for the container you want to run. With
--rootless the config maps the current user to root in a user namespace and
does without the network namespace and cgroup device rules.
"""


@click.command("spec", help=_HELP, short_help="create a new specification file")
@click.option("--bundle", "-b", default=None, help="path to the root of the bundle directory")
@click.option("--rootless", is_flag=True, help="generate a configuration for a rootless container")
def spec(bundle: str | None, rootless: bool) -> None:
    write_spec(bundle, rootless)
