"""Helpers both managers share: directory bookkeeping, removal with retries,
pid listing and signalling, the cpuset existence check."""

from __future__ import annotations

import errno
import os
import time

from pyrunc.cgroups import fileio
from pyrunc.errors import CgroupError, ConfigError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~4 ms on the run hot path
if TYPE_CHECKING:
    from pyrunc.spec import Resources


class DirMaker:
    """mkdir -p that records each directory it made (deepest last) in
    `created`, so destroy removes exactly those and nothing it found."""

    def __init__(self, created: list[str]) -> None:
        self.created = created

    @staticmethod
    def missing(paths) -> list[str]:
        """The directories `makedirs` of each path would make now, parents first."""
        out: list[str] = []
        for path in paths:
            chain = []
            probe = path
            while not os.path.isdir(probe):
                chain.append(probe)
                probe = os.path.dirname(probe)
            out += [d for d in reversed(chain) if d not in out]
        return out

    def makedirs(self, path: str) -> list[str]:
        missing = []
        probe = path
        while not os.path.isdir(probe):
            missing.append(probe)
            probe = os.path.dirname(probe)
        made = []
        for d in reversed(missing):
            for _ in range(5):  # a concurrent destroy may remove a parent under us
                try:
                    os.mkdir(d, 0o755)
                except FileExistsError:
                    break
                except FileNotFoundError:
                    os.makedirs(os.path.dirname(d), 0o755, exist_ok=True)
                    continue
                made.append(d)
                if d not in self.created:
                    self.created.append(d)
                break
        return made

    def remove_parents(self) -> None:
        """Remove the created parents that are empty now (another container
        may still use them: EBUSY/ENOTEMPTY leave them alone)."""
        for d in sorted(self.created, key=len, reverse=True):
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as err:
                if err.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    raise CgroupError(f"remove cgroup {d}: {err.strerror}") from None
                continue
        self.created[:] = [d for d in self.created if os.path.isdir(d)]


def check_existing(manager, leaves: list[str]) -> None:
    """runc's checks for a cgroup that was there before this container (a
    cgroupsPath naming another cgroup): a frozen one would hang init, so it is
    an error; one with processes is joined with runc's warning. Either way it
    stays out of `created`, so delete neither removes it (nor its children)
    nor kills what runs in it."""
    existing = [d for d in leaves if d not in manager.created]
    if not existing:
        return
    if manager.is_frozen():
        raise CgroupError(f"container's cgroup unexpectedly frozen ({existing[0]})")
    pids: set[int] = set()
    for d in existing:
        try:
            pids.update(read_pids_tree(d))
        except OSError as err:  # a cgroup removed meanwhile (runc ignores ENOENT/ENODEV too)
            if err.errno not in (errno.ENOENT, errno.ENODEV):
                raise CgroupError(f"unable to get cgroup PIDs of {d}: {err.strerror}") from None
    if pids:
        from pyrunc import logs

        logs.warning(f"container's cgroup is not empty: {len(pids)} process(es) found "
                     f"({existing[0]} existed before this container: it is joined, not removed on delete)")


def owns_leaves(manager, leaves: list[str]) -> bool:
    """Did this container make every one of its cgroups? Only then may delete
    kill everything in them."""
    return all(d in manager.created for d in leaves)


def rmdir_tree(path: str) -> None:
    """Remove a cgroup and its sub-cgroups, bottom-up, retrying while the
    kernel still counts exiting tasks (EBUSY) as runc does. ENOENT is fine."""
    if not os.path.isdir(path):
        return
    subdirs = [root for root, _, _ in os.walk(path, topdown=False)]
    for d in subdirs:
        delay = 0.001
        for attempt in range(12):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as err:
                if err.errno != errno.EBUSY or attempt == 11:
                    raise CgroupError(f"remove cgroup {d}: {err.strerror}") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)


def read_pids_tree(path: str) -> list[int]:
    pids: list[int] = []
    for root, _, _ in os.walk(path):
        try:
            text = fileio.read(f"{root}/cgroup.procs")
        except FileNotFoundError:
            continue
        pids += [int(p) for p in text.split()]
    return pids


