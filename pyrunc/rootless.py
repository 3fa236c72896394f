"""Running without root, as runc and crun do (issue 19).

What "rootless" decides, with runc's rules:
  - `--rootless true|false|auto` (global flag); auto = the effective uid is
    not 0, or it is 0 inside a user namespace that does not map every id
    (`rootless_cgroups`: cgroup permission errors are then warnings).
  - The state root defaults to `$XDG_RUNTIME_DIR/pyrunc` when the caller is
    not root (or is "root" of a user namespace whose $USER is not root); it
    is made 0700 with the sticky bit (XDG's "do not prune") and must be the
    caller's own and writable by nobody else (`check_state_root`).
  - A rootless container must have its own user namespace (or join one): the
    kernel lets an unprivileged process write a map of its own id only; any
    other map (more ids, the subordinate ranges of /etc/subuid and
    /etc/subgid) goes through the setuid helpers newuidmap/newgidmap (Debian
    package `uidmap`), which check the ranges against those files. So the
    user never gets more ids than the administrator gave them.

Everything here is planning (pure, unit-tested) except `write_id_maps`,
which runs the helpers or writes the map files.
"""

from __future__ import annotations

import os
import stat

from pyrunc.errors import ConfigError, MissingFeature, PyruncError
from pyrunc.record import Record

FULL_MAP = (0, 0, 4294967295)


def parse_flag(value: str) -> bool | None:
    """`--rootless`: True/False, or None for auto (runc's parseBoolOrAuto)."""
    v = (value or "auto").strip().lower()
    if v == "auto":
        return None
    if v in ("true", "1", "t"):
        return True
    if v in ("false", "0", "f"):
        return False
    raise PyruncError(f'--rootless: invalid value "{value}" (true, false or auto)')


def in_user_namespace(uid_map: str | None = None) -> bool:
    """True unless /proc/self/uid_map is the initial namespace's identity map."""
    if uid_map is None:
        try:
            with open("/proc/self/uid_map", "rb") as f:
                uid_map = f.read().decode()
        except OSError:
            return False
    lines = [ln.split() for ln in uid_map.strip().splitlines()]
    return not (len(lines) == 1 and tuple(int(x) for x in lines[0]) == FULL_MAP)


def rootless_cgroups(flag: str, systemd_cgroup: bool = False, euid: int | None = None,
                     in_userns: bool | None = None) -> bool:
    """runc's shouldUseRootlessCgroupManager."""
    forced = parse_flag(flag)
    if forced is not None:
        return forced
    if systemd_cgroup:
        return False
    if (os.geteuid() if euid is None else euid) != 0:
        return True
    return in_user_namespace() if in_userns is None else in_userns


def honor_xdg_runtime_dir(euid: int | None = None, in_userns: bool | None = None,
                          user: str | None = None) -> bool:
    """runc's shouldHonorXDGRuntimeDir."""
    if (os.geteuid() if euid is None else euid) != 0:
        return True
    if not (in_user_namespace() if in_userns is None else in_userns):
        return False
    user = os.environ.get("USER") if user is None else user
    return user != "root"


def default_root(system_default: str = "/run/pyrunc") -> tuple[str, bool]:
    """(state root, made from $XDG_RUNTIME_DIR) when --root is not given."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and honor_xdg_runtime_dir():
        return os.path.join(xdg, "pyrunc"), True
    return system_default, False


def prepare_xdg_root(root: str) -> None:
    """runc: MkdirAll(root, 0700) then chmod 0700|sticky, so that the XDG
    runtime dir's cleaner leaves it alone."""
    try:
        os.makedirs(root, 0o700, exist_ok=True)
        os.chmod(root, 0o700 | stat.S_ISVTX)
    except OSError as err:
        raise PyruncError(f"state root {root}: {err.strerror}") from None


def check_state_root(root: str, euid: int | None = None) -> None:
    """A non-root caller's state root must be theirs and writable by no one
    else: another user who could write in it could plant a state.json whose
    pid, cgroup paths or hooks this caller's `delete`/`start` would then act on."""
    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        return
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return  # made by claim(), ours
    except OSError as err:
        raise PyruncError(f"state root {root}: {err.strerror}") from None
    if st.st_uid != euid:
        raise PyruncError(f"state root {root}: owned by uid {st.st_uid}, not by the caller (uid {euid})")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PyruncError(f"state root {root}: writable by group or others (mode {stat.S_IMODE(st.st_mode):04o})")


class MapPlan(Record):
    """How the id maps of a rootless container are written: `direct` (the caller's own id
    alone: setgroups denied, then the map files written by the parent) or through the helpers."""

    direct: bool
    uid_text: bytes
    gid_text: bytes


