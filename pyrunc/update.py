"""`pyrunc update ID`: change a live container's cgroup limits, as runc.

Limits come from runc's flags or, with `-r FILE|-`, from a JSON
`LinuxResources` object (then the flags are ignored, as in runc). Only the
fields given are written; the manager applies them all or restores the
previous values. A stopped container is refused.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import click

from pyrunc.errors import ConfigError, InvalidState, MissingFeature

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?$", re.IGNORECASE)


def parse_bytes(text: str, flag: str) -> int:
    """Docker's RAMInBytes (`512m`, `1g`, `1024`), and -1 for unlimited."""
    if text.strip() == "-1":
        return -1
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise ConfigError(flag, f"invalid size {text!r}", "pyrunc update")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def resources_from_flags(values: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        if value is not None:
            res.setdefault(section, {})[key] = value

    for flag, key in (("memory", "limit"), ("memory_swap", "swap"), ("memory_reservation", "reservation"),
                      ("kernel_memory", "kernel"), ("kernel_memory_tcp", "kernelTCP")):
        if values.get(flag) is not None:
            put("memory", key, parse_bytes(values[flag], "--" + flag.replace("_", "-")))
    for flag, key in (("cpu_share", "shares"), ("cpu_quota", "quota"), ("cpu_period", "period"),
                      ("cpu_rt_period", "realtimePeriod"), ("cpu_rt_runtime", "realtimeRuntime"),
                      ("cpuset_cpus", "cpus"), ("cpuset_mems", "mems")):
        put("cpu", key, values.get(flag))
    put("pids", "limit", values.get("pids_limit"))
    put("blockIO", "weight", values.get("blkio_weight"))
    return res


def read_resources(path: str) -> dict[str, Any]:
    from pyrunc.spec import decode_json, read_json

    if path == "-":
        doc = decode_json(sys.stdin.buffer.read(), path)
    else:
        doc = read_json(path)
    if not isinstance(doc, dict):
        raise ConfigError("", "must be a JSON object (LinuxResources)", path)
    return doc


def update_container(root: str, container_id: str, resources: dict[str, Any], source: str) -> None:
    from pyrunc.cgroups import load_manager
    from pyrunc.state import StateStore, Status

    store = StateStore(root)
    with store.lock(container_id):
        state = store.load(container_id)
        if state.status is Status.STOPPED:
            raise InvalidState("container not running")  # runc's words
        if not state.cgroup:
            raise InvalidState(f"cannot update container {container_id}: it has no cgroup")
        load_manager(state.cgroup).update(resources, source=source, prefix="")


@click.command("update", help="Update container resource constraints.")
@click.option("-r", "--resources", "resources_path", default=None,
              help="path to the file containing the resources to update or '-' to read from the standard input")
@click.option("--blkio-weight", type=int, default=None, help="per cgroup weight, range is from 10 to 1000")
@click.option("--cpu-period", type=int, default=None, help="CPU CFS period to be used for hardcapping (in usecs)")
@click.option("--cpu-quota", type=int, default=None, help="CPU CFS hardcap limit (in usecs) per period")
@click.option("--cpu-share", "--cpu-shares", "cpu_share", type=int, default=None, help="CPU shares (relative weight)")
@click.option("--cpu-rt-period", type=int, default=None, help="CPU realtime period (in usecs)")
@click.option("--cpu-rt-runtime", type=int, default=None, help="CPU realtime hardcap limit (in usecs)")
@click.option("--cpuset-cpus", default=None, help="CPU(s) to use")
@click.option("--cpuset-mems", default=None, help="Memory node(s) to use")
@click.option("--memory", default=None, help="Memory limit (in bytes, or with a k/m/g suffix)")
@click.option("--memory-reservation", default=None, help="Memory reservation or soft_limit")
@click.option("--memory-swap", default=None, help="Total memory usage (memory + swap); '-1' for unlimited swap")
@click.option("--kernel-memory", default=None, hidden=True)
@click.option("--kernel-memory-tcp", default=None, hidden=True)
@click.option("--pids-limit", type=int, default=None, help="Maximum number of pids allowed in the container")
@click.option("--l3-cache-schema", default=None, help="Intel RDT/CAT L3 cache schema (not supported)")
@click.option("--mem-bw-schema", default=None, help="Intel RDT/MBA memory bandwidth schema (not supported)")
@click.argument("container_id", metavar="ID")
@click.pass_context
def update(ctx: click.Context, resources_path: str | None, container_id: str, **flags: Any) -> None:
    if resources_path is not None:
        resources = read_resources(resources_path)
        source = "<stdin>" if resources_path == "-" else resources_path
    else:
        if flags.get("l3_cache_schema") or flags.get("mem_bw_schema"):
            raise MissingFeature("Intel RDT (--l3-cache-schema, --mem-bw-schema)", "pyrunc has no resctrl support")
        resources = resources_from_flags(flags)
        source = "pyrunc update"
    update_container(ctx.obj.root, container_id, resources, source)
