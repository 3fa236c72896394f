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

from pyrunc.errors import ConfigError, InvalidState, MissingFeature
from pyrunc.verbs import GlobalOptions, state_root

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
        from pyrunc.config.resources import load_resources

        load_manager(state.cgroup).update(load_resources(resources, "", source), source=source, prefix="",
                                          devices_too="devices" in resources)


def update_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc update [-r FILE|-] [--memory ...] ID`."""
    flags = {k: val for k, val in v.items() if k not in ("resources_path", "container_id")}
    resources_path = v.get("resources_path")
    if resources_path is not None:
        resources = read_resources(resources_path)
        source = "<stdin>" if resources_path == "-" else resources_path
    else:
        if flags.get("l3_cache_schema") or flags.get("mem_bw_schema"):
            raise MissingFeature("Intel RDT (--l3-cache-schema, --mem-bw-schema)", "pyrunc has no resctrl support")
        resources = resources_from_flags(flags)
        source = "pyrunc update"
    update_container(state_root(g), v["container_id"], resources, source)
    return 0