def _own_only(mappings: tuple, host_id: int) -> bool:
    return len(mappings) == 1 and mappings[0].host_id == host_id and mappings[0].size == 1


def plan_maps(uid_mappings: tuple, gid_mappings: tuple, euid: int | None = None,
              egid: int | None = None) -> MapPlan:
    """Direct writes when each map is exactly the caller's own id (runc's
    requiresRootOrMappingTool is false), the helpers otherwise."""
    from pyrunc.namespaces import id_map_text

    if not uid_mappings:
        raise ConfigError(".linux.uidMappings", "rootless container requires at least one UID mapping")
    if not gid_mappings:
        raise ConfigError(".linux.gidMappings", "rootless container requires at least one GID mapping")
    euid = os.geteuid() if euid is None else euid
    egid = os.getegid() if egid is None else egid
    direct = _own_only(uid_mappings, euid) and _own_only(gid_mappings, egid)
    return MapPlan(direct, id_map_text(uid_mappings), id_map_text(gid_mappings))


def check_config(ns_plan, uid_mappings: tuple, gid_mappings: tuple) -> None:
    """runc's rootlessEUIDCheck: a user namespace, and maps when it is new."""
    if not ns_plan.has("user"):
        raise ConfigError(".linux.namespaces", "rootless container requires user namespaces")
    if ns_plan.new_user:
        plan_maps(uid_mappings, gid_mappings)


def write_id_maps(pid: int, plan: MapPlan) -> None:
    """Parent side, unprivileged: write the maps of the child `pid` that just
    unshared CLONE_NEWUSER (it is dumpable meanwhile, so /proc/PID is ours)."""
    from pyrunc.namespaces import write_map_file

    if plan.direct:
        write_map_file(f"/proc/{pid}/setgroups", b"deny")
        write_map_file(f"/proc/{pid}/uid_map", plan.uid_text)
        write_map_file(f"/proc/{pid}/gid_map", plan.gid_text)
        return
    _helper("newuidmap", pid, plan.uid_text, "/etc/subuid")
    _helper("newgidmap", pid, plan.gid_text, "/etc/subgid")


def helper_argv(tool: str, pid: int, text: bytes) -> list[str]:
    """newuidmap PID inside outside count [...]."""
    args = [tool, str(pid)]
    for line in text.decode().split("\n"):
        if line.strip():
            args.extend(line.split())
    return args


def _helper(tool: str, pid: int, text: bytes, ranges: str) -> None:
    import shutil
    import subprocess

    path = shutil.which(tool, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if path is None:
        raise MissingFeature(tool, f"the id maps ask for more than the caller's own id and {tool} is not "
                             "installed (Debian package uidmap)")
    argv = helper_argv(tool, pid, text)
    argv[0] = path
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise PyruncError(f"{tool} {pid}: {err}") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        why = lines[-1].removeprefix(f"{tool}: ") if lines else f"exit {proc.returncode}"
        raise PyruncError(f"{tool}: {why} (the maps "
                          f"{' '.join(argv[2:])!r} must lie in the caller's ranges in {ranges})")


def state_root(given: str | None) -> str:
    """The state root: `given` (--root) or the default; for a non-root caller
    made as runc makes it and checked to be the caller's alone."""
    if given:
        root = given
    else:
        root, xdg = default_root()
        if xdg:
            prepare_xdg_root(root)
    check_state_root(root)
    return root


# Why the kernel refuses a mount type to a user namespace's root (EPERM), and what to do.
_MOUNT_HINTS = {
    "sysfs": "in a user namespace sysfs needs the container's own network namespace; "
             "without one bind /sys instead (rbind, as `pyrunc spec --rootless` writes)",
    "proc": "in a user namespace proc needs the container's own pid namespace",
    "mqueue": "in a user namespace mqueue needs the container's own ipc namespace; or bind /dev/mqueue",
    "cgroup": "in a user namespace a cgroup mount needs the container's own cgroup namespace",
    "cgroup2": "in a user namespace a cgroup mount needs the container's own cgroup namespace",
}


def mount_hint(mtype: str, err: int) -> str:
    """The reason to add to a refused mount's one-line error ("" if none applies)."""
    import errno

    if err != errno.EPERM or not in_user_namespace():
        return ""
    return _MOUNT_HINTS.get(mtype, f"a user namespace may not mount {mtype} (only types flagged FS_USERNS_MOUNT)")


def warn_rootless_cgroups(verb: str, cgroup_state: dict | None) -> None:
    """runc's warning before a verb that needs the container's cgroups, when they are rootless."""
    if cgroup_state and cgroup_state.get("rootless"):
        from pyrunc import logs

        logs.warning(f"pyrunc {verb} may fail if you don't have the full access to cgroups")
