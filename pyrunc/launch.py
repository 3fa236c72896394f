"""Everything init needs, computed in the parent before fork.

The parent does all parsing, compiling (seccomp BPF, capability numbers) and
importing; the forked children only read this object and make syscalls. That
is what keeps the children fast and keeps imports out of the container.

`prepare_process` is the part create and exec share (the process: user, caps,
rlimits, scheduler and friends, LSM labels, seccomp, cwd, env) and
`plan_console` its terminal; create adds the container (mounts, sysctl,
hooks, cgroup), exec the namespaces and cgroup of the running container.
"""

from __future__ import annotations

import os
import stat
TYPE_CHECKING = False  # typing costs ~4 ms to import on the run hot path
if TYPE_CHECKING:
    from typing import Any, Callable

from pyrunc.errors import ConfigError
from pyrunc.namespaces import NamespacePlan
from pyrunc.record import NEW_DICT, MutableRecord

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
    rootfs_ops: tuple = ()  # rootfs.plan: what init mounts and makes, in order
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


def keeps_caller_groups(proc: Any) -> bool:
    """runc: a non-root caller's container keeps the caller's supplementary groups (never
    setgroups): dropping them would defeat a file whose group is denied what others may do
    (CVE-2014-8989's reason for setgroups=deny), even where newgidmap allowed setgroups.
    So additionalGids are refused there. Shared with `pyrunc explain`."""
    if os.geteuid() == 0:
        return False
    if proc.user.additional_gids:
        raise ConfigError(".process.user.additionalGids", "cannot set any additional groups in a rootless container")
    return True


def prepare_process(spec: Any, bundle: str, rootfs: str, ns: NamespacePlan, *, env: dict[str, str],
                    state_root: str, preserve_fds: int = 0, container_attrs: bool = True) -> Launch:
    """The launch of `spec.process`, as create and exec both need it: capability
    numbers (runc's warning for unknown names), the scheduler/ioPriority/CPU
    affinity plan (`container_attrs`: with the container-wide memoryPolicy,
    create only), LSM labels checked against the host, and the container's
    seccomp filter compiled, or taken from the cache under the state root."""
    from pyrunc import capabilities, procattrs

    proc, linux = spec.process, spec.linux
    launch = Launch(spec=spec, bundle=bundle, rootfs=rootfs, ns=ns,
                    caps=capabilities.prepare_caps(proc.capabilities), env=env, preserve_fds=preserve_fds)
    if launch.caps.warnings:
        from pyrunc import logs

        for text in launch.caps.warnings:  # runc warns about unknown names only
            (logs.warning if text.startswith("ignoring") else logs.debug)(text)
    if keeps_caller_groups(proc):
        launch.extra["keep_groups"] = True
    launch.proc_attrs = procattrs.plan(proc, linux if container_attrs else None)
    if proc.apparmor_profile or proc.selinux_label:
        from pyrunc import lsm

        lsm.check_lsm(proc.apparmor_profile, proc.selinux_label)
    if linux is not None and linux.seccomp is not None:
        from pyrunc import seccomp

        launch.seccomp = seccomp.prepare(linux.seccomp, bounding_caps=list(
            proc.capabilities.bounding or ()) if proc.capabilities else [],
            cache_dir=seccomp.cache_dir(state_root))
        launch.seccomp_load = seccomp.load
    return launch


def plan_console(launch: Launch, socket_path: str | None, detach: bool) -> None:
    """Where the pty master goes (consolesock.plan): checked and connected
    before anything is made, so a bad socket leaves nothing behind."""
    proc = launch.spec.process
    if proc.terminal or socket_path:
        from pyrunc import consolesock

        launch.console = consolesock.plan(proc, socket_path, detach)
