"""Every pyrunc verb, declared once: VERBS.

One table gives each verb its options, arguments, help text and the function
that runs it ("module:function", imported only when that verb runs, so
`pyrunc state` never loads the seccomp compiler). From the table `fastcli`
parses argv without importing click for the verbs marked `fast` (the hot path
of containerd, podman and pybuild), and `cli` builds the click commands that
parse the rest and give every help text and usage error. Whichever parsed it,
the verb runs through `fastcli.main`, the one place errors are caught.

A verb function takes (GlobalOptions, values by option/argument name) and
returns the exit code; it never imports click. To add a runc verb: write that
function in the verb's module, add a Verb row below.
"""

from __future__ import annotations

import os

from pyrunc.record import MutableRecord, Record


class Opt(Record):
    names: tuple[str, ...]
    dest: str
    kind: str = "flag"          # flag | str | int | list
    default: object = None
    help: str = ""
    choices: tuple[str, ...] | None = None
    hidden: bool = False


class Verb(Record):
    name: str
    function: str               # "module:function", (GlobalOptions, dict) -> int
    options: tuple[Opt, ...]
    args: tuple[str, ...]       # positional names; "?" optional, "*" the rest
    help: str
    fast: bool = False          # parsed by fastcli, without click
    short_help: str | None = None
    subverbs: tuple[Verb, ...] = ()  # `pyrunc seccomp compile ...`
    passthrough: bool = False   # options after the first argument belong to it (ps ARGS)
    metavars: tuple[str, ...] = ()   # how help names the arguments, when not by their names

    def call(self, g: GlobalOptions, values: dict) -> int:
        """Import the verb's module and run it (through __import__: importlib would bring
        `warnings` along, ~0.25 ms on every call)."""
        module, _, attr = self.function.partition(":")
        return getattr(__import__(module, fromlist=[attr]), attr)(g, values) or 0


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


def store(g: GlobalOptions):
    """The state store under the resolved --root."""
    from pyrunc.state import StateStore

    return StateStore(state_root(g))


def rootless_cgroups(g: GlobalOptions) -> bool:
    """--rootless resolved for this caller (rootless.rootless_cgroups)."""
    from pyrunc.rootless import rootless_cgroups as resolve

    return resolve(g.rootless, g.systemd_cgroup)


def bundle_and_id(v: dict) -> tuple[str, str]:
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

_SECCOMP_ARCHES = ("x86_64", "x86", "x32", "aarch64", "arm", "riscv64", "s390x", "ppc64le", "ppc64", "s390")

_SPEC_HELP = """Create a new specification file named "config.json" for the bundle.

The spec generated is just a starter file, the same one `runc spec` writes:
its args call "sh", so edit it for the container you want to run. With
--rootless the config maps the current user to root in a user namespace and
does without the network namespace and cgroup device rules.
"""

_FEATURES_HELP = """Show the enabled features.

The result is parsable as a JSON. See the OCI runtime spec (features.md)
for the type definition. The output is experimental and subject to change.
"""

_EXPLAIN_HELP = """Show, without creating anything, what pyrunc would do on this host.

In the order create carries it out: namespaces made or joined, id maps, the
cgroup and every file written, every mount with its target inside the rootfs,
devices, masked and read-only paths, sysctls, rlimits, the capability sets the
program gets, no_new_privs, the seccomp filter, hooks, argv/env/cwd/user, and
what this host cannot honour. Each line names its config field.
"""