def signal_pids(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            continue  # exited between listing and signalling


def check_cpuset_exists(files: dict[str, str], parent: str, prefix: str, source: str) -> None:
    """A cpuset naming CPUs/nodes outside the parent's set fails with the
    field, instead of the kernel's bare EINVAL."""
    from pyrunc.cgroups import resources

    for name, key in (("cpuset.cpus", "cpus"), ("cpuset.mems", "mems")):
        if name not in files:
            continue
        want = resources.parse_cpu_list(files[name])
        probe = parent
        have_text = ""
        while probe and probe != "/":
            for candidate in (f"{probe}/{name}.effective", f"{probe}/{name}"):  # v2 names it .effective
                try:
                    have_text = fileio.read(candidate)
                except FileNotFoundError:
                    continue
                if have_text:
                    break
            if have_text:
                break
            probe = os.path.dirname(probe)
        if not have_text:
            fallback = "/sys/devices/system/cpu/online" if key == "cpus" else "/sys/devices/system/node/online"
            have_text = fileio.read(fallback) if os.path.exists(fallback) else "0"
        have = resources.parse_cpu_list(have_text)
        if not want <= have:
            missing = ",".join(str(c) for c in sorted(want - have))
            what = "CPUs" if key == "cpus" else "memory nodes"
            raise ConfigError(f"{prefix}.cpu.{key}", f"{what} {missing} do not exist (available: {have_text})",
                              source)


def warn_kernel_memory(res: Resources | None) -> None:
    """`memory.kernel` (kmem.limit_in_bytes) is deprecated in the kernel and
    ignored by runc with this warning; pyrunc does the same."""
    if res is not None and res.memory is not None and res.memory.kernel:
        from pyrunc import logs

        logs.warning("Kernel memory settings are ignored and will be removed")


def signal_frozen(manager, sig: int, can_freeze: bool) -> None:
    """Signal every process of the cgroup with the cgroup frozen, so nothing
    forks between listing and signalling; a paused container stays paused."""
    freeze = can_freeze and not manager.is_frozen()
    if freeze:
        manager.freeze()
    try:
        signal_pids(manager.pids(), sig)
    finally:
        if freeze:
            manager.thaw()


def join_thread(path: str, rootless: bool, who: str = "") -> None:
    """Move the calling thread into the v1 cgroup at `path` by writing "0" to
    its `tasks`. A single thread moving itself skips the global threadgroup
    lock that every cgroup.procs write takes (and whose first writer waits for
    an RCU grace period, 10-20 ms here): exec's intermediate is one thread,
    and the process it forks is born where it is."""
    _join(f"{path}/tasks", b"0", os.getpid(), rootless, who)


def join_self(v1: tuple[str, ...], v2: str, tolerant: bool, who: str = "") -> None:
    """The calling single-threaded process joins its container's cgroups without
    the global threadgroup lock: each v1 one by moving its thread (join_thread);
    the cgroup2 one `v2` by a cgroup.procs write, "" where it was cloned into it
    already (clone3 CLONE_INTO_CGROUP). Used by create's init, create's
    intermediate and exec's. `tolerant`: refusals a rootless runtime goes on after."""
    for d in v1:
        join_thread(d, tolerant, who)
    if v2:
        join_procs(v2, os.getpid(), tolerant)


def join_procs(path: str, pid: int, rootless: bool) -> None:
    """Move `pid` into the cgroup at `path` (v1 or v2 cgroup.procs); a rootless
    runtime without access to it carries on, as runc does."""
    _join(f"{path}/cgroup.procs", str(pid).encode(), pid, rootless)


def _join(file: str, data: bytes, pid: int, rootless: bool, who: str = "") -> None:
    """`who` names the process in the error where its pid would mislead (init: 1 in its namespace)."""
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as err:
        if rootless and err.errno in (errno.EACCES, errno.EPERM, errno.ENOENT):
            return
        raise CgroupError(f"add {who or f'pid {pid}'} to {os.path.dirname(file)}: {err.strerror}") from None
