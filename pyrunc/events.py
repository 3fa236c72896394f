"""`pyrunc events [--stats] [--interval 5s] ID`: runc's event stream.

Each line is one JSON event: `{"type":"stats","id":ID,"data":{...}}` every
interval, and `{"type":"oom","id":ID}` as soon as the cgroup hits its memory
limit (eventfd on v1, inotify on memory.events on v2). `--stats` prints one
stats event and exits. The stream ends when the container's cgroup is gone.
"""

from __future__ import annotations

import json
import re
import select
import sys
import time

from pyrunc.errors import InvalidState, PyruncError
from pyrunc.verbs import GlobalOptions, state_root

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_SCALE = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration subset runc accepts: `5s`, `100ms`, `1m30s`."""
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _SCALE[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text or total <= 0:
        raise PyruncError(f"events: invalid --interval {text!r} (expected a duration like 5s or 500ms)")
    return total


def emit(kind: str, container_id: str, data: dict | None = None) -> None:
    event: dict = {"type": kind, "id": container_id}
    if data is not None:
        event["data"] = data
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def stream(root: str, container_id: str, stats_only: bool, interval: float) -> None:
    from pyrunc.cgroups import load_manager
    from pyrunc.state import StateStore, Status

    state = StateStore(root).load(container_id)
    if state.status is Status.STOPPED:
        raise InvalidState(f"container with id {container_id} is not running")
    mgr = load_manager(state.cgroup)
    if stats_only:
        emit("stats", container_id, mgr.stats())
        return
    from pyrunc.cgroups import oom
    from pyrunc.errors import MissingFeature

    try:
        watcher: oom.OomWatcher | None = oom.watch(mgr)
    except MissingFeature as err:  # e.g. v2 without the memory controller: stats still flow
        from pyrunc import logs

        logs.warning(f"events: no OOM notifications: {err}")
        watcher = None
    try:
        next_tick = time.monotonic() + interval
        while True:
            timeout = max(0.0, next_tick - time.monotonic())
            ready, _, _ = select.select([watcher] if watcher else [], [], [], timeout)
            if ready and watcher:
                for _ in range(watcher.read()):
                    emit("oom", container_id)
            if not (mgr.exists() and mgr.pids()):
                break  # the container is gone (its cgroup removed or emptied)
            if time.monotonic() >= next_tick:
                next_tick += interval
                emit("stats", container_id, mgr.stats())
    finally:
        if watcher:
            watcher.close()


def events_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc events [--interval D] [--stats] ID`."""
    stream(state_root(g), v["container_id"], bool(v["stats_only"]), parse_duration(v["interval"]))
    return 0
