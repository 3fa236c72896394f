"""`pybuild exec [-i] [-t] [-d] [-u USER] [-w DIR] [-e K=V]… CONTAINER CMD…`, through the runtime's exec.

As podman does with conmon, pybuild writes the process (the container's own from its
config.json: env, user, cwd, capabilities, rlimits; then the exec's args, `-e` overrides, `-u`
resolved through the container's /etc/passwd and /etc/group, `-w`, `terminal`) to a
process.json and runs the container's runtime: `<runtime> exec --process F --pid-file P ID`.

- `-t`: the runtime's foreground terminal mode on the caller's terminal (it allocates the pty,
  puts the caller's terminal in raw mode, copies both ways and follows the window size); pybuild
  only passes its stdio and forwards signals. `-i` passes stdin, else /dev/null.
- `-d`: a forked monitor (its own session) runs the exec with stdio on /dev/null (on a pty it
  drains with `-t`) and pybuild returns once the process started, or with the reason it did not.
- Exit status: the process's (128+N for a signal). When it never started (no pid file), one
  line from the runtime's JSON log and podman's codes: 127 command not found, 126 not
  executable, 125 anything else. The runtime's own stderr is held back until the process
  started, so a failure reads as that one line.
- `-u NAME`: /etc/passwd and /etc/group are opened with openat2(RESOLVE_IN_ROOT) from an fd of
  the container's root (/proc/PID/root): a link the container planted there resolves inside
  the container, never to a host file.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

import click

from pybuild.containers import Container, ContainerError, runtime_root
from pybuild.commands.run import merge_env, parse_env

_FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


class ExecError(ContainerError):
    def __init__(self, message: str, exit_code: int = 125) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def check_workdir(workdir: str | None) -> None:
    if workdir is not None and not workdir.startswith("/"):
        raise ExecError(f"-w {workdir}: the working directory must be an absolute path")


def plan_process(base: dict[str, Any], args: list[str], env: list[str], tty: bool, workdir: str | None,
                 ids: Any = None) -> dict[str, Any]:
    """The exec's process.json from the container's process (pure)."""
    proc = json.loads(json.dumps(base))  # a deep copy of plain JSON
    proc["args"] = list(args)
    proc["terminal"] = tty
    proc.pop("consoleSize", None)
    full_env = list(merge_env(list(proc.get("env") or []), env))
    if tty and not any(e.startswith("TERM=") for e in full_env):
        full_env.append("TERM=xterm")  # docker's and podman's default for -t
    proc["env"] = full_env
    if workdir:
        proc["cwd"] = workdir
    if ids is not None:
        user: dict[str, Any] = {"uid": ids.uid, "gid": ids.gid}
        if ids.additional_gids:
            user["additionalGids"] = list(ids.additional_gids)
        proc["user"] = user
    return proc


def _base_process(c: Container) -> dict[str, Any]:
    try:
        fd = os.open(os.path.join(c.bundle, "config.json"), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            return dict(json.load(fh)["process"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ExecError(f"exec {c.name}: cannot read the container's config.json: {err}") from None


def _resolve_user(pid: int, spec: str) -> Any:
    """uid/gid/groups for `-u` from the running container's own databases."""
    from pybuild.steps.users import UserError, resolve_user

    try:
        proc_fd = os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        raise ExecError("exec: the container's process is gone") from None
    try:
        root = os.open("root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc_fd)
    except OSError as err:
        raise ExecError(f"exec: the container's root: {err.strerror}") from None
    finally:
        os.close(proc_fd)
    try:
        return resolve_user(root, spec)
    except UserError as err:
        raise ExecError(f"-u {spec}: {err}") from None
    finally:
        os.close(root)


def _private_file(c: Container, prefix: str, data: bytes = b"") -> str:
    from pyrunc.fsutil import create_temp

    dir_fd = os.open(c.home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        name, fd = create_temp(dir_fd, prefix, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)
    return os.path.join(c.home, name)


def failure_status(message: str) -> int:
    """podman's exit codes for an exec that never started, from the runtime's message."""
    low = message.lower()
    if "permission denied" in low:
        return 126
    if "not found" in low or "no such file or directory" in low:
        return 127
    return 125


class _Session:
    """One runtime exec: files, the child, the held-back stderr."""

    def __init__(self, c: Container, process: dict[str, Any]) -> None:
        self.c = c
        self.process_file = _private_file(c, "exec-process.json", json.dumps(process).encode())
        self.pid_file = _private_file(c, "exec.pid")
        os.unlink(self.pid_file)  # the runtime writes it once the process runs
        self.log = _private_file(c, "exec.log")
        self.held: list[bytes] = []
        self.passing = False
        self.lock = threading.Lock()

    def argv(self) -> list[str]:
        return [*self.c.runtime, "--root", runtime_root(), "--log", self.log, "--log-format", "json",
                "exec", "--process", self.process_file, "--pid-file", self.pid_file, self.c.id]

    def started(self) -> bool:
        return os.path.exists(self.pid_file)

    def pump(self, pipe: Any, out: Any) -> None:
        """Hold the runtime's stderr until the process runs, then pass it through."""
        while chunk := os.read(pipe.fileno(), 65536):
            with self.lock:
                if not self.passing and self.started():
                    self.passing = True
                    for held in self.held:
                        out.write(held)
                    self.held.clear()
                if self.passing:
                    out.write(chunk)
                    out.flush()
                else:
                    self.held.append(chunk)

    def finish(self, code: int, out: Any) -> int:
        """The process's status once it ran; else the runtime's reason as one line."""
        from pybuild.containers import runtime_error

        if self.started():
            for held in self.held:
                out.write(held)
            out.flush()
            return 128 - code if code < 0 else code  # a runtime killed by signal N: 128+N
        text = runtime_error(self.log)
        if not text:
            lines = b"".join(self.held).decode(errors="replace").strip().splitlines()
            text = lines[-1] if lines else f"{self.c.runtime[0]} exited with status {code}"
        raise ExecError(f"exec {self.c.name}: {text}", failure_status(text))

    def cleanup(self) -> None:
        for path in (self.process_file, self.pid_file, self.log):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def run_foreground(session: _Session, stdin: int, tty: bool) -> int:
    proc = subprocess.Popen(session.argv(), stdin=stdin, stdout=None, stderr=subprocess.PIPE, close_fds=True)
    out = sys.stderr.buffer
    pump = threading.Thread(target=session.pump, args=(proc.stderr, out), daemon=True)
    pump.start()
    old = {sig: signal.signal(sig, lambda n, _f: proc.send_signal(n)) for sig in _FORWARDED}
    if not tty:  # with a terminal, the runtime gets SIGWINCH from the terminal itself
        old[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, lambda n, _f: proc.send_signal(n))
    try:
        code = proc.wait()
        pump.join()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        if proc.stderr is not None:
            proc.stderr.close()
    return session.finish(code, out)


def run_detached(session: _Session, tty: bool) -> None:
    """Fork a monitor that runs the exec to its end; return once it started (or raise why not)."""
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        status = 1
        try:
            os.setsid()  # its own session, and none of the caller's terminal or pipes
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            status = _monitor(session, tty, w)
        finally:
            session.cleanup()
            os._exit(status)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 4096):
        chunks.append(chunk)
    os.close(r)
    answer = b"".join(chunks).decode(errors="replace")
    if answer != "ok":
        code, _, message = answer.partition(" ")
        if not code.isdigit():
            raise ExecError(f"exec {session.c.name}: the exec monitor died before the process started")
        raise ExecError(message, int(code))


def _monitor(session: _Session, tty: bool, report: int) -> int:
    """In the detached monitor: run the exec, report "ok" or "STATUS message" on `report`."""
    import time

    null = os.open(os.devnull, os.O_RDWR)
    if tty:  # the runtime's terminal mode needs a terminal to copy to: a pty drained here
        master, slave = os.openpty()
        proc = subprocess.Popen(session.argv(), stdin=slave, stdout=slave, stderr=null, close_fds=True)
        os.close(slave)
        threading.Thread(target=_drain, args=(master,), daemon=True).start()
    else:
        proc = subprocess.Popen(session.argv(), stdin=null, stdout=null, stderr=null, close_fds=True)
    while proc.poll() is None and not session.started():
        time.sleep(0.005)
    try:
        if not session.started():
            session.finish(proc.wait(), sys.stderr.buffer)
        os.write(report, b"ok")
    except ExecError as err:
        os.write(report, f"{err.exit_code} {err}".encode()[:4000])
    finally:
        os.close(report)
    return proc.wait() & 0xFF


def _drain(fd: int) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 65536):
            pass


