"""Everything init needs, computed in the parent before fork.

The parent does all parsing, compiling (seccomp BPF, capability numbers) and
importing; the forked children only read this object and make syscalls. That
is what keeps the children fast and keeps imports out of the container.
"""

from __future__ import annotations

import os
import stat
TYPE_CHECKING = False  # typing costs ~4 ms to import on the run hot path
if TYPE_CHECKING:
    from typing import Any, Callable

from pyrunc.errors import ConfigError
from pyrunc.namespaces import NamespacePlan
from pyrunc.spec_record import NEW_DICT, MutableRecord

PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}


class Launch(MutableRecord):
    spec: Any
    bundle: str
    rootfs: str
    ns: NamespacePlan
    caps: Any
    env: dict[str, str]
    new_netns: bool = False
    fifo_fd: int | None = None
    no_pivot: bool = False
    preserve_fds: int = 0
    seccomp: Any = None
    seccomp_load: Callable[[Any], int | None] | None = None
    sysctl_writer: Callable[[int], None] | None = None
    personality: int | None = None
    oom_score_adj: int | None = None
    has_runtime_hooks: bool = False
    hook_state: bytes = b""
    cgroup: Any = None
    exec_path: str = ""
    proc_attrs: Any = None
    cgroup_dirs: tuple = ()
    mount_fds: dict = NEW_DICT  # mount index -> detached bind source (mountsrc)
    console: Any = None  # consolesock.Console: where the pty master goes (process.terminal)
    extra: dict = NEW_DICT


def env_dict(env: tuple[str, ...]) -> dict[str, str]:
    """process.env as a dict; a later duplicate wins, as in execve's getenv."""
    out: dict[str, str] = {}
    for i, item in enumerate(env):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f".process.env[{i}]", f"{item!r} is not KEY=VALUE")
        out[key] = value
    return out


def needs_mount_sources(spec: Any, new_user: bool) -> bool:
    """Whether the runtime must open bind sources for init (pyrunc.mountsrc):
    binds into a new user namespace, and idmapped mounts."""
    for m in spec.mounts:
        bind = m.type == "bind" or "bind" in m.options or "rbind" in m.options
        if (new_user and bind) or "idmap" in m.options or "ridmap" in m.options:
            return True
    return False


def personality_value(p: Any) -> int | None:
    if p is None:
        return None
    if p.domain not in PERSONALITY_DOMAINS:
        raise ConfigError(".linux.personality.domain", f"unknown domain {p.domain!r} (LINUX or LINUX32)")
    if p.flags:
        raise ConfigError(".linux.personality.flags", "no personality flags are defined by the spec")
    return PERSONALITY_DOMAINS[p.domain]


def rootfs_path(spec: Any, bundle: str) -> str:
    """The rootfs as runc's validator wants it: `root.path` (relative to the
    bundle, which runc enters with chdir and so sees resolved) must name the
    directory itself, with no symlink in any component. Following one would
    let a bundle make any host directory, `/` included, the container's root."""
    if spec.root is None:
        raise ConfigError(".root", "is required on Linux")
    path = spec.root.path
    full = os.path.normpath(path if path.startswith("/") else os.path.join(os.path.realpath(bundle), path))
    try:
        st = os.stat(full)
    except OSError as err:
        raise ConfigError(".root.path", f"invalid rootfs: stat {full}: {err.strerror}") from None
    if os.path.realpath(full) != full:
        raise ConfigError(".root.path", f"invalid rootfs: not an absolute path, or a symlink ({path})")
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(".root.path", f"invalid rootfs: {full} is not a directory")
    return full
