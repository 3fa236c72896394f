"""OCI hooks: each gets the container state JSON on stdin, its own args and
env (nothing inherited), and a timeout.

What a failure does follows runtime-spec config.md#posix-platform-hooks and
runc: prestart/createRuntime/createContainer/startContainer failures fail the
operation; poststop failures are only warnings; a poststart failure follows
the spec version the config declares (start.py: warn before 1.3, error, stop
and destroy from 1.3 on, which is also what runc 1.1 does).

`subprocess` is imported only when a container has hooks; create.py imports
this module before fork in that case, so init never imports after pivot_root.
"""

from __future__ import annotations

from pyrunc.errors import HookError


def run_hook(kind: str, index: int, hook, state_json: bytes) -> None:
    import subprocess

    args = list(hook.args) or [hook.path]
    # runc (Go's exec.Cmd): no "env" key = the runtime's own environment;
    # an empty list = an empty environment.
    env = None if hook.env is None else dict(e.split("=", 1) for e in hook.env if "=" in e)
    try:
        proc = subprocess.run(args, executable=hook.path, input=state_json, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=hook.timeout if hook.timeout else None, close_fds=True)
    except subprocess.TimeoutExpired:
        raise HookError(f"{kind} hook #{index} {hook.path}: timed out after {hook.timeout}s") from None
    except OSError as err:
        raise HookError(f"{kind} hook #{index} {hook.path}: {err.strerror}") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
        reason = f"exit status {proc.returncode}" if proc.returncode > 0 else f"signal {-proc.returncode}"
        tail = f": {detail[-1]}" if detail else ""
        raise HookError(f"{kind} hook #{index} {hook.path}: {reason}{tail}")


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


def hooks_from_raw(raw: dict | None, kind: str) -> tuple:
    """Rebuild Hook objects from the JSON kept in state.json (delete runs later)."""
    from pyrunc.spec import Hook

    out = []
    for h in (raw or {}).get(kind, []) or []:
        env = h.get("env")
        out.append(Hook(path=h["path"], args=tuple(h.get("args", ())), env=None if env is None else tuple(env),
                        timeout=h.get("timeout")))
    return tuple(out)

