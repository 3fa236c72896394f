"""Parse OCI mount options into a plan (pure; unit-tested without root).

The vocabulary is mount(8)'s, as runc accepts it: flags that set or clear
MS_* bits, propagation flags applied after the mount, recursive attributes
(`rro`, `rnosuid`, …) applied with mount_setattr(AT_RECURSIVE), runc's
extensions (`tmpcopyup`, `idmap`), and everything else passed as fs data.
"""

from __future__ import annotations

import os

from pyrunc import syscalls as s
from pyrunc.errors import ConfigError
from pyrunc.record import Record

# option -> (clear?, flag)
FLAGS: dict[str, tuple[bool, int]] = {
    "async": (True, s.MS_SYNCHRONOUS), "atime": (True, s.MS_NOATIME), "bind": (False, s.MS_BIND),
    "defaults": (False, 0), "dev": (True, s.MS_NODEV), "diratime": (True, s.MS_NODIRATIME),
    "dirsync": (False, s.MS_DIRSYNC), "exec": (True, s.MS_NOEXEC), "iversion": (False, 1 << 23),
    "lazytime": (False, s.MS_LAZYTIME), "loud": (True, s.MS_SILENT), "mand": (False, s.MS_MANDLOCK),
    "noatime": (False, s.MS_NOATIME), "nodev": (False, s.MS_NODEV), "nodiratime": (False, s.MS_NODIRATIME),
    "noexec": (False, s.MS_NOEXEC), "noiversion": (True, 1 << 23), "nolazytime": (True, s.MS_LAZYTIME),
    "nomand": (True, s.MS_MANDLOCK), "norelatime": (True, s.MS_RELATIME),
    "nostrictatime": (True, s.MS_STRICTATIME), "nosuid": (False, s.MS_NOSUID),
    "nosymfollow": (False, s.MS_NOSYMFOLLOW), "rbind": (False, s.MS_BIND | s.MS_REC),
    "relatime": (False, s.MS_RELATIME), "remount": (False, s.MS_REMOUNT), "ro": (False, s.MS_RDONLY),
    "rw": (True, s.MS_RDONLY), "silent": (False, s.MS_SILENT), "strictatime": (False, s.MS_STRICTATIME),
    "suid": (True, s.MS_NOSUID), "symfollow": (True, s.MS_NOSYMFOLLOW), "sync": (False, s.MS_SYNCHRONOUS),
}
PROPAGATION: dict[str, int] = {
    "private": s.MS_PRIVATE, "rprivate": s.MS_PRIVATE | s.MS_REC,
    "shared": s.MS_SHARED, "rshared": s.MS_SHARED | s.MS_REC,
    "slave": s.MS_SLAVE, "rslave": s.MS_SLAVE | s.MS_REC,
    "unbindable": s.MS_UNBINDABLE, "runbindable": s.MS_UNBINDABLE | s.MS_REC,
}
MOUNT_ATTR_NOSYMFOLLOW = 0x00200000
MOUNT_ATTR_ATIME_MASK = 0x70
# recursive option -> (clear?, MOUNT_ATTR_* bit); atime ones carry their value in the mask
RECURSIVE: dict[str, tuple[bool, int]] = {
    "rro": (False, s.MOUNT_ATTR_RDONLY), "rrw": (True, s.MOUNT_ATTR_RDONLY),
    "rnosuid": (False, s.MOUNT_ATTR_NOSUID), "rsuid": (True, s.MOUNT_ATTR_NOSUID),
    "rnodev": (False, s.MOUNT_ATTR_NODEV), "rdev": (True, s.MOUNT_ATTR_NODEV),
    "rnoexec": (False, s.MOUNT_ATTR_NOEXEC), "rexec": (True, s.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, 0x80), "rdiratime": (True, 0x80),
    "rnosymfollow": (False, MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (True, MOUNT_ATTR_NOSYMFOLLOW),
}
RECURSIVE_ATIME = {"rrelatime": 0x0, "rnorelatime": 0x0, "rnoatime": 0x10, "ratime": 0x0,
                   "rstrictatime": 0x20, "rnostrictatime": 0x0}
EXTENSIONS = {"tmpcopyup", "idmap", "ridmap"}


class MountOptions(Record):
    flags: int = 0
    clear: int = 0          # bits an option explicitly cleared (matters for bind remounts)
    propagation: tuple[int, ...] = ()
    attr_set: int = 0
    attr_clr: int = 0
    data: str = ""
    extensions: frozenset[str] = frozenset()

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & s.MS_BIND)

    @property
    def recursive(self) -> bool:
        return bool(self.flags & s.MS_REC)


