"""cgroup v1 manager: one directory per controller hierarchy.

On hybrid hosts the container also gets a directory in the cgroup2 mount
(key "" in `paths`), as runc does, so v2-only tools see it; limits stay on
the v1 controllers. cpuset directories are seeded from their parent (a new
cpuset cgroup is empty and refuses tasks).
"""

from __future__ import annotations

import errno
import os
import time
TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~4 ms on the run hot path

if TYPE_CHECKING:
    from typing import Any

    from pyrunc.spec import Resources

from pyrunc.cgroups import devices, fileio, resources
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
                if controller == "cpuset" and made:
                    _seed_cpuset(made)
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

    def plan(self, res: Resources | None, prefix: str, source: str, devices_too: bool) -> resources.Plan:
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
        mem = plan.get("memory", {})
        if mem:
            self._order_memory(mem, res, prefix, source)
        if "blkio" in plan:
            _bfq_names(plan["blkio"], self.paths["blkio"])
        if "cpu.rt_runtime_us" in plan.get("cpu", {}):
            _rt_parents(self.paths["cpu"], plan["cpu"])
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

    def _order_memory(self, mem: dict[str, str], res: Resources | None, prefix: str, source: str) -> None:
        base = self.paths["memory"]
        limit, swap = mem.get("memory.limit_in_bytes"), mem.get("memory.memsw.limit_in_bytes")
        if swap and not os.path.exists(f"{base}/memory.memsw.limit_in_bytes"):
            if swap == "-1" and not (res is not None and res.memory is not None and res.memory.swap):
                del mem["memory.memsw.limit_in_bytes"]
            else:
                raise MissingFeature("memory swap limit", "swap accounting is off (memory.memsw.* missing)")
        if limit and resources.memory_check_before_update(res) and limit != "-1":
            usage = fileio.read_int(f"{base}/memory.usage_in_bytes")
            if int(limit) < usage:
                raise ConfigError(f"{prefix}.memory.limit",
                                  f"{limit} is below the current usage {usage} (checkBeforeUpdate)", source)
        if limit and swap and "memory.memsw.limit_in_bytes" in mem:
            current = fileio.read_int(f"{base}/memory.limit_in_bytes")
            # memsw must stay >= limit at every step: raise memsw first when growing
            if swap == "-1" or current < int(swap):
                order = ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
            else:
                order = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
            rest = {k: v for k, v in mem.items() if k not in order}
            mem.clear()
            mem.update({k: (limit if k == "memory.limit_in_bytes" else swap) for k in order})
            mem.update(rest)

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


def _rt_parents(cpu_dir: str, cpu: dict[str, str]) -> None:
    """A new v1 cgroup has cpu.rt_runtime_us 0, and a child may not have more
    real-time runtime (per period) than its parent: raise each ancestor below
    the hierarchy root, top down, to what the container asks (never lower
    one), so realtimeRuntime and SCHED_FIFO/RR work nested under /pyrunc."""
    runtime = int(cpu["cpu.rt_runtime_us"])
    if runtime <= 0:
        return
    period = int(cpu.get("cpu.rt_period_us") or fileio.read(f"{cpu_dir}/cpu.rt_period_us").strip())
    ancestors = []
    d = os.path.dirname(cpu_dir)
    while os.path.exists(os.path.join(os.path.dirname(d), "cgroup.procs")):  # stop below the root
        ancestors.append(d)
        d = os.path.dirname(d)
    for anc in reversed(ancestors):
        have = int(fileio.read(f"{anc}/cpu.rt_runtime_us").strip())
        need = -(-runtime * int(fileio.read(f"{anc}/cpu.rt_period_us").strip()) // period)
        if 0 <= have < need:
            fileio.write(f"{anc}/cpu.rt_runtime_us", str(need))


def _seed_cpuset(made: list[str]) -> None:
    """A new cpuset cgroup starts with empty cpus/mems; copy them down from
    the parent at each level we created (runc's cpusetEnsureParent)."""
    for path in made:
        parent = os.path.dirname(path)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if not fileio.read(f"{path}/{name}"):
                fileio.write(f"{path}/{name}", fileio.read(f"{parent}/{name}"))


def _bfq_names(blkio: dict[str, str], base: str) -> None:
    """CFQ's blkio.weight is gone on modern kernels; bfq's file takes the same values."""
    for old, new in (("blkio.weight", "blkio.bfq.weight"), ("blkio.weight_device", "blkio.bfq.weight_device")):
        if old in blkio and not os.path.exists(f"{base}/{old}") and os.path.exists(f"{base}/{new}"):
            blkio[new] = blkio.pop(old)


def _restore_devices(path: str, devlist: str) -> None:
    state = devices.parse_list(devlist)
    for name, value in devices.v1_plan(state).items():
        fileio.write(f"{path}/{name}", value)


def _wait_empty(mgr: V1Manager, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while mgr.pids():
        if time.monotonic() > deadline:
            raise CgroupError(f"destroy {mgr._pid_dir()}: processes still alive after SIGKILL")
        time.sleep(0.005)
