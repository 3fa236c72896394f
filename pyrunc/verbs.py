"""The lifecycle verbs clients call on every container, declared once.

VERBS is the single table of these verbs, their options and arguments. From it
`fastcli` parses argv without importing click (the hot path of containerd,
podman and pybuild), and `cli` builds the click commands that give help and
usage errors. Each handler takes (GlobalOptions, parsed values) and returns
the exit code.
"""

from __future__ import annotations

import os
import sys

from pyrunc.spec_record import MutableRecord, Record


class Opt(Record):
    names: tuple[str, ...]
    dest: str
    kind: str = "flag"          # flag | str | int
    default: object = None
    help: str = ""


class Verb(Record):
    name: str
    handler: object  # (GlobalOptions, dict) -> int
    options: tuple[Opt, ...]
    args: tuple[str, ...]       # positional names; a trailing "?" means optional
    help: str


class GlobalOptions(MutableRecord):
    root: str | None = None  # None: /run/pyrunc, or $XDG_RUNTIME_DIR/pyrunc without root (state_root)
    log: str | None = None
    log_format: str = "text"
    debug: bool = False
    systemd_cgroup: bool = False
    rootless: str = "auto"
    criu: str | None = None


GLOBAL_OPTS = (
    Opt(("--root",), "root", "str", None, "root directory for storage of container state (default /run/pyrunc, "
        "or $XDG_RUNTIME_DIR/pyrunc for a non-root caller)"),
    Opt(("--log",), "log", "str", None, "set the log file to write pyrunc logs to (default is stderr)"),
    Opt(("--log-format",), "log_format", "str", "text", "set the log format ('text' (default), or 'json')"),
    Opt(("--debug",), "debug", "flag", False, "enable debug logging"),
    Opt(("--systemd-cgroup",), "systemd_cgroup", "flag", False,
        "enable systemd cgroup support, expects cgroupsPath to be of form slice:prefix:name"),
    Opt(("--rootless",), "rootless", "str", "auto", "ignore cgroup permission errors (true, false, auto)"),
    Opt(("--criu",), "criu", "str", None, "path to the criu binary (checkpoint/restore is not supported)"),
)


def state_root(g: GlobalOptions) -> str:
    """--root, or runc's default for this caller (made and checked: rootless.state_root)."""
    from pyrunc.rootless import state_root as resolve

    g.root = resolve(g.root)
    return g.root


def _store(g: GlobalOptions):
    from pyrunc.state import StateStore

    return StateStore(state_root(g))


def _bundle_and_id(g: GlobalOptions, v: dict) -> tuple[str, str]:
    """runc semantics, plus `pyrunc run mybundle` typed in the bundle's parent
    folder when the current folder has no config.json: ID = folder name."""
    cid = v["container_id"]
    bundle = v.get("bundle") or ""
    if not bundle:
        if not os.path.exists("config.json") and os.path.isfile(os.path.join(cid, "config.json")):
            bundle = cid
            cid = os.path.basename(os.path.abspath(cid))
        else:
            bundle = "."
    return bundle, cid


def _create_opts(v: dict, bundle: str):
    from pyrunc.create import CreateOptions

    return CreateOptions(bundle=bundle, pid_file=v.get("pid_file"), console_socket=v.get("console_socket"),
                         no_pivot=bool(v.get("no_pivot")), no_new_keyring=bool(v.get("no_new_keyring")),
                         preserve_fds=int(v.get("preserve_fds") or 0))


def _rootless(g: GlobalOptions) -> bool:
    from pyrunc.rootless import rootless_cgroups

    return rootless_cgroups(g.rootless, g.systemd_cgroup)


def do_create(g: GlobalOptions, v: dict) -> int:
    from pyrunc.create import create

    bundle, cid = _bundle_and_id(g, v)
    create(_store(g), cid, _create_opts(v, bundle), systemd_cgroup=g.systemd_cgroup, rootless=_rootless(g))
    return 0


def do_run(g: GlobalOptions, v: dict) -> int:
    from pyrunc.run import run

    bundle, cid = _bundle_and_id(g, v)
    return run(_store(g), cid, _create_opts(v, bundle), detach=bool(v.get("detach")), keep=bool(v.get("keep")),
               systemd_cgroup=g.systemd_cgroup, rootless=_rootless(g))


def do_start(g: GlobalOptions, v: dict) -> int:
    from pyrunc.start import start

    start(_store(g), v["container_id"])
    return 0


def do_state(g: GlobalOptions, v: dict) -> int:
    from pyrunc.query import state_json

    sys.stdout.write(state_json(_store(g), v["container_id"]))
    return 0


def do_list(g: GlobalOptions, v: dict) -> int:
    from pyrunc.query import list_output

    fmt = v.get("format") or "table"
    if fmt not in ("table", "json"):
        from pyrunc.errors import PyruncError

        raise PyruncError(f"invalid format option: {fmt}")
    sys.stdout.write(list_output(_store(g), fmt, bool(v.get("quiet"))))
    return 0


