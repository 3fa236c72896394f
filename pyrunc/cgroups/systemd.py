"""The systemd cgroup driver's path form, `slice:prefix:name`.

runc's systemd driver asks systemd (over D-Bus) to create a transient scope
`prefix-name.scope` in `slice`. pyrunc has no D-Bus client, so it supports
the form only to check it and to fail clearly: where systemd is not PID 1 /
not running (no /run/systemd/system, as on this host) the user is told so;
where it is running, the missing D-Bus driver is named.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pyrunc.errors import CgroupError, ConfigError, MissingFeature


@dataclass(frozen=True, slots=True)
class SystemdPath:
    slice: str
    prefix: str
    name: str

    @property
    def unit(self) -> str:
        return f"{self.prefix}-{self.name}.scope" if self.prefix else f"{self.name}.scope"


def parse(cgroups_path: str, container_id: str) -> SystemdPath:
    """`system.slice:pyrunc:ID` → parts; an empty path gives runc's default
    `system.slice:runc:ID` with pyrunc as the prefix."""
    if not cgroups_path:
        return SystemdPath("system.slice", "pyrunc", container_id)
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise ConfigError(".linux.cgroupsPath",
                          f"{cgroups_path!r}: expected slice:prefix:name with --systemd-cgroup")
    sl, prefix, name = parts
    if sl and not sl.endswith(".slice"):
        raise ConfigError(".linux.cgroupsPath", f"{sl!r} is not a slice name (must end in .slice)")
    if "/" in sl or "/" in prefix or "/" in name or not name:
        raise ConfigError(".linux.cgroupsPath", f"{cgroups_path!r}: parts must be non-empty names without '/'")
    return SystemdPath(sl or "system.slice", prefix, name)


def running() -> bool:
    """sd_booted(): systemd is PID 1 and running iff /run/systemd/system exists."""
    return os.path.isdir("/run/systemd/system")


def new_manager(cgroups_path: str | None, container_id: str) -> None:
    path = parse(cgroups_path or "", container_id)
    if not running():
        raise CgroupError(f"systemd cgroup driver: systemd is not running on this host "
                          f"(no /run/systemd/system), cannot create {path.slice}/{path.unit}; "
                          f"run without --systemd-cgroup")
    raise MissingFeature("systemd cgroup driver",
                         f"creating {path.slice}/{path.unit} needs systemd's D-Bus API, which pyrunc lacks")
