"""Bind sources opened by the runtime, as host root, before init exists.

Two kinds of bind mount cannot be made by init from a path:
- in a new user namespace, init is root of that namespace only: a source
  under a directory only host root may search (0700 root) fails with EACCES;
- an idmapped mount (`idmap`/`ridmap`, runtime-spec 1.2) needs
  mount_setattr(MOUNT_ATTR_IDMAP) with a user namespace fd carrying the
  mount's mappings.

So the parent clones each such source into a detached mount
(open_tree(OPEN_TREE_CLONE), recursive for rbind), idmaps it if asked, and
init, which inherits the fds across fork, attaches it with move_mount onto
the target it resolved inside the rootfs (runc 1.2 does the same). The fds
are close-on-exec and the parent closes its copies once init is ready.
"""

from __future__ import annotations

import os

from pyrunc import mountopts, namespaces, syscalls as s
from pyrunc.errors import ConfigError, KernelError

IDMAP = frozenset({"idmap", "ridmap"})


def open_sources(spec, bundle: str, new_user: bool) -> dict[int, int]:
    """{mount index: detached mount fd}; the caller closes them (close_all)."""
    out: dict[int, int] = {}
    userns: dict[tuple, int] = {}
    try:
        for i, m in enumerate(spec.mounts):
            field = f".mounts[{i}]"
            opts = mountopts.parse(m.options, m.type, field)
            idmap = IDMAP & opts.extensions
            if not opts.is_bind:
                if idmap:
                    raise ConfigError(f"{field}.options", "idmap and ridmap apply to bind mounts only")
                continue
            if not (new_user or idmap):
                continue
            source = m.source or ""
            if not source:
                raise ConfigError(f"{field}.source", "a bind mount needs a source")
            if not source.startswith("/"):
                source = os.path.join(bundle, source)
            flags = s.OPEN_TREE_CLONE | s.OPEN_TREE_CLOEXEC | (s.AT_RECURSIVE if opts.recursive else 0)
            try:
                fd = s.open_tree(-100, source, flags)  # AT_FDCWD
            except FileNotFoundError:
                raise ConfigError(f"{field}.source", f"bind source {source}: no such file or directory") from None
            except OSError as err:
                raise KernelError("open_tree", err.errno or 1, source) from None
            out[i] = fd
            if idmap:
                _idmap(fd, m, spec.linux, field, "ridmap" in idmap, userns)
    except BaseException:
        close_all(out)
        raise
    finally:
        close_all(userns)
    return out


def _idmap(fd: int, m, linux, field: str, recursive: bool, cache: dict[tuple, int]) -> None:
    uids = m.uid_mappings if m.uid_mappings is not None else (linux.uid_mappings if linux else ())
    gids = m.gid_mappings if m.gid_mappings is not None else (linux.gid_mappings if linux else ())
    if not uids or not gids:
        raise ConfigError(f"{field}.uidMappings", "an idmapped mount needs uid and gid mappings "
                          "(its own, or the container's linux.uidMappings/gidMappings)")
    key = (uids, gids)
    if key not in cache:
        cache[key] = namespaces.userns_with_maps(uids, gids)
    try:
        s.mount_setattr(fd, "", s.AT_EMPTY_PATH | (s.AT_RECURSIVE if recursive else 0),
                        attr_set=s.MOUNT_ATTR_IDMAP, userns_fd=cache[key])
    except OSError as err:
        raise KernelError("mount_setattr(MOUNT_ATTR_IDMAP)", err.errno or 1, m.source,
                          "the source filesystem may not support idmapped mounts") from None


def attach(fd: int, target_fd: int) -> None:
    """In init: put the detached mount onto the resolved target."""
    s.move_mount(fd, "", target_fd, "", s.MOVE_MOUNT_F_EMPTY_PATH | s.MOVE_MOUNT_T_EMPTY_PATH)


def close_all(fds: dict) -> None:
    for fd in fds.values():
        os.close(fd)
    fds.clear()