def parse(options: tuple[str, ...], mount_type: str | None = None, field: str = ".mounts") -> MountOptions:
    flags = clear = attr_set = attr_clr = 0
    propagation: list[int] = []
    data: list[str] = []
    ext: set[str] = set()
    for i, opt in enumerate(options):
        if opt in FLAGS:
            is_clear, bit = FLAGS[opt]
            if is_clear:
                flags &= ~bit
                clear |= bit
            else:
                flags |= bit
                clear &= ~bit
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        elif opt in RECURSIVE:
            is_clear, bit = RECURSIVE[opt]
            if is_clear:
                attr_clr |= bit
            else:
                attr_set |= bit
        elif opt in RECURSIVE_ATIME:
            attr_clr |= MOUNT_ATTR_ATIME_MASK
            attr_set |= RECURSIVE_ATIME[opt]
        elif opt in EXTENSIONS:
            ext.add(opt)
        elif opt == "":
            raise ConfigError(f"{field}.options[{i}]", "empty mount option")
        else:
            data.append(opt)
    if mount_type == "bind":
        flags |= s.MS_BIND
    return MountOptions(flags, clear, tuple(propagation), attr_set, attr_clr, ",".join(data), frozenset(ext))


def statvfs_locked_flags(path: str) -> int:
    """The flags of the mount at `path` that a user namespace may not clear
    (nosuid, nodev, noexec, ro and the atime ones): bind remounts must keep them."""
    st = os.statvfs(path)
    keep = 0
    for vfs_bit, ms_bit in ((1, s.MS_RDONLY), (2, s.MS_NOSUID), (4, s.MS_NODEV), (8, s.MS_NOEXEC),
                            (1024, s.MS_NOATIME), (2048, s.MS_NODIRATIME), (4096, s.MS_RELATIME)):
        if st.f_flag & vfs_bit:
            keep |= ms_bit
    return keep


_MS_NAMES = ((s.MS_RDONLY, "ro"), (s.MS_NOSUID, "nosuid"), (s.MS_NODEV, "nodev"), (s.MS_NOEXEC, "noexec"),
             (s.MS_SYNCHRONOUS, "sync"), (s.MS_REMOUNT, "remount"), (s.MS_MANDLOCK, "mand"),
             (s.MS_DIRSYNC, "dirsync"), (s.MS_NOSYMFOLLOW, "nosymfollow"), (s.MS_NOATIME, "noatime"),
             (s.MS_NODIRATIME, "nodiratime"), (s.MS_BIND, "bind"), (s.MS_REC, "rec"),
             (s.MS_SILENT, "silent"), (s.MS_UNBINDABLE, "unbindable"), (s.MS_PRIVATE, "private"),
             (s.MS_SLAVE, "slave"), (s.MS_SHARED, "shared"), (s.MS_RELATIME, "relatime"),
             (1 << 23, "iversion"), (s.MS_STRICTATIME, "strictatime"), (s.MS_LAZYTIME, "lazytime"))
_ATTR_NAMES = ((s.MOUNT_ATTR_RDONLY, "rdonly"), (s.MOUNT_ATTR_NOSUID, "nosuid"), (s.MOUNT_ATTR_NODEV, "nodev"),
               (s.MOUNT_ATTR_NOEXEC, "noexec"), (0x10, "noatime"), (0x20, "strictatime"),
               (0x70, "atime-mask"), (0x80, "nodiratime"), (MOUNT_ATTR_NOSYMFOLLOW, "nosymfollow"))


def flag_names(flags: int) -> list[str]:
    """MS_* bits as mount(8)-like words ("rec" for MS_REC), in bit order; an
    unknown bit as hex. For plans shown to people (golden tests, explain)."""
    out = []
    for bit, name in _MS_NAMES:
        if flags & bit:
            out.append(name)
            flags &= ~bit
    return out + ([hex(flags)] if flags else [])


def attr_names(attrs: int) -> list[str]:
    """MOUNT_ATTR_* bits (mount_setattr) as words; the atime mask as one word."""
    out = []
    if attrs & 0x70 == 0x70:
        out.append("atime-mask")
        attrs &= ~0x70
    for bit, name in _ATTR_NAMES:
        if attrs & bit and bit != 0x70:
            out.append(name)
            attrs &= ~bit
    return out + ([hex(attrs)] if attrs else [])
