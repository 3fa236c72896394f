"""Where the cgroup hierarchies are and where this process sits in them.

Detection is cheap and done at run time: `/sys/fs/cgroup/cgroup.controllers`
means a unified (v2) host; otherwise the v1 mounts come from
/proc/self/mountinfo, and a cgroup2 mount beside them (usually
/sys/fs/cgroup/unified) makes the host hybrid.
"""

from __future__ import annotations

import os
from pyrunc.record import tuple_record  # namedtuple without importing collections

ROOT = "/sys/fs/cgroup"


class Hierarchy(tuple_record("Hierarchy", "mode v1 unified")):
    """mode: "v1", "v2" or "hybrid"; v1: controller (or "name=systemd") →
    mount point; unified: the cgroup2 mount point or None. (A namedtuple:
    the dataclass decorator costs more than this whole module on `run`.)"""

    __slots__ = ()


def _unescape(path: str) -> str:
    return path.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def detect() -> Hierarchy:
    if os.path.exists(f"{ROOT}/cgroup.controllers"):
        return Hierarchy("v2", {}, ROOT)
    with open("/proc/self/mountinfo", "rb") as f:
        return parse_mountinfo(f.read().decode())


def parse_mountinfo(data: str) -> Hierarchy:
    """The cgroup mounts of a mountinfo text → Hierarchy (first mount of each controller wins)."""
    v1: dict[str, str] = {}
    unified = None
    for line in data.splitlines():
        if " - cgroup" not in line:
            continue
        left, _, right = line.partition(" - ")
        fstype, _, rest = right.partition(" ")
        mountpoint = _unescape(left.split(" ")[4])
        if fstype == "cgroup2":
            unified = unified or mountpoint
        elif fstype == "cgroup":
            for opt in rest.split(" ")[-1].split(","):
                if opt in _V1_CONTROLLERS or opt.startswith("name="):
                    v1.setdefault(opt, mountpoint)
    return Hierarchy("hybrid" if unified and v1 else ("v1" if v1 else "v2"), v1, unified)


_V1_CONTROLLERS = frozenset({"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                             "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc"})


def own_cgroups(pid: str = "self") -> dict[str, str]:
    """/proc/PID/cgroup → {controller: path}; the v2 line is under key ""."""
    out: dict[str, str] = {}
    with open(f"/proc/{pid}/cgroup", "rb") as f:
        for line in f.read().decode().splitlines():
            _, controllers, path = line.split(":", 2)
            for c in controllers.split(","):
                out[c] = path
    return out


def clean(path: str) -> str:
    """runc's utils.CleanPath: `..` never climbs above the start; the result is
    absolute ("//x", "/x/../.." and ".." all clean to "/x", "/" and "/")."""
    return os.path.normpath("/" + path.lstrip("/"))


def resolve(cgroups_path: str, controller: str, own: dict[str, str] | None) -> str:
    """runc's rule: an absolute path is below the hierarchy root, a relative
    one below the runtime's own cgroup in that hierarchy, and in both cases
    cleaned first, so a relative path never climbs out of the runtime's cgroup."""
    inner = clean(cgroups_path)
    if os.path.isabs(cgroups_path):
        return inner
    base = (own or {}).get(controller, "/")
    return os.path.normpath(os.path.join(base, inner.lstrip("/")))
