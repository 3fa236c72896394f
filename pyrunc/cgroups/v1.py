"""cgroup v1 manager: one directory per controller hierarchy.

On hybrid hosts the container also gets a directory in the cgroup2 mount
(key "" in `paths`), as runc does, so v2-only tools see it; limits stay on
the v1 controllers. What depends on the host's hierarchy (bfq's file names,
the memory/memsw order, the ancestors' realtime runtime, seeding new cpuset
directories from their parent) is decided by v1host from the plan and a probe,
as `pyrunc explain` decides it.
"""

from __future__ import annotations

import errno
import os
import time
TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~4 ms on the run hot path

if TYPE_CHECKING:
    from typing import Any

    from pyrunc.cgroups.resources import Plan
    from pyrunc.spec import Resources

# resources and devices (and through them spec) are imported where limits are planned: `delete`,
# `kill --all`, `pause` and `events` load a manager only to find, signal or remove its cgroups.
from pyrunc.cgroups import fileio, v1host
from pyrunc.cgroups.common import (DirMaker, check_cpuset_exists, check_existing, join_procs, owns_leaves, rmdir_tree,
                                   warn_kernel_memory)
from pyrunc.errors import CgroupError, ConfigError, MissingFeature
from pyrunc.logs import debug as logs_debug

# spec field that needs each optional controller (for error messages)
_FIELD = {"hugetlb": "hugepageLimits", "net_cls": "network.classID", "net_prio": "network.priorities",
          "rdma": "rdma", "cpu": "cpu", "cpuset": "cpu.cpus", "memory": "memory", "pids": "pids",
          "blkio": "blockIO", "devices": "devices"}


