"""OCI hooks: each gets the container state JSON on stdin, its own args and
env (nothing inherited), and a timeout.

What a failure does follows runtime-spec config.md#posix-platform-hooks and
runc: prestart/createRuntime/createContainer/startContainer failures fail the
operation; poststop failures are only warnings; a poststart failure follows
the spec version the config declares (start.py: warn before 1.3, error, stop
and destroy from 1.3 on, which is also what runc 1.1 does).

Hooks run in the parent (prestart, createRuntime, poststart, poststop) and
in init (createContainer before pivot_root, startContainer after it, where
nothing may be imported): so the runner needs nothing beyond `os`, `select`
and `_signal`, all loaded before fork. `subprocess` would cost ≈ 20 ms of
import on every run only to be used by the few containers that have hooks.
"""

from __future__ import annotations

import _signal
import errno
import os
import select
import time

from pyrunc.errors import HookError

_CHUNK = 65536


def run_hook(kind: str, index: int, hook, state_json: bytes) -> None:
    args = list(hook.args) or [hook.path]
    # runc (Go's exec.Cmd): no "env" key = the runtime's own environment;
    # an empty list = an empty environment.
    env = os.environ if hook.env is None else dict(e.split("=", 1) for e in hook.env if "=" in e)
    where = f"{kind} hook #{index} {hook.path}"
    try:
        status, out, err = _run(hook.path, args, env, state_json, hook.timeout or None)
    except TimeoutError:
        raise HookError(f"{where}: timed out after {hook.timeout}s") from None
    except OSError as exc:
        raise HookError(f"{where}: {exc.strerror}") from None
    if status != 0:
        detail = (err or out).decode(errors="replace").strip().splitlines()
        reason = f"exit status {status}" if status > 0 else f"signal {-status}"
        tail = f": {detail[-1]}" if detail else ""
        raise HookError(f"{where}: {reason}{tail}")


def _run(path: str, args: list[str], env, stdin: bytes, timeout: float | None) -> tuple[int, bytes, bytes]:
    """fork + execve with the state on stdin and stdout/stderr collected, as
    subprocess.run(close_fds=True, timeout=…) does: (exit code or -signal,
    stdout, stderr). An execve failure comes back as OSError through a
    close-on-exec pipe; past the deadline the hook is SIGKILLed and reaped,
    then TimeoutError."""
    pipes = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, exec error (all O_CLOEXEC)
    (in_r, in_w), (out_r, out_w), (err_r, err_w), (x_r, x_w) = pipes
    try:
        pid = os.fork()
    except OSError:
        for pair in pipes:
            os.close(pair[0])
            os.close(pair[1])
        raise
    if pid == 0:  # the child: only async-signal-safe work until execve
        try:
            for fd, to in ((in_r, 0), (out_w, 1), (err_w, 2)):
                os.dup2(fd, to)
            os.closerange(3, x_w)
            os.closerange(x_w + 1, 1 << 20)
            for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):  # ignored by the interpreter; not by a hook
                _signal.signal(sig, _signal.SIG_DFL)
            os.execve(path, args, env)
        except OSError as exc:
            os.write(x_w, str(exc.errno or errno.EIO).encode())
        finally:
            os._exit(127)
    for fd in (in_r, out_w, err_w, x_w):
        os.close(fd)
    try:
        out, err = _exchange(pid, in_w, out_r, err_r, stdin, timeout)
        failed = os.read(x_r, 16)
    finally:
        for fd in (out_r, err_r, x_r):
            os.close(fd)
        _, wstatus = os.waitpid(pid, 0)  # reaped on every path (SIGKILLed past the deadline)
    if failed:
        code = int(failed)
        raise OSError(code, os.strerror(code), path)
    return os.waitstatus_to_exitcode(wstatus), out, err


def _exchange(pid: int, in_w: int, out_r: int, err_r: int, data: bytes,
              timeout: float | None) -> tuple[bytes, bytes]:
    """Write `data` to the hook's stdin and read its stdout and stderr until
    both end and it exits (a pidfd in the same poll), or the deadline passes.
    Closes `in_w` on every path."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        os.close(in_w)
        os.kill(pid, _signal.SIGKILL)
        raise
    deadline = None if timeout is None else time.monotonic() + timeout
    bufs = {out_r: bytearray(), err_r: bytearray()}
    poller = select.poll()
    for fd in bufs:
        poller.register(fd, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    os.set_blocking(in_w, False)
    poller.register(in_w, select.POLLOUT)
    sent, open_fds, exited = 0, set(bufs) | {in_w}, False
    try:
        while open_fds or not exited:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if left == 0.0:
                os.kill(pid, _signal.SIGKILL)
                raise TimeoutError
            for fd, _ev in poller.poll(None if left is None else left * 1000):
                if fd == pidfd:
                    exited = True
                    poller.unregister(pidfd)
                elif fd == in_w:
                    try:
                        sent += os.write(in_w, data[sent:sent + _CHUNK]) if data else 0
                    except BrokenPipeError:  # a hook need not read its stdin
                        sent = len(data)
                    if sent >= len(data):
                        poller.unregister(in_w)
                        open_fds.discard(in_w)
                        os.close(in_w)
                else:
                    chunk = os.read(fd, _CHUNK)
                    if chunk:
                        bufs[fd] += chunk
                    else:
                        poller.unregister(fd)
                        open_fds.discard(fd)
    finally:
        os.close(pidfd)
        if in_w in open_fds:
            os.close(in_w)
    return bytes(bufs[out_r]), bytes(bufs[err_r])


def run_all(kind: str, hooks: tuple, state_json: bytes) -> None:
    for i, hook in enumerate(hooks):
        run_hook(kind, i, hook, state_json)


def run_all_warn(kind: str, hooks: tuple, state_json: bytes) -> None:
    """For poststop: every hook runs; failures are reported, not raised."""
    from pyrunc import logs

    for i, hook in enumerate(hooks):
        try:
            run_hook(kind, i, hook, state_json)
        except HookError as err:
            logs.warning(str(err))
