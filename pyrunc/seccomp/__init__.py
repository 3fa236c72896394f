"""Seccomp for pyrunc: OCI `linux.seccomp` → classic BPF, in pure Python.

Two phases, because the container's init must not import or read files after
pivot_root:

* `prepare()` runs in the parent before fork: it takes the `spec.Seccomp` that
  config.seccomp checked, resolves a Docker profile's fields for this host
  (`profiles`), turns names into numbers (`rules`), builds
  libseccomp-equivalent rule trees for every architecture (`ruledb`), emits
  the filter (`codegen`) and probes the kernel for the filter flags.
* `load()` runs in init as the last step before execve and only makes the
  seccomp(2) call; with NOTIFY rules it returns the listener fd, which init
  passes to the parent, which calls `send_to_listener()` as runc does.
"""

from __future__ import annotations

import errno
TYPE_CHECKING = False  # typing and dataclasses cost ~5 ms on every run that carries a profile
if TYPE_CHECKING:
    from typing import Any

    from pyrunc.spec import Seccomp

from pyrunc.errors import ConfigError, KernelError, MissingFeature, SeccompError
from pyrunc.record import tuple_record
from pyrunc.syscalls import seccomp_set_mode_filter

SECCOMP_FILTER_FLAG_SPEC_ALLOW = 4
SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 32


# program: struct sock_filter[], native byte order (b"": no filter); flags:
# SECCOMP_FILTER_FLAG_* for seccomp(2); needs_notify: flags include NEW_LISTENER,
# so load() returns an fd.
Prepared = tuple_record("Prepared", "program flags listener_path listener_metadata needs_notify")


def compile_profile(seccomp: Seccomp, *, arch: Any = None, field: str = ".linux.seccomp",
                    bounding_caps: list[str] | None = None) -> tuple[Any, bytes, bool]:
    """(Profile, program bytes, uses NOTIFY) for a checked profile (spec.Seccomp)."""
    from pyrunc.seccomp import bpf, codegen, ruledb, profiles, rules
    from pyrunc.seccomp.arches import native

    target = arch or native()
    plain = profiles.resolve(seccomp, target, bounding_caps, field=field)
    profile = rules.resolve(plain, field, target)
    dbs = ruledb.build(profile)
    program = bpf.encode(codegen.generate(dbs, profile.default_action,
                                          libseccomp_tree=ruledb.libseccomp_tree_layout(profile)))
    notify = any(entry_uses(adb.db, bpf.RET_USER_NOTIF) for adb in dbs)
    return profile, program, notify


def entry_uses(db: Any, action: int) -> bool:
    from pyrunc.seccomp.ruletree import level

    def walk(node: Any) -> bool:
        for n in level(node):
            if (n.act_t_flg and n.act_t == action) or (n.act_f_flg and n.act_f == action):
                return True
            if (n.nxt_t is not None and walk(n.nxt_t)) or (n.nxt_f is not None and walk(n.nxt_f)):
                return True
        return False

    return any((e.chains is None and e.action == action) or (e.chains is not None and walk(e.chains))
               for e in db.syscalls.values() if e.num >= 0)


def prepare(seccomp: Seccomp, *, bounding_caps: list[str] | None = None,
            field: str = ".linux.seccomp", cache_dir: str | None = None) -> Prepared:
    """Compile `linux.seccomp` (checked by spec.parse) for this host; all imports and
    all compile work happen here, before fork. With `cache_dir` (the state root's,
    pyrunc/seccomp/cache.py) a profile compiled before is read, not compiled."""
    from pyrunc.syscalls import seccomp_filter_flags_supported

    if not seccomp.default_action and not seccomp.syscalls:
        # runc (specconv.SetupSeccomp): no default action and no rules = no filter
        return Prepared(b"", 0, None, None, False)
    compiled = _compile_cached(seccomp, bounding_caps, field, cache_dir)
    flags = 0
    if compiled.flag_bits is None:
        if seccomp_filter_flags_supported(SECCOMP_FILTER_FLAG_SPEC_ALLOW):
            flags = SECCOMP_FILTER_FLAG_SPEC_ALLOW
    else:
        for i, (name, bit) in enumerate(compiled.flag_bits):
            probe = bit | (FLAG_NEW_LISTENER if bit == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV else 0)
            if not seccomp_filter_flags_supported(probe):
                raise MissingFeature(f"{field}.flags[{i}]: {name}", "the kernel does not know this flag")
            if bit == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV and not compiled.notify:
                continue  # only meaningful with a listener; libseccomp sets it only then
            flags |= bit
    if compiled.notify:
        flags |= FLAG_NEW_LISTENER
        if flags & 1:  # TSYNC with a listener needs TSYNC_ESRCH (seccomp(2))
            flags |= FLAG_TSYNC_ESRCH
        if not compiled.listener_path:
            raise ConfigError(f"{field}.listenerPath", "SCMP_ACT_NOTIFY rules need a listenerPath")
    return Prepared(compiled.program, flags, compiled.listener_path, compiled.listener_metadata, compiled.notify)


def cache_dir(state_root: str) -> str:
    """Where the compiled filters of the containers under `state_root` are kept."""
    import os

    from pyrunc.seccomp.cache import DIR_NAME

    return os.path.join(state_root, DIR_NAME)


FLAG_NEW_LISTENER = 8   # rules.FLAG_NEW_LISTENER, here so a cache hit imports no compiler module
FLAG_TSYNC_ESRCH = 16


def _compile_cached(seccomp: Seccomp, bounding_caps: list[str] | None, field: str,
                    cache_dir: str | None) -> Any:
    """cache.Compiled for `seccomp`: from the cache when there, else compiled (and stored)."""
    from pyrunc.seccomp import cache

    entry = cache.key(seccomp, bounding_caps, field) if cache_dir else ""
    if cache_dir:
        hit = cache.get(cache_dir, entry)
        if hit is not None:
            return hit
    from pyrunc.seccomp import rules

    profile, program, notify = compile_profile(seccomp, field=field, bounding_caps=bounding_caps)
    flag_bits = None if profile.flags is None else tuple((name, rules.FLAGS[name]) for name in profile.flags)
    compiled = cache.Compiled(program, notify, flag_bits, profile.listener_path, profile.listener_metadata)
    if cache_dir:
        cache.put(cache_dir, entry, compiled)
    return compiled


def load(prepared: Prepared) -> int | None:
    """Install the filter in the calling process: the last thing before execve.
    Makes only the seccomp(2) call (no imports, no file access). Without
    no_new_privs the kernel requires CAP_SYS_ADMIN, as for runc. An empty program
    (a profile runc treats as "no seccomp") loads nothing."""
    if not prepared.program:
        return None
    try:
        fd = seccomp_set_mode_filter(prepared.program, prepared.flags)
    except OSError as err:
        if err.errno == errno.EACCES:
            raise SeccompError("seccomp: loading the filter needs no_new_privs or CAP_SYS_ADMIN "
                               "(EACCES)") from None
        raise KernelError("seccomp(SECCOMP_SET_MODE_FILTER)", err.errno or errno.EINVAL) from None
    return fd if prepared.needs_notify else None


def send_to_listener(prepared: Prepared, notify_fd: int, state_json: bytes) -> None:
    """Parent side: give the notify fd and the container state to listenerPath."""
    from pyrunc.seccomp import notify

    if not prepared.listener_path:
        raise SeccompError("seccomp: no listenerPath to send the notify fd to")
    notify.send(prepared.listener_path, notify_fd, state_json, prepared.listener_metadata)
