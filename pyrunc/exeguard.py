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

The mitigation, complete for T1-T3, with no state on the host:
  1. `make_nondumpable()` from the fork of the intermediate process until
     execve (PR_SET_DUMPABLE 0; CVE-2016-9962): /proc/<pid>/{exe,fd,cwd,root,
     environ,mem} of init and of exec helpers belong to root in the initial
     user namespace.
  2. The verbs that put a runtime process into a container (create, run,
     exec) first call `require_guarded_exe()`. Unless /proc/self/exe is already
     unwritable (the interpreter sits on a read-only mount, as crun checks for
     its own binary, or this process was re-executed already), it re-execs the
     CLI from `readonly_exe()`: a *detached* read-only bind mount of the
     interpreter (open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_RDONLY),
     runc >= 1.2's answer), held only by the fd that execveat() runs. The mount
     belongs to no mount namespace: nothing shows in any mountinfo, nothing
     outlives the processes that run from it, nothing goes stale when the
     interpreter is upgraded, nothing is half-made when the first caller of a
     boot sits in a private mount namespace (pybuild, conmon, `unshare -m`) --
     the failure of the per-boot view this replaced (issue 10). Where
     open_tree is refused (no CAP_SYS_ADMIN: rootless, a seccomp filter), a
     memfd copy sealed F_SEAL_SEAL|SHRINK|GROW|WRITE (runc's other answer).
     When both fail the verb fails, naming both errors: it never runs
     unguarded.
  3. The `pyrunc`/`pybuild` commands (bin/ in the wheel) are /bin/sh launchers
     that run the interpreter pip installed the project for with -I -S, so
     PYTHON* variables of the caller's environment change nothing (-I) and no
     site hook runs (-S); the re-exec keeps -I -S and spells sys.path out.
  4. `seal_imports()` in init right before pivot_root: after it, any import
     that would have to load code fails instead of finding the image's
     /usr/lib/python3*/... or a planted pyrunc/*.py (Python-specific twin of
     the /proc/self/exe bug). Everything init needs is imported before the fork.

Cost, measured on this VM (docs/SECURITY.md 4a): one re-exec of the
interpreter per create/run/exec (~10 ms); open_tree + mount_setattr ~50 us;
start/state/kill/delete pay nothing.
"""

from __future__ import annotations

import fcntl
import os
import sys

from pyrunc.errors import KernelError, MissingFeature

GUARD_ENV = "_PYRUNC_GUARDED"  # set by reexec_guarded: never re-exec twice
# The verbs that put a fork of this process into a container (init, exec helpers), and
# the global flags that take a value, so that the verb is found after them (a unit test
# keeps this in step with verbs.GLOBAL_OPTS; importing that table here would cost the
# re-exec path its imports twice).
ENTER_VERBS = frozenset({"create", "run", "exec"})
VALUE_FLAGS = frozenset({"--root", "--log", "--log-format", "--rootless", "--criu"})
TYPE_CHECKING = False  # typing/collections.abc would be imported on the run hot path
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NoReturn
_SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def needs_guard(argv: Sequence[str]) -> bool:
    """True when argv's verb puts a runtime process inside a container."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in VALUE_FLAGS
        else:
            return arg in ENTER_VERBS
    return False


def make_nondumpable() -> None:
    """PR_SET_DUMPABLE 0: inherited by fork, reset by the container's execve."""
    from pyrunc import syscalls

    syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)


def is_dumpable() -> bool:
    from pyrunc import syscalls

    return bool(syscalls.prctl(syscalls.PR_GET_DUMPABLE))


def real_interpreter() -> str:
    """The interpreter file this process was started from (symlinks of a venv resolved)."""
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


def detached_readonly_mount(path: str) -> int:
    """An O_PATH fd on `path` seen through a read-only bind mount that is attached nowhere.

    open_tree(OPEN_TREE_CLONE) copies the mount of a single file without placing
    it in any mount namespace; mount_setattr then makes the copy read-only. The
    mount lives exactly as long as something refers to it (this fd, then the
    exe of every process exec'ed from it), so it leaves nothing on the host.
    """
    from pyrunc import syscalls as s

    fd = s.open_tree(s.AT_FDCWD, path, s.OPEN_TREE_CLONE | s.OPEN_TREE_CLOEXEC)
    try:
        s.mount_setattr(fd, "", s.AT_EMPTY_PATH,
                        attr_set=s.MOUNT_ATTR_RDONLY | s.MOUNT_ATTR_NOSUID | s.MOUNT_ATTR_NODEV)
    except OSError:
        os.close(fd)
        raise
    return fd


def sealed_copy(path: str) -> int:
    """A memfd holding a copy of `path`, sealed against any write (runc CloneBinary)."""
    fd = os.memfd_create("pyrunc-python", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(src).st_size
            done = 0
            while done < size:
                sent = os.sendfile(fd, src, None, size - done)
                if sent == 0:
                    raise OSError(5, "short copy", path)
                done += sent
        finally:
            os.close(src)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    except OSError:
        os.close(fd)
        raise
    return fd


def readonly_exe(path: str) -> tuple[int, str]:
    """(fd, kind): the interpreter at `path` in a form no process can write.

    The detached read-only mount first (no copy, nothing charged to any memory
    cgroup); a sealed memfd where mounts are refused. Both refused: an error
    naming both causes, so the caller fails instead of running unguarded.
    """
    try:
        return detached_readonly_mount(path), "ro-mount"
    except OSError as err:
        mount_err = err
    try:
        return sealed_copy(path), "sealed-memfd"
    except OSError as err:
        raise MissingFeature(
            "read-only copy of the interpreter",
            f"open_tree/mount_setattr of {path}: {os.strerror(mount_err.errno or 5)}; "
            f"sealed memfd: {os.strerror(err.errno or 5)} -- pyrunc will not enter a container "
            "from a writable interpreter (docs/SECURITY.md 4a)") from None


def boot_code(paths: Sequence[str]) -> str:
    """The -c program of a re-exec (run with -I -S): sys.path spelled out, then the CLI."""
    return (f"import sys; sys.path[:0] = {list(paths)!r}; "
            "from pyrunc.__main__ import main; main()")


def runtime_sys_path() -> list[str]:
    """Where the runtime's code lives: pyrunc's parent dir first, then the absolute
    entries of this process's sys.path (no cwd, no '')."""
    import pyrunc

    root = os.path.dirname(os.path.dirname(os.path.abspath(pyrunc.__file__)))
    paths = [root]
    for entry in sys.path:
        if entry and os.path.isabs(entry) and entry not in paths:
            paths.append(entry)
    return paths


def require_guarded_exe(argv: Sequence[str]) -> None:
    """Return if this process runs from an unwritable interpreter; else re-exec through one.

    Called first thing (pyrunc/__main__.py) when argv's verb puts a runtime process
    into a container, before the CLI is even imported: the re-exec then costs one
    interpreter start and nothing else. From here on init and exec helpers are
    forks of a guarded exe.
    """
    reexeced = os.environ.pop(GUARD_ENV, None)
    if exe_guard() is not None:
        return
    if reexeced:
        raise MissingFeature("read-only interpreter", "the re-exec did not produce an unwritable /proc/self/exe")
    reexec_guarded(argv)


def reexec_guarded(argv: Sequence[str]) -> NoReturn:
    """Exec the CLI again (-I -S) from `readonly_exe()` of the interpreter.

    argv[0] stays the interpreter's path as started (a venv's bin/python), so the
    re-executed interpreter finds its standard library and prefix as before.
    """
    fd, _kind = readonly_exe(real_interpreter())
    env = dict(os.environ)
    env[GUARD_ENV] = "1"
    code = boot_code(runtime_sys_path())
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(fd, [sys.executable, "-I", "-S", "-c", code, *argv], env)
    except OSError as err:
        os.close(fd)
        raise KernelError("execveat", err.errno or 8, real_interpreter(),
                          "re-exec from the read-only interpreter") from None


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
