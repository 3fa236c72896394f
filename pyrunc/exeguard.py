"""Keep the host Python interpreter out of the container's reach (the CVE-2019-5736 analogue).

The threat. Container init and the `pyrunc exec` helper are forks of the pyrunc
CLI, so `/proc/<pid>/exe` of a process inside the container's namespaces is the
*host* interpreter. Three ways lead a container process to it:
  T1  /proc/<init>/exe (or /proc/<helper>/exe) while init waits between create
      and start, or while an exec helper joins -- blocked by non-dumpability for
      anyone without CAP_SYS_PTRACE in the initial user namespace;
  T2  `process.args = ["/proc/self/exe"]`, or an image binary that is a
      `#!/proc/self/exe` script: the kernel resolves the link *in init* while it
      execs, and the host interpreter then runs the container's code as a
      normal, dumpable container process. No capability is needed;
  T3  an fd to the interpreter kept open across exec (Python keeps none; fds.py
      closes the rest).
With an O_PATH fd on the inode, the attacker waits until no Python runs on the
host (ETXTBSY) and reopens it for writing: every Python program on the host is
then backdoored. Non-dumpability alone does not stop T2 or a CAP_SYS_PTRACE
container, so the interpreter the runtime runs from must itself be unwritable.

The mitigation, complete for T1-T3 and cheap:
  1. `make_nondumpable()` from the fork of the intermediate process until
     execve (PR_SET_DUMPABLE 0; CVE-2016-9962): /proc/<pid>/{exe,fd,cwd,root,
     environ,mem} of init and of exec helpers belong to root in the initial
     user namespace.
  2. The runtime runs from a read-only view of the interpreter: a bind mount
     of the real interpreter, remounted MS_RDONLY, at VIEW_DIR/<name>
     (`ensure_view`), in the host mount namespace, made once per boot. The
     process is *exec'ed from that path*, so /proc/<pid>/exe names the
     read-only mount: reopening it for writing fails with EROFS; linkat of it
     anywhere fails with EXDEV/EROFS; and no container can remount a mount of
     another mount namespace. When a bind mount is impossible (no
     CAP_SYS_ADMIN), `reexec_guarded` falls back to runc's other answer, an
     F_SEAL_WRITE|SHRINK|GROW|SEAL memfd copy of the interpreter.
  3. The `pyrunc` console script is a small /bin/sh entry point written by
     `write_entry_point`: it execs the view when it exists, with `-I -S` and
     the runtime's sys.path spelled out, so PYTHON* variables of the caller's
     environment change nothing (-I) and no site hook runs (-S; saves 12 ms).
     Before the first container of a boot the view does not exist yet; then
     `require_guarded_exe()` (called by the CLI for the verbs that enter
     containers) makes it and re-execs once through it.
  4. `seal_imports()` in init right before pivot_root: after it, any import
     that would have to load code fails instead of finding the image's
     /usr/lib/python3*/... or a planted pyrunc/*.py (Python-specific twin of
     the /proc/self/exe bug). Everything init needs is imported before the fork.

Measured on this VM: the check costs one open+fstatvfs (~20 us); making the
view ~1 ms once per boot; a re-exec ~12 ms (only when not started from the
view); the memfd fallback ~6 ms copy + ~12 ms re-exec.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sys
TYPE_CHECKING = False  # collections.abc would import collections on the run hot path
if TYPE_CHECKING:
    from collections.abc import Sequence

from pyrunc import syscalls
from pyrunc.errors import KernelError, MissingFeature

VIEW_DIR = "/run/pyrunc-exe"
GUARD_ENV = "_PYRUNC_GUARDED"  # set by reexec_guarded: never re-exec twice
ENTER_VERBS = frozenset({"create", "run", "exec"})
# global flags of cli.py that take a value (so the verb is found after them)
_VALUE_FLAGS = frozenset({"--root", "--log", "--log-format", "--rootless", "--criu"})
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def make_nondumpable() -> None:
    """PR_SET_DUMPABLE 0: inherited by fork, reset by the container's execve."""
    syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)


def is_dumpable() -> bool:
    return bool(syscalls.prctl(syscalls.PR_GET_DUMPABLE))


