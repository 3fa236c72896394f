"""The container's terminal, made inside the container (runc's setupConsole).

With `process.terminal: true` the process gets a pty of the container's own
devpts instance: its slave end becomes stdin, stdout, stderr and the
controlling terminal, and its master end goes to whoever holds the console
socket (conmon, containerd's shim, a test's listener, or pyrunc's own
foreground proxy through a socketpair) as SCM_RIGHTS, with runc's payload
"/dev/ptmx". init also bind-mounts the slave onto /dev/console, as runc does;
`exec` does not.

Why every step is done by fd (SECURITY-ANCHORS §9, CVE-2025-52565, and the
/dev/pts/ptmx checks of runc's 2025 fixes): the image controls /dev unless a
tmpfs and a devpts are mounted there, so
- /dev/pts must be a devpts mount (fstatfs) and `ptmx` is opened beneath it
  with RESOLVE_NO_XDEV|NO_SYMLINKS: nothing the image planted, and no mount
  over ptmx, is ever opened (opening a stranger device can have side effects);
  the opened file must be the devpts ptmx itself (inode 2, char 5:2);
- the slave comes from the master (TIOCGPTPEER), never from the path
  /dev/pts/N, and must be a devpts char device of the Unix98 slave majors;
- /dev/console is opened O_NOFOLLOW (a symlink there is refused) and the slave
  is attached to that very inode with open_tree + move_mount, so no path is
  resolved again and no /proc of the container is involved.

Pure syscalls on data the parent prepared: init and the exec process call this
after the container's mount namespace is theirs, and import nothing then.
"""

from __future__ import annotations

import _socket  # not `socket`: its enum and selectors imports (sync.py does the same)
import fcntl
import os
import stat
import struct

from pyrunc import syscalls as s
from pyrunc.errors import KernelError, SecurityError

DEVPTS_SUPER_MAGIC = 0x1CD1
PTMX_INO = 2                       # fs/devpts/inode.c mknod_ptmx
PTMX_RDEV = os.makedev(5, 2)       # TTYAUX_MAJOR:2
SLAVE_MAJORS = range(136, 144)     # UNIX98_PTY_SLAVE_MAJOR .. +UNIX98_PTY_MAJOR_COUNT
TIOCGPTPEER = 0x5441
TIOCSPTLCK = 0x40045431
TIOCSWINSZ = 0x5414
TIOCGWINSZ = 0x5413
TIOCSCTTY = 0x540E
MASTER_NAME = b"/dev/ptmx"         # what runc 1.1 sends with the fd (receivers ignore it)
_SOL_SOCKET, _SCM_RIGHTS = 1, 1
_BENEATH = s.RESOLVE_BENEATH | s.RESOLVE_NO_XDEV | s.RESOLVE_NO_SYMLINKS | s.RESOLVE_NO_MAGICLINKS
_IN_ROOT = s.RESOLVE_IN_ROOT | s.RESOLVE_NO_MAGICLINKS


def winsize(rows: int, cols: int) -> bytes:
    return struct.pack("HHHH", rows, cols, 0, 0)


def size_of(fd: int) -> tuple[int, int]:
    """(rows, cols) of a terminal."""
    rows, cols, _x, _y = struct.unpack("HHHH", fcntl.ioctl(fd, TIOCGWINSZ, winsize(0, 0)))
    return rows, cols


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, TIOCSWINSZ, winsize(rows, cols))


TCGETS, TCSETS = 0x5401, 0x5402   # <asm-generic/ioctls.h>
TERMIOS_SIZE = 36                  # struct termios: 4 flags, c_line, c_cc[19]
ONLCR = 0o4                        # <asm-generic/termbits.h>


def clear_onlcr(fd: int) -> None:
    """-onlcr on the pty, as runc's foreground relay sets it (tty.go): the caller's terminal,
    which keeps OPOST, turns the container's "\\n" into "\\r\\n" once. Done here, before the
    process can write, not by the relay after it runs: a fast `exec -t CID stty size` printed
    "\\r\\r\\n" when its output came before the relay's tcsetattr."""
    # TCGETS/TCSETS on the kernel's struct termios (c_oflag is its second u32) through fcntl,
    # which init has anyway: `termios` would cost every run ~0.9 ms of import for this one bit.
    attrs = bytearray(fcntl.ioctl(fd, TCGETS, bytes(TERMIOS_SIZE)))
    oflag = struct.unpack_from("=I", attrs, 4)[0]
    struct.pack_into("=I", attrs, 4, oflag & ~ONLCR)
    fcntl.ioctl(fd, TCSETS, bytes(attrs))


def _devpts(fd: int, what: str) -> os.stat_result:
    st = os.fstat(fd)
    if s.fstatfs_type(fd) != DEVPTS_SUPER_MAGIC:
        raise SecurityError(f"terminal: {what} is not on a devpts mount (mount devpts at /dev/pts)")
    return st