@click.command("exec", context_settings={"allow_interspersed_args": False})
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin attached.")
@click.option("-t", "--tty", is_flag=True, help="Run on a terminal (the runtime's, on yours).")
@click.option("-d", "--detach", is_flag=True, help="Run in the background.")
@click.option("-u", "--user", default=None, help="USER[:GROUP] (names from the container's /etc/passwd).")
@click.option("-w", "--workdir", default=None, help="Working directory inside the container.")
@click.option("-e", "--env", multiple=True, metavar="KEY[=VALUE]", help="Set an environment variable.")
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_(ctx: click.Context, interactive: bool, tty: bool, detach: bool, user: str | None,
          workdir: str | None, env: tuple[str, ...], container: str, command: tuple[str, ...]) -> None:
    """Run a command in a running container."""
    from pybuild.commands.lifecycle import running_container

    check_workdir(workdir)
    extra_env = parse_env(env)  # -e K=V as given, -e K from pybuild's own environment (docker's rule)
    if detach and interactive:
        raise ExecError("-d and -i cannot be used together")
    c, state = running_container(ctx.obj["root"], container, "exec")
    from pybuild.rootless import join

    join(int(state["pid"]))  # rootless: the namespace `run` made (the verb table does not make one for exec)
    ids = _resolve_user(int(state["pid"]), user) if user else None
    process = plan_process(_base_process(c), list(command), extra_env, tty, workdir, ids)
    session = _Session(c, process)
    if detach:
        run_detached(session, tty)  # the monitor cleans up
        return
    try:
        stdin = sys.stdin.fileno() if interactive else os.open(os.devnull, os.O_RDONLY)
        code = run_foreground(session, stdin, tty)
    finally:
        session.cleanup()
    sys.stdout.flush()
    ctx.exit(code)
