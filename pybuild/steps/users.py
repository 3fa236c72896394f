"""User and group names → numeric ids through the image's own /etc/passwd and
/etc/group (never the host's), read with in-root path resolution.

Two rules differ on purpose, as in docker:
- `USER name` (RUN steps): the gid is the user's primary group from passwd,
  plus supplementary groups listing the user; an unknown numeric uid runs with gid 0.
- `COPY --chown=user`: without a group the gid is the *same number* as the uid
  (Dockerfile reference, COPY --chown).
"""

from __future__ import annotations

from dataclasses import dataclass

from pybuild.errors import PybuildError
from pybuild.steps.fs import resolve_in_root


class UserError(PybuildError):
    pass


@dataclass(frozen=True, slots=True)
class Ids:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"        # from passwd; RUN gets HOME from it unless ENV sets HOME


def _read_db(rootfs: str | int, path: str) -> list[list[str]]:
    """The lines of passwd/group; `rootfs` is a path (no container runs on it) or an fd of a
    live container's root, whose files can change under us: resolved by the kernel inside it."""
    if isinstance(rootfs, int):
        data = _read_in_root_fd(rootfs, path)
        if data is None:
            return []
        text = data.decode("utf-8", "replace")
    else:
        host = resolve_in_root(rootfs, path)
        try:
            with open(host, "rb") as fh:
                text = fh.read().decode("utf-8", "replace")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


_MAX_DB = 16 << 20


def _read_in_root_fd(root_fd: int, path: str) -> bytes | None:
    import errno
    import os
    import stat

    from pyrunc import syscalls as s

    try:
        fd = s.openat2(root_fd, path.lstrip("/"), os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC, 0,
                       s.RESOLVE_IN_ROOT | s.RESOLVE_NO_MAGICLINKS | s.RESOLVE_NO_XDEV)
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EXDEV):
            return None
        raise UserError(f"read {path}: {err.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a fifo or device planted there is not a user db
            return None
        chunks, size = [], 0
        while size < _MAX_DB and (chunk := os.read(fd, min(1 << 20, _MAX_DB - size))):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _lookup_group(rootfs: str | int, group: str) -> int:
    if group.isdigit():
        return int(group)
    for fields in _read_db(rootfs, "/etc/group"):
        if len(fields) >= 3 and fields[0] == group and fields[2].isdigit():
            return int(fields[2])
    raise UserError(f"unable to find group {group}: no matching entries in group file")


def _lookup_user(rootfs: str | int, user: str) -> tuple[int, int | None, str | None, str]:
    """(uid, primary gid or None, user name or None, home dir)."""
    for fields in _read_db(rootfs, "/etc/passwd"):
        if len(fields) < 4 or not fields[2].isdigit() or not fields[3].isdigit():
            continue
        if fields[0] == user or (user.isdigit() and int(fields[2]) == int(user)):
            home = fields[5] if len(fields) > 5 and fields[5] else "/"
            return int(fields[2]), int(fields[3]), fields[0], home
    if user.isdigit():
        return int(user), None, None, "/"
    raise UserError(f"unable to find user {user}: no matching entries in passwd file")


def resolve_user(rootfs: str | int, spec: str | None) -> Ids:
    """`USER` value ("", "name", "uid", "name:group", "uid:gid") → ids for a RUN
    (or `exec -u`, with `rootfs` an fd of the running container's root)."""
    if not spec:
        spec = "0"
    user, _, group = spec.partition(":")
    uid, primary, name, home = _lookup_user(rootfs, user)
    if group:
        return Ids(uid, _lookup_group(rootfs, group), home=home)
    gid = primary if primary is not None else 0
    extra: list[int] = []
    if name:
        for fields in _read_db(rootfs, "/etc/group"):
            if len(fields) >= 4 and fields[2].isdigit() and name in fields[3].split(","):
                if int(fields[2]) != gid and int(fields[2]) not in extra:
                    extra.append(int(fields[2]))
    return Ids(uid, gid, tuple(extra), home)


def resolve_chown(rootfs: str, spec: str) -> Ids:
    """`--chown=user[:group]` → ids; a missing group means gid = uid's number."""
    user, _, group = spec.partition(":")
    uid = int(user) if user.isdigit() else _lookup_user(rootfs, user)[0]
    gid = _lookup_group(rootfs, group) if group else uid
    return Ids(uid, gid)
