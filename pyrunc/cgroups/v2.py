"""cgroup v2 manager: one directory in the unified hierarchy.

Controllers a plan needs are enabled through `cgroup.subtree_control` on
every ancestor, top-down, only when a limit asks for them (enabling is not
free, and on hybrid hosts the cgroup2 mount is shared with the host's own
tooling). Devices are an eBPF program attached to the directory; a newer
program replaces older ones (attach the new one first, then detach the old,
so there is never a moment without a filter).
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

from pyrunc import syscalls
# resources and devices (and through them spec) are imported where limits are planned: `delete`,
# `kill --all`, `pause` and `events` load a manager only to find, signal or remove its cgroups.
from pyrunc.cgroups import fileio
from pyrunc.cgroups.common import (DirMaker, check_cpuset_exists, check_existing, join_procs, owns_leaves,
                                    read_pids_tree, rmdir_tree, signal_frozen, warn_kernel_memory)
from pyrunc.errors import CgroupError, KernelError, MissingFeature
from pyrunc.logs import debug as logs_debug


class V2Manager:
    version = "v2"

    def __init__(self, path: str, *, mount: str = "/sys/fs/cgroup", created: list[str] | None = None,
                 rootless: bool = False, optional: bool = False) -> None:
        self.mount = mount
        self.path = path  # inside the hierarchy, e.g. /pyrunc/ID
        self.dir = os.path.join(mount, path.lstrip("/"))
        self.created = created if created is not None else []
        self.rootless = rootless
        self.optional = optional  # rootless without cgroupsPath: no cgroup if it may not make one
        self.unplaced = False  # optional, and the directory could not be made

    # --- lifecycle ------------------------------------------------------------
    def missing_dirs(self) -> list[str]:
        return DirMaker.missing([self.dir])

    def create(self) -> None:
        try:
            DirMaker(self.created).makedirs(self.dir)
        except OSError as err:
            if self.optional and err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                # runc (fs2.Manager.Apply): without cgroupsPath and without limits a rootless
                # container goes without a cgroup; apply() refuses limits it cannot set.
                logs_debug(f"rootless: no cgroup at {self.dir}: {err.strerror}")
                self.unplaced = True
                return
            self.destroy()
            raise CgroupError(f"create cgroup {err.filename}: {err.strerror}") from None
        try:
            check_existing(self, [self.dir])
        except CgroupError:
            self.destroy()
            raise

    def add(self, pid: int) -> None:
        join_procs(self.dir, pid, self.optional)

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def destroy(self, *, kill: bool = False) -> None:
        """As V1Manager.destroy: only what this container made, swept only if all its own."""
        if kill and owns_leaves(self, [self.dir]) and self.exists():
            self.kill_all(9)  # SIGKILL
            deadline = time.monotonic() + 5.0
            while self.pids():
                if time.monotonic() > deadline:
                    raise CgroupError(f"destroy {self.dir}: processes still alive after SIGKILL")
                time.sleep(0.005)
        if self.dir in self.created:
            rmdir_tree(self.dir)
        DirMaker(self.created).remove_parents()

    def to_state(self) -> dict[str, Any]:
        return {"version": "v2", "mount": self.mount, "path": self.path, "created": self.created,
                "rootless": self.rootless, **({"optional": True} if self.optional else {}),
                **({"unplaced": True} if self.unplaced else {})}

    def placed(self) -> bool:
        """Whether the container has a cgroup at all (a rootless one may have none)."""
        return not self.unplaced

    # --- resources -------------------------------------------------------------
    def apply(self, res: Resources | None) -> None:
        self._apply(res, ".linux.resources", "config.json", devices_too=True)

    def update(self, res: Resources, *, source: str = "config.json",
               prefix: str = ".linux.resources", devices_too: bool = False) -> None:
        self._apply(res, prefix, source, devices_too=devices_too)

    def plan(self, res: Resources | None, prefix: str = ".linux.resources",
             source: str = "config.json") -> Plan:
        from pyrunc.cgroups import resources

        return resources.plan_v2(res, bfq=os.path.exists(f"{self.dir}/io.bfq.weight"),
                                 prefix=prefix, source=source)

    def _apply(self, res: Resources | None, prefix: str, source: str, devices_too: bool) -> None:
        plan = self.plan(res, prefix, source)
        if self.rootless:
            devices_too = False  # runc: a rootless container's device rules are not applied
            if self.unplaced:
                if any(plan.values()):
                    raise CgroupError(f"cannot set {', '.join(c for c in plan if plan[c])} limits: rootless needs "
                                      f"no limits and no cgroupsPath when {self.dir} is not delegated to the caller")
                return
        from pyrunc.cgroups import devices, resources

        program = None
        if devices_too:
            rules = devices.parse_rules(res.devices if res else (), prefix, source)
            program = devices.bpf_program(devices.compute(rules, prefix=prefix, source=source))
        warn_kernel_memory(res)
        if "cpuset" in plan:
            check_cpuset_exists(plan["cpuset"], os.path.dirname(self.dir), prefix, source)
        if "memory" in plan and resources.memory_check_before_update(res) and "memory.max" in plan["memory"]:
            limit = plan["memory"]["memory.max"]
            usage = fileio.read_int(f"{self.dir}/memory.current")
            if limit != "max" and int(limit) < usage:
                from pyrunc.errors import ConfigError

                raise ConfigError(f"{prefix}.memory.limit",
                                  f"{limit} is below the current usage {usage} (checkBeforeUpdate)", source)
        self.enable_controllers([c for c in plan if c != "cgroup"])
        writer = fileio.Writer()
        try:
            for files in plan.values():
                for name, value in files.items():
                    writer.write(f"{self.dir}/{name}", value)
            if program is not None:
                attach_device_filter(self.dir, program)
        except (CgroupError, KernelError):
            writer.rollback()
            raise

    def enable_controllers(self, controllers: list[str]) -> None:
        if not controllers:
            return
        available = set(fileio.read(f"{self.mount}/cgroup.controllers").split())
        for c in controllers:
            if c not in available:
                raise MissingFeature(f"cgroup v2 controller {c}", f"not available in {self.mount}")
        rel = os.path.relpath(self.dir, self.mount)
        probe = self.mount
        for part in rel.split(os.sep):
            enabled = set(fileio.read(f"{probe}/cgroup.subtree_control").split())
            todo = [c for c in controllers if c not in enabled]
            if todo:
                fileio.write(f"{probe}/cgroup.subtree_control", " ".join(f"+{c}" for c in todo))
            probe = os.path.join(probe, part)

    # --- freezer, processes ---------------------------------------------------------
    def freeze(self) -> None:
        self._set_frozen(True)

    def thaw(self) -> None:
        self._set_frozen(False)

    def _set_frozen(self, frozen: bool) -> None:
        if self.unplaced:
            raise CgroupError("cannot toggle freezer: cgroups not configured for container "
                              f"(rootless: {self.dir} is not delegated)")
        if not os.path.exists(f"{self.dir}/cgroup.freeze"):
            raise MissingFeature("cgroup v2 freezer", f"{self.dir}/cgroup.freeze is missing (kernel < 5.2?)")
        fileio.write(f"{self.dir}/cgroup.freeze", "1" if frozen else "0")
        want = 1 if frozen else 0
        deadline = time.monotonic() + 5.0
        while fileio.read_flat(f"{self.dir}/cgroup.events").get("frozen", want) != want:
            if time.monotonic() > deadline:
                if frozen:
                    fileio.write(f"{self.dir}/cgroup.freeze", "0")
                raise CgroupError(f"{'freeze' if frozen else 'thaw'} {self.dir}: not settled after 5s")
            time.sleep(0.001)

    def is_frozen(self) -> bool:
        try:
            return fileio.read(f"{self.dir}/cgroup.freeze") == "1"
        except OSError:
            return False

    def pids(self) -> list[int]:
        return read_pids_tree(self.dir)

    def kill_all(self, sig: int) -> None:
        if sig == 9 and os.path.exists(f"{self.dir}/cgroup.kill"):
            fileio.write(f"{self.dir}/cgroup.kill", "1")  # atomic, reaches forks in flight
            return
        signal_frozen(self, sig, True)

    def stats(self) -> dict[str, Any]:
        from pyrunc.cgroups.stats import stats_v2

        return stats_v2(self.dir)


def attach_device_filter(path: str, program: bytes) -> None:
    """Load `program` as BPF_PROG_TYPE_CGROUP_DEVICE and make it the cgroup's
    only device filter."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            old = syscalls.bpf_prog_query(fd, syscalls.BPF_CGROUP_DEVICE)
            prog = syscalls.bpf_prog_load(syscalls.BPF_PROG_TYPE_CGROUP_DEVICE, program, "Apache")
        except OSError as err:
            raise KernelError("bpf", err.errno, path, f"device filter: {err.filename}" if err.filename else "")
        try:
            syscalls.bpf_prog_attach(fd, prog, syscalls.BPF_CGROUP_DEVICE, syscalls.BPF_F_ALLOW_MULTI)
        except OSError as err:
            raise KernelError("bpf(BPF_PROG_ATTACH)", err.errno, path) from None
        finally:
            os.close(prog)
        for prog_id in old:
            try:
                old_fd = syscalls.bpf_prog_get_fd_by_id(prog_id)
            except OSError as err:
                if err.errno == errno.ENOENT:
                    continue  # already gone
                raise KernelError("bpf(BPF_PROG_GET_FD_BY_ID)", err.errno, path) from None
            try:
                syscalls.bpf_prog_detach(fd, old_fd, syscalls.BPF_CGROUP_DEVICE)
            except OSError as err:
                raise KernelError("bpf(BPF_PROG_DETACH)", err.errno, path) from None
            finally:
                os.close(old_fd)
    finally:
        os.close(fd)
