"""Mount /sys/fs/cgroup inside the container (a `cgroup` entry in `mounts`).

With a cgroup namespace the container gets real cgroup filesystems (their root
is its own cgroup). Without one, as runc, it gets bind mounts of its own cgroup
directories, so it never sees its siblings. v1, v2 and hybrid hosts are read
from init's /proc/self/mountinfo and /proc/self/cgroup (host /proc, before
pivot_root).
"""

from __future__ import annotations

import os

from pyrunc import safepath, syscalls as s
from pyrunc.errors import KernelError


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def host_hierarchies() -> list[tuple[str, str, str, str]]:
    """(mount point, fstype, super options, root) of each cgroup mount, the shortest mount point
    per super options: a rootfs that binds the host's /sys (`rbind`, as the rootless spec does)
    holds copies at ROOTFS/sys/fs/cgroup/..., which the tmpfs mounted there next hides, and
    mountinfo may list a copy first."""
    best: dict[str, tuple[str, str, str, str]] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            parts = left.split()
            fstype, _source, superopts = right.split()[:3]
            if fstype not in ("cgroup", "cgroup2"):
                continue
            key = fstype + ":" + ",".join(o for o in superopts.split(",") if o not in ("rw", "ro"))
            entry = (_unescape(parts[4]), fstype, superopts, _unescape(parts[3]))
            if key not in best or len(entry[0]) < len(best[key][0]):
                best[key] = entry
    return list(best.values())


def own_cgroups() -> dict[str, str]:
    """controller list (or '' for v2) -> this process's cgroup path."""
    out = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _hid, controllers, path = line.rstrip("\n").split(":", 2)
            out[controllers] = path
    return out


def _controllers_of(fstype: str, superopts: str) -> str:
    if fstype == "cgroup2":
        return ""
    known = ("rw", "ro", "relatime", "nosuid", "nodev", "noexec", "clone_children", "xattr",
             "noprefix", "cpuset_v2_mode", "favordynmods", "nsdelegate", "memory_recursiveprot")
    return ",".join(o for o in superopts.split(",") if o not in known and not o.startswith("release_agent"))


def mount_cgroups(root_fd: int, dest: str, mount_flags: int, cgroup_ns: bool,
                  known_dirs: tuple[str, ...] = ()) -> list[str]:
    """Mount them on `dest` (`mount_flags`: the entry's MS_* flags) and return
    the paths the caller remounts read-only (MS_RDONLY asked: each hierarchy,
    then `dest`). `known_dirs`: the container's cgroup directories from its
    manager; init may not have been moved into them yet (the parent does that
    concurrently), so they win over /proc/self/cgroup."""
    flags = mount_flags & ~(s.MS_BIND | s.MS_REC | s.MS_RDONLY)
    hier = host_hierarchies()
    own = own_cgroups()
    target = safepath.create_target(root_fd, dest, True)
    try:
        pure_v2 = len(hier) == 1 and hier[0][1] == "cgroup2"
        if pure_v2:
            _mount_one(target, hier[0], own.get("", "/"), flags, cgroup_ns, dest, known_dirs)
        else:
            s.mount("tmpfs", safepath.fd_path(target), "tmpfs", flags | s.MS_NOSUID | s.MS_NODEV | s.MS_NOEXEC,
                    "mode=755")
    except OSError as err:
        raise KernelError("mount cgroup", err.errno or 5, dest) from None
    finally:
        os.close(target)
    if not pure_v2:
        for h in hier:
            sub = os.path.join(dest, os.path.basename(h[0]))
            fd = safepath.create_target(root_fd, sub, True)
            try:
                ctl = _controllers_of(h[1], h[2])
                _mount_one(fd, h, own.get(ctl, "/"), flags, cgroup_ns, sub, known_dirs)
            except OSError as err:
                raise KernelError("mount cgroup", err.errno or 5, sub) from None
            finally:
                os.close(fd)
    if not mount_flags & s.MS_RDONLY:
        return []
    subs = [] if pure_v2 else [os.path.join(dest, os.path.basename(h[0])) for h in hier]
    return subs + [dest]


def _mount_one(target: int, h: tuple[str, str, str, str], own_path: str, flags: int, cgroup_ns: bool,
               dest: str, known_dirs: tuple[str, ...] = ()) -> None:
    mountpoint, fstype, superopts, root = h
    if cgroup_ns:
        data = None if fstype == "cgroup2" else _controllers_of(fstype, superopts)
        s.mount("cgroup", safepath.fd_path(target), fstype, flags, data)
        return
    inside = [d for d in known_dirs if d == mountpoint or d.startswith(mountpoint.rstrip("/") + "/")]
    if inside:
        source = inside[0]
    else:
        rel = os.path.relpath(own_path, root) if root != "/" else own_path.lstrip("/")
        source = os.path.normpath(os.path.join(mountpoint, rel))
    s.mount(source, safepath.fd_path(target), None, s.MS_BIND | s.MS_REC)
