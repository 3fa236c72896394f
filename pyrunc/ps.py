"""`pyrunc ps [-f table|json] ID [ps args]`: the container's host PIDs.

As runc: json prints the PID list; table runs the host's `ps` (default
`-ef`) and keeps the header and the lines whose PID column is in the
container's cgroup.
"""

from __future__ import annotations

import json
import subprocess
import sys

from pyrunc.errors import PyruncError
from pyrunc.rootless import warn_rootless_cgroups
from pyrunc.verbs import GlobalOptions, state_root


def container_pids(root: str, container_id: str) -> list[int]:
    from pyrunc.cgroups import load_manager
    from pyrunc.state import StateStore

    state = StateStore(root).load(container_id)
    if not state.cgroup:
        raise PyruncError(f"ps: container {container_id} has no cgroup")
    warn_rootless_cgroups("ps", state.cgroup)
    manager = load_manager(state.cgroup)
    if not manager.placed():
        raise PyruncError(f"ps: container {container_id} has no cgroup (rootless, none delegated): "
                          "its processes cannot be listed")
    return sorted(manager.pids())


def filter_ps(output: str, pids: list[int]) -> str:
    lines = output.split("\n")
    header = lines[0].split()
    try:
        index = header.index("PID")
    except ValueError:
        raise PyruncError("ps: couldn't find PID field in ps output") from None
    wanted = set(pids)
    out = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= index:
            continue
        try:
            pid = int(fields[index])
        except ValueError:
            raise PyruncError(f"ps: unexpected pid {fields[index]!r} in ps output") from None
        if pid in wanted:
            out.append(line)
    return "\n".join(out) + "\n"


def ps_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc ps [-f table|json] ID [PS_ARGS...]`."""
    ps_args = tuple(v.get("ps_args") or ())
    pids = container_pids(state_root(g), v["container_id"])
    if v.get("fmt") == "json":
        sys.stdout.write(json.dumps(pids or None, separators=(",", ":")) + "\n")  # Go encodes an empty slice as null
        return 0
    try:
        proc = subprocess.run(["ps", *(ps_args or ("-ef",))], capture_output=True, text=True)
    except FileNotFoundError:
        raise PyruncError("ps: the ps command is not installed") from None
    if proc.returncode != 0:
        raise PyruncError(f"ps {' '.join(ps_args or ('-ef',))}: {(proc.stderr or proc.stdout).strip()}")
    sys.stdout.write(filter_ps(proc.stdout, pids))
    return 0