def real_interpreter() -> str:
    """The interpreter file this process runs (for a memfd copy: argv[0], the path it was copied from)."""
    return os.path.realpath(sys.executable)


def exe_guard(pid: int | str = "self") -> str | None:
    """How /proc/PID/exe is protected: "ro-mount", "sealed-memfd", or None if writable."""
    try:
        fd = os.open(f"/proc/{pid}/exe", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise KernelError("open", err.errno or 2, f"/proc/{pid}/exe") from None
    try:
        try:
            if fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_WRITE:
                return "sealed-memfd"
        except OSError:
            pass  # EINVAL: not a memfd
        if os.fstatvfs(fd).f_flag & os.ST_RDONLY:
            return "ro-mount"
        return None
    finally:
        os.close(fd)


def view_path(interpreter: str | None = None) -> str:
    """VIEW_DIR/<12 hex of the path's sha256>/<basename>: one view per interpreter path."""
    import hashlib

    real = os.path.realpath(interpreter or real_interpreter())
    tag = hashlib.sha256(real.encode()).hexdigest()[:12]
    return os.path.join(VIEW_DIR, tag, os.path.basename(real))


def _view_ok(view: str, real: os.stat_result) -> bool:
    try:
        st = os.stat(view)
    except FileNotFoundError:
        return False
    return (st.st_dev, st.st_ino) == (real.st_dev, real.st_ino) and bool(os.statvfs(view).f_flag & os.ST_RDONLY)


def _mount_count(path: str) -> int:
    """How many mounts sit on `path` (os.path.ismount cannot tell for a file bind mount)."""
    encoded = path.replace("\\", "\\134").replace(" ", "\\040").replace("\t", "\\011").replace("\n", "\\012")
    with open("/proc/self/mountinfo") as f:
        return sum(1 for line in f if line.split(" ", 5)[4] == encoded)


def ensure_view(interpreter: str | None = None) -> str:
    """Make (once per boot) the read-only bind view of the interpreter; returns its path.

    Idempotent and safe against concurrent callers (flock). A stale view (the
    interpreter was upgraded, so the inode differs) is detached and replaced.
    """
    real_path = os.path.realpath(interpreter or real_interpreter())
    real = os.stat(real_path)
    view = view_path(real_path)
    if _view_ok(view, real):
        return view
    os.makedirs(os.path.dirname(view), mode=0o711, exist_ok=True)
    lock = os.open(os.path.dirname(view), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _view_ok(view, real):
            return view
        for _ in range(_mount_count(view)):
            syscalls.umount2(view, syscalls.MNT_DETACH)
        os.close(os.open(view, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o755))
        try:
            syscalls.mount(real_path, view, None, syscalls.MS_BIND)
            syscalls.mount(None, view, None, syscalls.MS_PRIVATE)
            syscalls.mount(None, view, None, syscalls.MS_REMOUNT | syscalls.MS_BIND | syscalls.MS_RDONLY
                           | syscalls.MS_NOSUID | syscalls.MS_NODEV)
        except OSError as err:
            for _ in range(_mount_count(view)):
                syscalls.umount2(view, syscalls.MNT_DETACH)
            raise KernelError("mount", err.errno or 1, view, "read-only view of the interpreter") from None
        if not _view_ok(view, real):
            raise KernelError("mount", 5, view, "read-only view did not come out read-only")
        return view
    finally:
        os.close(lock)


def drop_view(interpreter: str) -> None:
    """Detach the view of `interpreter` (tests, uninstall); processes running from it keep it alive."""
    view = view_path(interpreter)
    for _ in range(_mount_count(view)):
        syscalls.umount2(view, syscalls.MNT_DETACH)
    try:
        os.unlink(view)
        os.rmdir(os.path.dirname(view))
    except FileNotFoundError:
        pass
    except OSError as err:  # EBUSY: a copy of the mount lives on in another mount namespace
        if err.errno != errno.EBUSY:
            raise


def boot_code(paths: Sequence[str]) -> str:
    """The -c program that starts the CLI (with -I -S): explicit sys.path, then the guard
    (re-exec through the read-only view for create/run/exec if not already), then main."""
    return (f"import sys; sys.path[:0] = {list(paths)!r}; "
            "from pyrunc.exeguard import require_guarded_exe; require_guarded_exe(sys.argv[1:]); "
            "from pyrunc.__main__ import main; main()")


def runtime_sys_path() -> list[str]:
    """Where the runtime's code lives: pyrunc's parent dir first, then the interpreter's
    library dirs of this process (no cwd, no '')."""
    import pyrunc

    root = os.path.dirname(os.path.dirname(os.path.abspath(pyrunc.__file__)))
    paths = [root]
    for entry in sys.path:
        if entry and os.path.isabs(entry) and entry not in paths:
            paths.append(entry)
    return paths


def needs_guard(argv: Sequence[str]) -> bool:
    """True when argv's verb puts a runtime process inside a container."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in _VALUE_FLAGS
        else:
            return arg in ENTER_VERBS
    return False


def require_guarded_exe(argv: Sequence[str]) -> None:
    """Return if this process already runs from a guarded interpreter; else re-exec through one."""
    reexeced = os.environ.pop(GUARD_ENV, None)
    if not needs_guard(argv) or exe_guard() is not None:
        return
    if reexeced:
        raise MissingFeature("read-only interpreter view", "re-exec did not produce a guarded /proc/self/exe")
    reexec_guarded(argv)


def reexec_guarded(argv: Sequence[str]) -> NoReturn:
    """Exec the CLI again (-I -S) from the read-only view, or from a sealed memfd copy."""
    real = real_interpreter()
    code = boot_code(runtime_sys_path())
    env = dict(os.environ)
    env[GUARD_ENV] = "1"
    try:
        view = ensure_view(real)
    except (KernelError, OSError):  # no CAP_SYS_ADMIN, read-only /run, ...
        fd = sealed_copy(real)
        os.set_inheritable(fd, True)  # the kernel needs /proc/self/fd/N while it loads it
        args = [real, "-I", "-S", "-c", code, *argv]
        os.execve(f"/proc/self/fd/{fd}", args, env)
    os.execve(view, [view, "-I", "-S", "-c", code, *argv], env)


def sealed_copy(path: str) -> int:
    """A memfd holding a copy of `path`, sealed against any write (runc CloneBinary)."""
    fd = os.memfd_create("pyrunc-python", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(src).st_size
        done = 0
        while done < size:
            sent = os.sendfile(fd, src, None, size - done)
            if sent == 0:
                raise KernelError("sendfile", 5, path, "short copy")
            done += sent
    finally:
        os.close(src)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    return fd


class _RefuseImports:
    """A meta path finder that refuses every import not already in sys.modules."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        raise ImportError(f"pyrunc: import of {name!r} refused after pivot_root "
                          "(it would run code from the container's filesystem)", name=name)


def seal_imports() -> None:
    """In init, right before pivot_root: no module can be loaded from any path after this."""
    sys.meta_path[:] = [_RefuseImports()]
    sys.path_hooks.clear()
    sys.path_importer_cache.clear()
    sys.path[:] = []
    sys.dont_write_bytecode = True


ENTRY_TEMPLATE = """#!/bin/sh
# pyrunc entry point, generated by pyrunc.exeguard.write_entry_point (see docs/SECURITY.md).
# Runs the interpreter from its read-only view when it exists (so /proc/PID/exe of every
# runtime process is unwritable), always with -I -S so PYTHON* variables change nothing.
v={view}
[ -x "$v" ] || v={real}
exec "$v" -I -S -c {code} "$@"
"""


def write_entry_point(path: str, interpreter: str | None = None) -> None:
    """Write the /bin/sh console script for pyrunc at `path` (atomically)."""
    import shlex

    from pyrunc import fsutil

    real = os.path.realpath(interpreter or sys.executable)
    text = ENTRY_TEMPLATE.format(view=shlex.quote(view_path(real)), real=shlex.quote(real),
                                 code=shlex.quote(boot_code(runtime_sys_path())))
    fsutil.atomic_write(path, text.encode(), mode=0o755, durable=False)


if __name__ == "__main__":  # python -I -m pyrunc.exeguard ENTRY_PATH
    write_entry_point(sys.argv[1])
