"""The OCI hook command of pybuild's bridge network, and the config.json that calls it.

    python -I -m pybuild.net setup    --bridge B [--subnet S] [--state-dir D] [-p SPEC]… [--hosts FILE] [--hostname H]
    python -I -m pybuild.net teardown --bridge B [--state-dir D]

Both read the OCI state JSON on stdin, as hooks do (runtime-spec config.md
"posix-platform-hooks"): `id` names everything, `pid` gives the network
namespace (/proc/PID/ns/net) to set up. `setup` runs as a `createRuntime` hook
(after the runtime made the namespaces, before the process starts), `teardown`
as a `poststop` hook (at `delete`, also `delete -f` of a container whose
process died long ago), the way CNI-based tools wire a network into any OCI
runtime. Every container made by pybuild (RUN steps, `pybuild bundle`,
`pybuild run`) gets its network this one way.

Errors: one line `pybuild: …` on stderr and exit status 1; the runtime reports
the failed hook and, for createRuntime, removes the container.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Sequence

from pybuild.net.model import DEFAULT_BRIDGE, DEFAULT_STATE_DIR, NetSettings, NetworkError, PortMapping, \
    hosts_file, parse_port

_HOOK_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def hook_config(settings: NetSettings, ports: Sequence[PortMapping] = (), hosts: str | None = None,
                hostname: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """The `hooks` of a config.json whose network namespace gets the bridge."""
    python = sys.executable
    common = ["--bridge", settings.bridge, "--state-dir", settings.state_dir]
    setup = [python, "-I", "-m", "pybuild.net", "setup", *common]
    if settings.subnet:
        setup += ["--subnet", settings.subnet]
    for p in ports:
        setup += ["-p", p.text()]
    if hosts:
        setup += ["--hosts", hosts, "--hostname", hostname or "localhost"]
    path = os.environ.get("PATH")
    env = [f"PATH={path}" if path else _HOOK_PATH]
    return {"createRuntime": [{"path": python, "args": setup, "env": env, "timeout": 60}],
            "poststop": [{"path": python, "args": [python, "-I", "-m", "pybuild.net", "teardown", *common],
                          "env": env, "timeout": 60}]}


def _parse(argv: list[str]) -> tuple[str, dict[str, Any]]:
    if not argv or argv[0] not in ("setup", "teardown"):
        raise NetworkError("usage: python -m pybuild.net setup|teardown --bridge NAME [options] < state.json")
    verb, opts = argv[0], {"bridge": DEFAULT_BRIDGE, "state_dir": DEFAULT_STATE_DIR, "subnet": None,
                           "ports": [], "hosts": None, "hostname": "localhost"}
    names = {"--bridge": "bridge", "--state-dir": "state_dir", "--subnet": "subnet", "-p": "ports",
             "--hosts": "hosts", "--hostname": "hostname"}
    rest = argv[1:]
    while rest:
        flag = rest.pop(0)
        if flag not in names or not rest:
            raise NetworkError(f"{verb}: unknown option or missing value: {flag}")
        value = rest.pop(0)
        if names[flag] == "ports":
            opts["ports"].append(parse_port(value))
        else:
            opts[names[flag]] = value
    return verb, opts


def _write_in_place(path: str, text: str) -> None:
    """The hosts file is bind-mounted into the container already: rewrite the
    same inode (a rename would leave the mount on the old one)."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def run(argv: list[str], state_json: bytes) -> None:
    from pybuild.net import plumbing
    from pybuild.net.model import check_ifname

    verb, opts = _parse(argv)
    try:
        state = json.loads(state_json or b"{}")
    except ValueError:
        raise NetworkError(f"{verb}: the container state on stdin is not JSON") from None
    cid = state.get("id")
    if not isinstance(cid, str) or not cid:
        raise NetworkError(f"{verb}: the container state on stdin has no id")
    req = plumbing.NetRequest(container_id=cid, bridge=check_ifname(opts["bridge"]), subnet=opts["subnet"],
                              ports=tuple(opts["ports"]), state_dir=opts["state_dir"])
    if verb == "teardown":
        plumbing.teardown(req)
        return
    pid = state.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        raise NetworkError("setup: the container state on stdin has no pid")
    fd = plumbing.netns_of(pid)
    try:
        att = plumbing.setup(req, fd)
    finally:
        os.close(fd)
    if opts["hosts"]:
        _write_in_place(opts["hosts"], hosts_file(opts["hostname"], str(att.address)))


def main(argv: list[str]) -> int:
    from pybuild.errors import PybuildError

    try:
        run(argv, sys.stdin.buffer.read())
    except PybuildError as err:
        print(f"pybuild: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"pybuild: network {argv[0] if argv else ''}: {err}", file=sys.stderr)
        return 1
    return 0
