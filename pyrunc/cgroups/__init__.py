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
    # runc: permission errors are tolerated only for a rootless container without cgroupsPath;
    # one that names its cgroup fails when it may not make or join it.
    optional = rootless and not cgroups_path
    hier = hierarchy.detect()
    own = None if path.startswith("/") else hierarchy.own_cgroups()
    if hier.mode == "v2":
        from pyrunc.cgroups.v2 import V2Manager

        mount = hier.unified or hierarchy.ROOT
        return V2Manager(_inner(path, "", own, mount), mount=mount, rootless=rootless, optional=optional)
    from pyrunc.cgroups.v1 import V1Manager

    paths = {c: f"{mnt}{_inner(path, c, own, mnt)}".replace("//", "/") for c, mnt in hier.v1.items()}
    if hier.unified:
        paths[""] = f"{hier.unified}{_inner(path, '', own, hier.unified)}".replace("//", "/")
    return V1Manager(paths, rootless=rootless, path=path, optional=optional)


def _inner(path: str, controller: str, own: dict[str, str] | None, mount: str) -> str:
    """The container's cgroup inside one hierarchy; never the hierarchy's root.

    A root cgroup holds every process of the host: joining it means no limits
    at all, and destroying it (runc 1.1 removes the path recursively, and kills
    its processes when the pid namespace is shared) would remove every empty
    cgroup of the host. `/`, `//`, `/x/../..`, or a relative path while the
    runtime itself sits at the root, all end up there."""
    from pyrunc.cgroups import hierarchy
    from pyrunc.errors import ConfigError

    inner = hierarchy.resolve(path, controller, own)
    if inner == "/":
        raise ConfigError(".linux.cgroupsPath", f"{path!r} resolves to the root of the cgroup hierarchy "
                                                f"{mount}; a container needs a cgroup of its own")
    return inner


def load_manager(state: dict[str, Any]) -> Manager:
    """Rebuild the manager a previous command stored with to_state()."""
    version = state.get("version")
    created = state.get("created", [])
    if type(created) is not list or not all(type(d) is str for d in created):
        raise CgroupError("state.json: .cgroup.created must be a list of paths")
    if version == "v1":
        from pyrunc.cgroups.v1 import V1Manager

        paths = state.get("paths")
        if type(paths) is not dict or not all(type(p) is str for p in paths.values()):
            raise CgroupError("state.json: .cgroup.paths must map controllers to paths")
        return V1Manager(dict(paths), created=list(created), rootless=bool(state.get("rootless")),
                         path=str(state.get("path", "")), optional=bool(state.get("optional")))
    if version == "v2":
        from pyrunc.cgroups.v2 import V2Manager

        path, mount = state.get("path"), state.get("mount")
        if type(path) is not str or type(mount) is not str:
            raise CgroupError("state.json: .cgroup.path and .cgroup.mount must be paths")
        m = V2Manager(path, mount=mount, created=list(created), rootless=bool(state.get("rootless")),
                      optional=bool(state.get("optional")))
        m.unplaced = bool(state.get("unplaced"))
        return m
    raise CgroupError(f"state.json: unknown cgroup manager state {version!r}")
