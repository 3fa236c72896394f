"""`pyrunc state ID` and `pyrunc list`, byte-compatible with runc's output."""

from __future__ import annotations

import os
import sys

from pyrunc import jsonfast

from pyrunc.errors import ContainerNotFound
from pyrunc.state import CorruptState, State, StateStore
from pyrunc.verbs import GlobalOptions


def state_json(store: StateStore, container_id: str) -> str:
    """runc: json.MarshalIndent(state, "", "  "), written without a newline."""
    return jsonfast.dumps_indent(store.load(container_id).oci(), 2)


def _all(store: StateStore) -> list[State]:
    out = []
    for cid in store.ids():
        try:
            out.append(_fill_owner(store.load(cid)))
        except ContainerNotFound:
            continue  # deleted between listdir and load
        except CorruptState as err:  # runc: "load container ID: …" on stderr, and the rest still listed
            from pyrunc import logs

            logs.warning(f"load container {cid}: {err}")
    return out


def list_output(store: StateStore, fmt: str = "table", quiet: bool = False) -> str:
    states = _all(store)
    if quiet:
        return "".join(f"{st.id}\n" for st in states)
    if fmt == "json":
        return (jsonfast.dumps([st.oci() for st in states], compact=True) if states else "null") + "\n"
    rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    for st in states:
        doc = st.oci()
        rows.append([st.id, str(doc["pid"]), doc["status"], st.bundle, st.created, st.owner])
    return tabwrite(rows)


def _fill_owner(state: State) -> State:
    """runc's list (not state) names the owner of the container's state dir."""
    import pwd

    uid = os.stat(state.state_dir).st_uid
    try:
        state.owner = pwd.getpwuid(uid).pw_name
    except KeyError:
        state.owner = f"#{uid}"
    return state


def tabwrite(rows: list[list[str]], minwidth: int = 12, padding: int = 3) -> str:
    """Go's text/tabwriter as runc configures it: every column but the last
    is padded to max(len + padding, minwidth)."""
    ncols = max(len(r) for r in rows)
    widths = [max(max(len(r[i]) for r in rows if len(r) > i) + padding, minwidth) for i in range(ncols - 1)]
    lines = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i < ncols - 1 else c for i, c in enumerate(r)]
        lines.append("".join(cells))
    return "\n".join(lines) + "\n"


def state_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc state ID`."""
    from pyrunc.verbs import store

    sys.stdout.write(state_json(store(g), v["container_id"]))
    return 0


def list_verb(g: GlobalOptions, v: dict) -> int:
    """`pyrunc list [-f table|json] [-q]`."""
    from pyrunc.errors import PyruncError
    from pyrunc.verbs import store

    fmt = v.get("format") or "table"
    if fmt not in ("table", "json"):
        raise PyruncError(f"invalid format option: {fmt}")
    sys.stdout.write(list_output(store(g), fmt, bool(v.get("quiet"))))
    return 0