def open_pty(root_fd: int) -> tuple[int, int]:
    """(master, slave) of a new pty of the devpts at the root's /dev/pts."""
    try:
        pts = s.openat2(root_fd, "dev/pts", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0, _IN_ROOT)
    except OSError as err:
        raise KernelError("terminal: open", err.errno or 2, "/dev/pts") from None
    try:
        _devpts(pts, "/dev/pts")
        try:
            master = s.openat2(pts, "ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC, 0, _BENEATH)
        except OSError as err:
            raise KernelError("terminal: open", err.errno or 2, "/dev/pts/ptmx") from None
    finally:
        os.close(pts)
    try:
        st = _devpts(master, "/dev/pts/ptmx")
        if not stat.S_ISCHR(st.st_mode) or st.st_rdev != PTMX_RDEV or st.st_ino != PTMX_INO:
            raise SecurityError("terminal: /dev/pts/ptmx is not the devpts ptmx device")
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))  # unlockpt
        slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            st = _devpts(slave, "the pty's slave")
            if not stat.S_ISCHR(st.st_mode) or os.major(st.st_rdev) not in SLAVE_MAJORS:
                raise SecurityError("terminal: the pty's slave is not a Unix98 pty slave")
        except BaseException:
            os.close(slave)
            raise
    except OSError as err:
        os.close(master)
        raise KernelError("terminal: allocate pty", err.errno or 5, "/dev/pts/ptmx") from None
    except BaseException:
        os.close(master)
        raise
    return master, slave


def bind_console(root_fd: int, slave: int) -> None:
    """Bind the slave onto /dev/console (runc mountConsole, CVE-2025-52565)."""
    try:
        dev = s.openat2(root_fd, "dev", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0, _IN_ROOT)
    except OSError as err:
        raise KernelError("terminal: open", err.errno or 2, "/dev") from None
    try:
        try:
            target = os.open("console", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dev)
        except FileNotFoundError:
            old = os.umask(0)
            try:
                os.close(os.open("console", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o666, dir_fd=dev))
            finally:
                os.umask(old)
            target = os.open("console", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dev)
    except OSError as err:
        raise KernelError("terminal: create mount target", err.errno or 5, "/dev/console") from None
    finally:
        os.close(dev)
    try:
        mode = os.fstat(target).st_mode
        if stat.S_ISLNK(mode) or stat.S_ISDIR(mode):
            raise SecurityError("terminal: /dev/console in the container is a symlink or a directory; "
                                "refusing to mount the console over it")
        try:
            tree = s.open_tree(slave, "", s.OPEN_TREE_CLONE | s.OPEN_TREE_CLOEXEC | s.AT_EMPTY_PATH)
        except OSError as err:
            raise KernelError("terminal: open_tree", err.errno or 5, "pty slave") from None
        try:
            s.move_mount(tree, "", target, "", s.MOVE_MOUNT_F_EMPTY_PATH | s.MOVE_MOUNT_T_EMPTY_PATH)
        except OSError as err:
            raise KernelError("terminal: mount the pty on", err.errno or 5, "/dev/console") from None
        finally:
            os.close(tree)
    finally:
        os.close(target)


def send_master(sock_fd: int, master: int) -> None:
    """Hand the master to the console socket's peer (runc utils.SendFd)."""
    ancillary = [(_SOL_SOCKET, _SCM_RIGHTS, struct.pack("i", master))]
    sock = _socket.socket(fileno=sock_fd)
    try:
        sock.sendmsg([MASTER_NAME], ancillary)
    except OSError as err:
        raise KernelError("terminal: send the pty master to the console socket", err.errno or 32) from None
    finally:
        sock.detach()


def attach(slave: int) -> None:
    """The slave as fds 0, 1, 2 and as the controlling terminal of this session
    (the caller leads a new session: setsid came first)."""
    for fd in (0, 1, 2):
        os.dup2(slave, fd, inheritable=True)
    if slave > 2:
        os.close(slave)
    try:
        fcntl.ioctl(0, TIOCSCTTY, 0)
    except OSError as err:
        raise KernelError("terminal: ioctl(TIOCSCTTY)", err.errno or 1) from None


def setup(root_fd: int, sock_fd: int, rows: int, cols: int, console: bool, relayed: bool) -> None:
    """Everything, in runc's order: allocate, size, [-onlcr when pyrunc relays it itself],
    [/dev/console], send the master, close it and the socket, attach the slave. On failure
    nothing of the pty stays open here."""
    master, slave = open_pty(root_fd)
    try:
        try:
            if rows and cols:
                set_size(master, rows, cols)
            if relayed:
                clear_onlcr(master)
            if console:
                bind_console(root_fd, slave)
            send_master(sock_fd, master)
        finally:
            os.close(master)
            os.close(sock_fd)
    except BaseException:
        os.close(slave)
        raise
    attach(slave)