class V1Manager:
    version = "v1"

    def __init__(self, paths: dict[str, str], *, created: list[str] | None = None,
                 rootless: bool = False, path: str = "", optional: bool = False) -> None:
        self.paths = paths  # controller -> absolute directory
        self.created = created if created is not None else []
        self.rootless = rootless
        self.optional = optional  # rootless without cgroupsPath: a hierarchy it may not write is skipped
        self.path = path

    # --- lifecycle -----------------------------------------------------------
    def _dirs(self) -> list[str]:
        return list(dict.fromkeys(self.paths.values()))

    def missing_dirs(self) -> list[str]:
        return DirMaker.missing(self._dirs())

    def create(self) -> None:
        maker = DirMaker(self.created)
        try:
            for controller, path in list(self.paths.items()):
                seeds = v1host.cpuset_seeds(DirMaker.missing([path])) if controller == "cpuset" else ()
                try:
                    made = maker.makedirs(path)
                except OSError as err:
                    if self.optional and err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                        # runc (fs.Manager.Apply): a rootless container without cgroupsPath
                        # goes without the hierarchies it may not write; a limit that needs
                        # one fails in apply.
                        del self.paths[controller]
                        logs_debug(f"rootless: no cgroup in {path}: {err.strerror}")
                        continue
                    raise
                for seed in seeds:  # only in the directories this call made
                    if os.path.dirname(seed.path) in made:
                        fileio.write(seed.path, seed.value)
        except OSError as err:
            self.destroy()
            raise CgroupError(f"create cgroup {err.filename}: {err.strerror}") from None
        try:
            check_existing(self, self._dirs())
        except CgroupError:
            self.destroy()
            raise

    def add(self, pid: int) -> None:
        for path in self._dirs():
            join_procs(path, pid, self.optional)

    def exists(self) -> bool:
        return any(os.path.isdir(p) for p in self._dirs())

    def destroy(self, *, kill: bool = False) -> None:
        """Remove the cgroups this container made (with what grew inside them),
        never one it found; `kill` (a shared pid namespace) sweeps them first,
        only when all of them are its own."""
        dirs = self._dirs()
        if kill and owns_leaves(self, dirs) and self.exists():
            self.kill_all(9)  # SIGKILL
            _wait_empty(self)
        for path in dirs:
            if path in self.created:
                rmdir_tree(path)
        DirMaker(self.created).remove_parents()

    def to_state(self) -> dict[str, Any]:
        return {"version": "v1", "paths": self.paths, "created": self.created,
                "rootless": self.rootless, "path": self.path, **({"optional": True} if self.optional else {})}

    def placed(self) -> bool:
        """Whether the container has a cgroup at all (a rootless one may have none)."""
        return bool(self.paths)

    # --- resources ------------------------------------------------------------
    def apply(self, resources_: Resources | None) -> None:
        self._apply(resources_, ".linux.resources", "config.json", devices_too=True)

    def update(self, resources_: Resources, *, source: str = "config.json",
               prefix: str = ".linux.resources", devices_too: bool = False) -> None:
        self._apply(resources_, prefix, source, devices_too=devices_too)

    def plan(self, res: Resources | None, prefix: str, source: str, devices_too: bool) -> Plan:
        from pyrunc.cgroups import devices, resources

        plan = resources.plan_v1(res, prefix=prefix, source=source)
        if devices_too:
            rules = devices.parse_rules(res.devices if res else (), prefix, source)
            plan["devices"] = devices.v1_plan(devices.compute(rules, prefix=prefix, source=source))
        warn_kernel_memory(res)
        return plan

    def _apply(self, res: Resources | None, prefix: str, source: str, devices_too: bool) -> None:
        plan = self.plan(res, prefix, source, devices_too)
        if self.rootless:
            plan.pop("devices", None)  # runc: a rootless container's device rules are not applied
        for controller in plan:
            if controller not in self.paths:
                if self.optional and plan[controller]:
                    raise CgroupError(f"cannot set {_FIELD.get(controller, controller)} limit: container could "
                                      f"not join or create cgroup (rootless: {controller} is not delegated)")
                why = "not mounted on this host" if _kernel_has(controller) else "the kernel lacks it"
                raise MissingFeature(f"cgroup v1 controller {controller}",
                                     f"{why} (needed by {prefix}.{_FIELD.get(controller, controller)})")
        if "cpuset" in plan:
            check_cpuset_exists(plan["cpuset"], os.path.dirname(self.paths["cpuset"]), prefix, source)
        plan, raises = v1host.settle(plan, v1host.probe(self.paths, plan), res)
        limit = plan.get("memory", {}).get("memory.limit_in_bytes")
        from pyrunc.cgroups.resources import memory_check_before_update

        if limit and limit != "-1" and memory_check_before_update(res):
            usage = fileio.read_int(f"{self.paths['memory']}/memory.usage_in_bytes")
            if int(limit) < usage:
                raise ConfigError(f"{prefix}.memory.limit",
                                  f"{limit} is below the current usage {usage} (checkBeforeUpdate)", source)
        for path, value in raises:  # the ancestors' realtime runtime, top down (not undone: never lowered)
            fileio.write(path, value)
        writer = fileio.Writer()
        devlist = None
        if "devices" in plan:
            devlist = fileio.read(f"{self.paths['devices']}/devices.list")
        try:
            for controller, files in plan.items():
                base = self.paths[controller]
                for name, value in files.items():
                    writer.write(f"{base}/{name}", value)
        except (CgroupError, OSError) as err:
            writer.rollback()
            if devlist is not None:
                _restore_devices(self.paths["devices"], devlist)
            raise

    # --- freezer, processes -------------------------------------------------------
    def _freezer(self) -> str:
        try:
            return f"{self.paths['freezer']}/freezer.state"
        except KeyError:
            if self.optional:
                raise CgroupError("cannot toggle freezer: cgroups not configured for container "
                                  "(rootless: the freezer hierarchy is not delegated)") from None
            raise MissingFeature("cgroup v1 controller freezer", "not mounted on this host") from None

    def freeze(self) -> None:
        state = self._freezer()
        deadline = time.monotonic() + 5.0
        fileio.write(state, "FROZEN")
        while (current := fileio.read(state)) != "FROZEN":
            if time.monotonic() > deadline:
                fileio.write(state, "THAWED")
                raise CgroupError(f"freeze {state}: still {current} after 5s")
            time.sleep(0.001)
            fileio.write(state, "FROZEN")  # re-kick tasks that were mid-fork (runc does too)

    def thaw(self) -> None:
        fileio.write(self._freezer(), "THAWED")

    def is_frozen(self) -> bool:
        path = self.paths.get("freezer")
        if path is None:
            return False
        try:
            return fileio.read(f"{path}/freezer.state") == "FROZEN"
        except OSError:
            return False

    def _pid_dir(self) -> str:
        for c in ("pids", "freezer", "devices", "memory", "cpu"):
            if c in self.paths:
                return self.paths[c]
        return self._dirs()[0]

    def pids(self) -> list[int]:
        """Union over every hierarchy: a process half-moved (or moved by hand
        into one controller) is still the container's."""
        from pyrunc.cgroups.common import read_pids_tree

        seen: dict[int, None] = {}
        for path in self._dirs():
            for pid in read_pids_tree(path):
                seen[pid] = None
        return list(seen)

    def kill_all(self, sig: int) -> None:
        from pyrunc.cgroups.common import signal_frozen

        can_freeze = "freezer" in self.paths and os.path.isdir(self.paths["freezer"])
        signal_frozen(self, sig, can_freeze)

    def stats(self) -> dict[str, Any]:
        from pyrunc.cgroups.stats import stats_v1

        return stats_v1(self.paths)


def _kernel_has(controller: str) -> bool:
    """Is the controller compiled in and enabled (/proc/cgroups)? Only read on errors."""
    try:
        with open("/proc/cgroups") as f:
            return any(line.split()[0] == controller and line.split()[-1] == "1"
                       for line in f if not line.startswith("#"))
    except OSError:
        return True


def _restore_devices(path: str, devlist: str) -> None:
    from pyrunc.cgroups import devices

    state = devices.parse_list(devlist)
    for name, value in devices.v1_plan(state).items():
        fileio.write(f"{path}/{name}", value)


def _wait_empty(mgr: V1Manager, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while mgr.pids():
        if time.monotonic() > deadline:
            raise CgroupError(f"destroy {mgr._pid_dir()}: processes still alive after SIGKILL")
        time.sleep(0.005)
