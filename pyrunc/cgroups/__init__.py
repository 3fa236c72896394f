"""cgroups: detect the host's hierarchy at run time and hand out a manager.

    mgr = new_manager(spec_cgroups_path, container_id)   # cheap: no I/O but detection
    mgr.create(); mgr.apply(resources); mgr.add(pid)     # on create
    state.cgroup = mgr.to_state()                        # remembered in state.json
    mgr = load_manager(state.cgroup)                     # in later commands

`cgroups_path` None means `/pyrunc/<id>`; a relative path is relative to the
runtime's own cgroup (runc's rule). v2 hosts get a V2Manager; v1 and hybrid
hosts a V1Manager (on hybrid with the cgroup2 directory as path "").
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~4 ms on the run hot path

from pyrunc.errors import CgroupError

if TYPE_CHECKING:
    from typing import Any

    from pyrunc.cgroups.base import Manager

__all__ = ["Manager", "new_manager", "load_manager"]


def new_manager(cgroups_path: str | None, container_id: str, *, systemd: bool = False,
                rootless: bool = False) -> Manager:
    if systemd:
        from pyrunc.cgroups import systemd as sd

        sd.new_manager(cgroups_path, container_id)  # raises: no D-Bus driver here
    from pyrunc.cgroups import hierarchy

    if cgroups_path and ":" in cgroups_path and not cgroups_path.startswith("/"):
        raise CgroupError(f"cgroupsPath {cgroups_path!r} looks like slice:prefix:name; "
                          f"that form needs --systemd-cgroup")
    path = cgroups_path or f"/pyrunc/{container_id}"
    hier = hierarchy.detect()
    own = None if path.startswith("/") else hierarchy.own_cgroups()
    if hier.mode == "v2":
        from pyrunc.cgroups.v2 import V2Manager

        return V2Manager(hierarchy.resolve(path, "", own), mount=hier.unified or hierarchy.ROOT,
                         rootless=rootless)
    from pyrunc.cgroups.v1 import V1Manager

    paths = {c: f"{mnt}{hierarchy.resolve(path, c, own)}".replace("//", "/")
             for c, mnt in hier.v1.items()}
    if hier.unified:
        paths[""] = f"{hier.unified}{hierarchy.resolve(path, '', own)}".replace("//", "/")
    return V1Manager(paths, rootless=rootless, path=path)


def load_manager(state: dict[str, Any]) -> Manager:
    """Rebuild the manager a previous command stored with to_state()."""
    version = state.get("version")
    if version == "v1":
        from pyrunc.cgroups.v1 import V1Manager

        return V1Manager(dict(state["paths"]), created=list(state.get("created", [])),
                         rootless=bool(state.get("rootless")), path=state.get("path", ""))
    if version == "v2":
        from pyrunc.cgroups.v2 import V2Manager

        return V2Manager(state["path"], mount=state["mount"], created=list(state.get("created", [])),
                         rootless=bool(state.get("rootless")))
    raise CgroupError(f"state.json: unknown cgroup manager state {version!r}")