VERBS: dict[str, Verb] = {v.name: v for v in (
    # ------------------------------------------------ lifecycle (fast: clients call them per container)
    Verb("create", "pyrunc.create:create_verb", _CREATE_OPTS, ("container_id",), "create a container", fast=True),
    Verb("run", "pyrunc.run:run_verb", _CREATE_OPTS + (
        Opt(("--detach", "-d"), "detach", "flag", False, "detach from the container's process"),
        Opt(("--keep",), "keep", "flag", False, "do not delete the container after it exits"),
    ), ("container_id",), "create and run a container", fast=True),
    Verb("start", "pyrunc.start:start_verb", (), ("container_id",),
         "executes the user defined process in a created container", fast=True),
    Verb("state", "pyrunc.query:state_verb", (), ("container_id",), "output the state of a container", fast=True),
    Verb("list", "pyrunc.query:list_verb", (
        Opt(("--format", "-f"), "format", "str", "table", "select one of: table or json"),
        Opt(("--quiet", "-q"), "quiet", "flag", False, "display only container IDs"),
    ), (), "lists containers started by pyrunc with the given root", fast=True),
    Verb("kill", "pyrunc.kill:kill_verb", (
        Opt(("--all", "-a"), "all", "flag", False, "send the specified signal to all processes inside the container"),
    ), ("container_id", "signal?"),
        "kill sends the specified signal (default: SIGTERM) to the container's init process", fast=True),
    Verb("exec", "pyrunc.exec:exec_verb", (
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
    ), ("container_id", "command*"), "execute new process inside the container", fast=True),
    Verb("delete", "pyrunc.delete:delete_verb", (
        Opt(("--force", "-f"), "force", "flag", False, "Forcibly deletes the container if it is still running (uses SIGKILL)"),
    ), ("container_id",), "delete any resources held by the container often used with detached container", fast=True),
    # ------------------------------------------------ the others (parsed by click)
    Verb("pause", "pyrunc.pause:pause_verb", (), ("container_id",),
         "Suspend all processes inside the container (cgroup freezer).", metavars=("ID",)),
    Verb("resume", "pyrunc.pause:resume_verb", (), ("container_id",),
         "Resume all processes that were suspended by pause.", metavars=("ID",)),
    Verb("ps", "pyrunc.ps:ps_verb", (
        Opt(("-f", "--format"), "fmt", "str", "table", "select one of: table or json", choices=("table", "json")),
    ), ("container_id", "ps_args*"), "Display the processes running inside a container.",
        passthrough=True, metavars=("ID",)),
    Verb("events", "pyrunc.events:events_verb", (
        Opt(("--interval",), "interval", "str", "5s", "set the stats collection interval (default: 5s)"),
        Opt(("--stats",), "stats_only", "flag", False, "display the container's stats then exit"),
    ), ("container_id",), "Display container events such as OOM notifications and resource usage statistics.",
        metavars=("ID",)),
    Verb("update", "pyrunc.update:update_verb", (
        Opt(("-r", "--resources"), "resources_path", "str", None,
            "path to the file containing the resources to update or '-' to read from the standard input"),
        Opt(("--blkio-weight",), "blkio_weight", "int", None, "per cgroup weight, range is from 10 to 1000"),
        Opt(("--cpu-period",), "cpu_period", "int", None, "CPU CFS period to be used for hardcapping (in usecs)"),
        Opt(("--cpu-quota",), "cpu_quota", "int", None, "CPU CFS hardcap limit (in usecs) per period"),
        Opt(("--cpu-share", "--cpu-shares"), "cpu_share", "int", None, "CPU shares (relative weight)"),
        Opt(("--cpu-rt-period",), "cpu_rt_period", "int", None, "CPU realtime period (in usecs)"),
        Opt(("--cpu-rt-runtime",), "cpu_rt_runtime", "int", None, "CPU realtime hardcap limit (in usecs)"),
        Opt(("--cpuset-cpus",), "cpuset_cpus", "str", None, "CPU(s) to use"),
        Opt(("--cpuset-mems",), "cpuset_mems", "str", None, "Memory node(s) to use"),
        Opt(("--memory",), "memory", "str", None, "Memory limit (in bytes, or with a k/m/g suffix)"),
        Opt(("--memory-reservation",), "memory_reservation", "str", None, "Memory reservation or soft_limit"),
        Opt(("--memory-swap",), "memory_swap", "str", None,
            "Total memory usage (memory + swap); '-1' for unlimited swap"),
        Opt(("--kernel-memory",), "kernel_memory", "str", None, hidden=True),
        Opt(("--kernel-memory-tcp",), "kernel_memory_tcp", "str", None, hidden=True),
        Opt(("--pids-limit",), "pids_limit", "int", None, "Maximum number of pids allowed in the container"),
        Opt(("--l3-cache-schema",), "l3_cache_schema", "str", None, "Intel RDT/CAT L3 cache schema (not supported)"),
        Opt(("--mem-bw-schema",), "mem_bw_schema", "str", None,
            "Intel RDT/MBA memory bandwidth schema (not supported)"),
    ), ("container_id",), "Update container resource constraints.", metavars=("ID",)),
    Verb("spec", "pyrunc.spec_verb:spec_verb", (
        Opt(("--bundle", "-b"), "bundle", "str", None, "path to the root of the bundle directory"),
        Opt(("--rootless",), "rootless", "flag", False, "generate a configuration for a rootless container"),
    ), (), _SPEC_HELP, short_help="create a new specification file"),
    Verb("features", "pyrunc.features:features_verb", (), (), _FEATURES_HELP,
         short_help="show the enabled features"),
    Verb("explain", "pyrunc.explain:explain_verb", (
        Opt(("--bundle", "-b"), "bundle", "str", None, "the bundle to explain (default: the current directory)"),
        Opt(("--config",), "config", "str", None, "a config.json file to explain (its directory is the bundle)"),
        Opt(("--format", "-f"), "format", "str", "text", "text (default) or json (docs/EXPLAIN.md)",
            choices=("text", "json")),
        Opt(("--diff",), "diff", "flag", False, "explain two bundles or config files A B: only what differs"),
        Opt(("--container",), "container", "str", None,
            "compare a running container's plan with what the kernel shows now (drift)"),
    ), ("targets*",), _EXPLAIN_HELP, short_help="show what pyrunc would do with a config, before it runs",
        metavars=("[BUNDLE|A B]",)),
    Verb("seccomp", "", (), (), "Compile, check and disassemble seccomp profiles (pyrunc's own compiler).", subverbs=(
        Verb("compile", "pyrunc.seccomp.tool:compile_verb", (
            Opt(("--arch",), "arch", "str", None, "Target architecture (default: this machine).",
                choices=_SECCOMP_ARCHES),
            Opt(("--caps",), "caps", "str", None,
                "Bounding capabilities for Docker profiles, e.g. CAP_SYS_ADMIN,CAP_KILL."),
            Opt(("-o", "--output"), "output", "str", None, "Output file (default: stdout)."),
        ), ("profile",), "Write the raw filter: struct sock_filter[] (8 bytes each, native byte order)."),
        Verb("check", "pyrunc.seccomp.tool:check_verb", (
            Opt(("--arch",), "arch", "str", None, "Architecture of the call (default: this machine).",
                choices=_SECCOMP_ARCHES),
            Opt(("--caps",), "caps", "str", None, "Bounding capabilities for Docker profiles."),
            Opt(("-v", "--verbose"), "verbose", "flag", False, "Also print the number of instructions run."),
        ), ("profile", "syscall", "args*"), "Print the action the filter gives SYSCALL (a name or number) with ARGS."),
        Verb("disasm", "pyrunc.seccomp.tool:disasm_verb", (), ("filter_file",),
             "List a raw filter (as written by `compile` or libseccomp's export) readably.", metavars=("FILE",)),
    )),
)}
