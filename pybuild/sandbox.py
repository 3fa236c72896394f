"""The build's mount namespace and its watcher: what a build starts ends with it (issue 11 finding 9).

A SIGKILLed `pybuild build` used to leave its RUN container running (and its runtime, its
cgroups, its state) until the next build came to clean up: killing the build killed only the
Python process, and a runtime's `run` outlives its caller.

`BuildSandbox.enter()` (in the build process P, before any thread starts):
- unshare(CLONE_NEWNS): every overlay, bind and runtime mount of the build lives in a private mount
  namespace (host mounts still propagate in; ours never propagate out);
- fork the *watcher* W. It leaves P's session (a `kill -9 -PGID` of the build's process group does
  not take it), ignores the terminal's signals, drops every fd it inherited, and blocks on the read
  end of a pipe whose write end only P holds. P writes "done" when the build has ended, however it
  ended (normal exit, error, SIGTERM unwound): W exits quietly. EOF without "done" means P died
  (SIGKILL, a crash): W does at once what P's unwinding would have done: `<runtime> delete -f` of
  each container in P's runtime state roots (the runtime kills the container and removes its
  cgroups and state), then unmounts and removes P's build temp dir, holding its flock so that a
  build starting meanwhile (clean_stale) leaves the dir to it. Then W exits; the mount namespace
  goes with the last process in it.
- Each runtime P starts gets PR_SET_PDEATHSIG=SIGKILL (runtime.run_container): it does not
  outlive P either, even before it has written the state W reads (a runtime that dies mid-create
  kills its own init, as pyrunc and runc do).
Why not a pid namespace for the build: a process whose children go to another pid namespace
(unshare(CLONE_NEWPID)) cannot start threads any more, and layer compression uses threads.

`Watcher` is the mechanism alone (fork, pipe, "done" or EOF, then a clean-up function): the monitor
of `pybuild run` has one too (commands.run.after_monitor_died), so a SIGKILLed `pybuild run` takes its
container, its network and its runtime state with it (issue 18).
"""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable

from pybuild.errors import PybuildError

_DONE = b"done"


class BuildSandbox:
    def __init__(self, store_root: str) -> None:
        self.tmp_parent = os.path.join(os.path.abspath(store_root), "tmp")
        self._watcher: Watcher | None = None

    def enter(self) -> None:
        """Private mount namespace + the watcher. Must run before any thread starts."""
        from pyrunc import syscalls

        try:
            syscalls.unshare(syscalls.CLONE_NEWNS)
            syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_SLAVE)
        except OSError as err:
            raise PybuildError(f"unshare mount namespace: {err.strerror} (pybuild build needs root)") from None
        owner, tmp_parent = os.getpid(), self.tmp_parent

        def after_build_died() -> None:
            from pybuild.buildtemp import clean_build_dirs

            clean_build_dirs(tmp_parent, owner)

        self._watcher = Watcher(after_build_died)

    def finish(self) -> None:
        if self._watcher is not None:
            self._watcher.finish()
            self._watcher = None


class Watcher:
    """A forked process that runs `on_death` if its owner (the process that made it) dies without
    calling `finish`. Make it before any thread starts."""

    def __init__(self, on_death: Callable[[], None], keep: tuple[int, ...] = ()) -> None:
        """`keep`: fds of the owner's that the watcher holds too (every other one it closes), such
        as a lock that must stay taken until the watcher is done as well."""
        read, write = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:
            os.close(write)
            _watch(read, on_death, keep)  # never returns
        os.close(read)
        self.watcher, self._write = pid, write

    def finish(self) -> None:
        """The owner has ended and cleaned up after itself: let the watcher go, and wait for it."""
        if self._write >= 0:
            try:
                os.write(self._write, _DONE)
            finally:
                os.close(self._write)
                self._write = -1
        if self.watcher:
            try:
                os.waitpid(self.watcher, 0)
            except ChildProcessError:
                pass
            self.watcher = 0


def _watch(read: int, on_death: Callable[[], None], keep: tuple[int, ...]) -> None:
    """The watcher's life; exits the process, never returns."""
    code = 1
    try:
        os.setsid()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGTSTP,
                    signal.SIGTTIN, signal.SIGTTOU, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_IGN)
        _close_fds_except(read, 2, *keep)
        null = os.open(os.devnull, os.O_RDWR)  # the owner's stdin/stdout (a caller's pipe) are not held
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.close(null)
        data = b""
        while True:
            select.select([read], [], [])
            chunk = os.read(read, 16)
            if not chunk:
                break
            data += chunk
        if data != _DONE:
            on_death()
        code = 0
    except BaseException as err:  # noqa: BLE001 -- the watcher must always exit, and say why
        try:
            os.write(2, f"pybuild: watcher: {err}\n".encode(errors="replace"))
        except OSError:
            pass
    finally:
        os._exit(code)


def _close_fds_except(*keep: int) -> None:
    """Drop every fd inherited from the build (locks, the store, the pipe's write end)."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass
