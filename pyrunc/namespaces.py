"""OCI namespace types <-> CLONE flags, the join order, and id-map files.

Plan in the parent (pure), act in the intermediate process: join namespaces
given by path (user first, so the others are joined with its credentials, mnt
last among the joined ones as runc), then unshare the new ones (user first and
alone, so the parent can write the maps before anything needs them).
"""

from __future__ import annotations

import os

from pyrunc import syscalls
from pyrunc.errors import ConfigError, KernelError
from pyrunc.record import Record

FLAGS: dict[str, int] = {
    "user": syscalls.CLONE_NEWUSER,
    "ipc": syscalls.CLONE_NEWIPC,
    "uts": syscalls.CLONE_NEWUTS,
    "network": syscalls.CLONE_NEWNET,
    "pid": syscalls.CLONE_NEWPID,
    "mount": syscalls.CLONE_NEWNS,
    "cgroup": syscalls.CLONE_NEWCGROUP,
    "time": syscalls.CLONE_NEWTIME,
}
# The order namespaces are joined by path: user, then as runc's nsexec.
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "time", "cgroup", "mount")
PROC_NAME = {"user": "user", "ipc": "ipc", "uts": "uts", "network": "net", "pid": "pid",
             "mount": "mnt", "cgroup": "cgroup", "time": "time"}


class NamespacePlan(Record):
    new_user: bool
    unshare_flags: int                 # every new namespace except user
    join: tuple[tuple[str, str], ...]  # (type, path) in JOIN_ORDER
    types: frozenset[str]              # every type the container has its own of

    def has(self, ns_type: str) -> bool:
        return ns_type in self.types


def plan(namespaces: tuple) -> NamespacePlan:
    seen: set[str] = set()
    join: dict[str, str] = {}
    flags = 0
    new_user = False
    for i, ns in enumerate(namespaces):
        if ns.type not in FLAGS:
            raise ConfigError(f".linux.namespaces[{i}].type", f"unknown namespace type {ns.type!r}")
        if ns.type in seen:
            raise ConfigError(f".linux.namespaces[{i}].type", f"duplicate namespace {ns.type!r}")
        seen.add(ns.type)
        if ns.path:
            if not os.path.exists(ns.path):
                raise ConfigError(f".linux.namespaces[{i}].path", f"{ns.path}: no such namespace file")
            join[ns.type] = ns.path
        elif ns.type == "user":
            new_user = True
        else:
            flags |= FLAGS[ns.type]
    ordered = tuple((t, join[t]) for t in JOIN_ORDER if t in join)
    return NamespacePlan(new_user, flags, ordered, frozenset(seen))


def path_type(path: str) -> str | None:
    """The type ("network", "pid", ...) of the namespace file at `path`, None if
    it is not one (setns with the config's type would then fail: `pyrunc explain`)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        flag = syscalls.ns_get_nstype(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    return next((t for t, f in FLAGS.items() if f == flag), None)


def join_all(plan_: NamespacePlan) -> None:
    """setns into each namespace given by path (intermediate process)."""
    for ns_type, path in plan_.join:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(fd, FLAGS[ns_type])
        except OSError as err:
            raise KernelError("setns", err.errno, path) from None
        finally:
            os.close(fd)


def id_map_text(mappings: tuple) -> bytes:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings).encode()


def write_id_maps(pid: int, uid_mappings: tuple, gid_mappings: tuple, deny_setgroups: bool) -> None:
    """Parent side: the maps of a child that just unshared CLONE_NEWUSER.

    setgroups is denied only when required (an unprivileged writer), as the
    kernel demands; root writing the gid map keeps setgroups usable so that
    additionalGids still work in the container.
    """
    # Without maps every id in the namespace is the overflow id and the
    # process cannot even setuid(0): say so instead of a bare EINVAL (runc
    # refuses the same config).
    if not uid_mappings:
        raise ConfigError(".linux.uidMappings", "a new user namespace needs uidMappings (none given)")
    if not gid_mappings:
        raise ConfigError(".linux.gidMappings", "a new user namespace needs gidMappings (none given)")
    if deny_setgroups:
        write_map_file(f"/proc/{pid}/setgroups", b"deny")
    write_map_file(f"/proc/{pid}/uid_map", id_map_text(uid_mappings))
    write_map_file(f"/proc/{pid}/gid_map", id_map_text(gid_mappings))


def write_map_file(path: str, data: bytes) -> None:
    """Write one /proc map file (uid_map, gid_map, setgroups, timens_offsets) in one write(2)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as err:
        raise KernelError("open", err.errno, path) from None
    try:
        os.write(fd, data)
    except OSError as err:
        raise KernelError("write", err.errno, path, data.decode().strip()) from None
    finally:
        os.close(fd)


def userns_with_maps(uid_mappings: tuple, gid_mappings: tuple) -> int:
    """An fd of a new user namespace with these maps (for MOUNT_ATTR_IDMAP):
    a child is cloned into it, the maps written, the fd opened, the child let go."""
    r, w = os.pipe()
    pid = syscalls.clone_fork(syscalls.CLONE_NEWUSER)
    if pid == 0:
        try:
            os.close(w)
            os.read(r, 1)  # until the parent closes its end
        finally:
            os._exit(0)
    os.close(r)
    try:
        write_id_maps(pid, uid_mappings, gid_mappings, False)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(w)
        os.waitpid(pid, 0)


def write_time_offsets(offsets: dict) -> None:
    """After unshare(CLONE_NEWTIME), before the first child enters it."""
    if not offsets:
        return
    lines = []
    for clock, off in offsets.items():
        name = {"monotonic": "monotonic", "boottime": "boottime"}.get(clock)
        if name is None:
            raise ConfigError(f".linux.timeOffsets.{clock}", "must be monotonic or boottime")
        lines.append(f"{name} {off.secs} {off.nanosecs}\n")
    write_map_file("/proc/self/timens_offsets", "".join(lines).encode())


def host_to_container_uid(host_uid: int, mappings: tuple) -> int | None:
    for m in mappings:
        if m.host_id <= host_uid < m.host_id + m.size:
            return m.container_id + host_uid - m.host_id
    return None


def container_to_host_id(container_id: int, mappings: tuple) -> int | None:
    for m in mappings:
        if m.container_id <= container_id < m.container_id + m.size:
            return m.host_id + container_id - m.container_id
    return None