def do_kill(g: GlobalOptions, v: dict) -> int:
    from pyrunc.kill import kill, parse_signal

    kill(_store(g), v["container_id"], parse_signal(v.get("signal") or "SIGTERM"), bool(v.get("all")))
    return 0


def do_delete(g: GlobalOptions, v: dict) -> int:
    from pyrunc.delete import delete

    delete(_store(g), v["container_id"], bool(v.get("force")))
    return 0


def do_exec(g: GlobalOptions, v: dict) -> int:
    from pyrunc.exec import ExecOptions, exec_process

    opts = ExecOptions(args=tuple(v.get("command") or ()), process_json=v.get("process"),
                       env=tuple(v.get("env") or ()), cwd=v.get("cwd"), user=v.get("user"),
                       additional_gids=tuple(v.get("additional_gids") or ()), caps=tuple(v.get("cap") or ()),
                       no_new_privs=bool(v.get("no_new_privs")), tty=bool(v.get("tty")),
                       detach=bool(v.get("detach")), pid_file=v.get("pid_file"),
                       preserve_fds=int(v.get("preserve_fds") or 0), console_socket=v.get("console_socket"),
                       apparmor=v.get("apparmor"), process_label=v.get("process_label"),
                       ignore_paused=bool(v.get("ignore_paused")), cgroup=tuple(v.get("cgroup") or ()))
    return exec_process(_store(g), v["container_id"], opts)


_CREATE_OPTS = (
    Opt(("--bundle", "-b"), "bundle", "str", None,
        "path to the root of the bundle directory, defaults to the current directory"),
    Opt(("--console-socket",), "console_socket", "str", None,
        "path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    Opt(("--pid-file",), "pid_file", "str", None, "specify the file to write the process id to"),
    Opt(("--no-pivot",), "no_pivot", "flag", False,
        "do not use pivot root to jail process inside rootfs. This should be used whenever the rootfs is on top of a ramdisk"),
    Opt(("--no-new-keyring",), "no_new_keyring", "flag", False,
        "do not create a new session keyring for the container"),
    Opt(("--preserve-fds",), "preserve_fds", "int", 0,
        "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
)

VERBS: dict[str, Verb] = {v.name: v for v in (
    Verb("create", do_create, _CREATE_OPTS, ("container_id",), "create a container"),
    Verb("run", do_run, _CREATE_OPTS + (
        Opt(("--detach", "-d"), "detach", "flag", False, "detach from the container's process"),
        Opt(("--keep",), "keep", "flag", False, "do not delete the container after it exits"),
    ), ("container_id",), "create and run a container"),
    Verb("start", do_start, (), ("container_id",), "executes the user defined process in a created container"),
    Verb("state", do_state, (), ("container_id",), "output the state of a container"),
    Verb("list", do_list, (
        Opt(("--format", "-f"), "format", "str", "table", "select one of: table or json"),
        Opt(("--quiet", "-q"), "quiet", "flag", False, "display only container IDs"),
    ), (), "lists containers started by pyrunc with the given root"),
    Verb("kill", do_kill, (
        Opt(("--all", "-a"), "all", "flag", False, "send the specified signal to all processes inside the container"),
    ), ("container_id", "signal?"), "kill sends the specified signal (default: SIGTERM) to the container's init process"),
    Verb("exec", do_exec, (
        Opt(("--console-socket",), "console_socket", "str", None, "path to an AF_UNIX socket for the pty master"),
        Opt(("--cwd",), "cwd", "str", None, "current working directory in the container"),
        Opt(("--env", "-e"), "env", "list", None, "set environment variables"),
        Opt(("--tty", "-t"), "tty", "flag", False, "allocate a pseudo-TTY"),
        Opt(("--user", "-u"), "user", "str", None, "UID (format: <uid>[:<gid>])"),
        Opt(("--additional-gids", "-g"), "additional_gids", "list", None, "additional gids"),
        Opt(("--process", "-p"), "process", "str", None, "path to the process.json"),
        Opt(("--detach", "-d"), "detach", "flag", False, "detach from the container's process"),
        Opt(("--pid-file",), "pid_file", "str", None, "specify the file to write the process id to"),
        Opt(("--process-label",), "process_label", "str", None, "set the asm process label for the process"),
        Opt(("--apparmor",), "apparmor", "str", None, "set the apparmor profile for the process"),
        Opt(("--no-new-privs",), "no_new_privs", "flag", False, "set the no new privileges value for the process"),
        Opt(("--cap", "-c"), "cap", "list", None, "add a capability to the bounding set for the process"),
        Opt(("--preserve-fds",), "preserve_fds", "int", 0,
            "Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
        Opt(("--cgroup",), "cgroup", "list", None,
            "run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>."),
        Opt(("--ignore-paused",), "ignore_paused", "flag", False, "allow exec in a paused container"),
    ), ("container_id", "command*"), "execute new process inside the container"),
    Verb("delete", do_delete, (
        Opt(("--force", "-f"), "force", "flag", False, "Forcibly deletes the container if it is still running (uses SIGKILL)"),
    ), ("container_id",), "delete any resources held by the container often used with detached container"),
)}
