"""`pyrunc spec [--bundle DIR] [--rootless]`: write runc's starter config.json.

Behaves as `runc spec`: the file is `<bundle>/config.json` (default: the
current directory), tab-indented exactly as runc writes it, and an existing
config.json is never overwritten.
"""

from __future__ import annotations

import json
import os

from pyrunc.errors import PyruncError
from pyrunc.verbs import GlobalOptions


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


def spec_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc spec [--bundle DIR] [--rootless]`."""
    write_spec(v.get("bundle"), bool(v.get("rootless")))
    return 0
