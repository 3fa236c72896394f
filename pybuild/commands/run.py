"""`pybuild run`: the daemon-less `docker run`.

    pybuild run [-d] [--rm] [--name N] [-p [IP:]HOST:CONTAINER[/PROTO]]… [-e K[=V]]…
                [-v [SRC:]DST[:OPTS]]… [--mount type=volume|bind|tmpfs,…]… [--tmpfs DST[:OPTS]]…
                [-w DIR] [-u USER] [--network bridge|host|none] [--entrypoint CMD]
                [-i] [--hostname H] IMAGE [CMD…]

Flow (plan pure, execute thin): every input is checked first (image, ports and the
NAT tools, mounts, name) so bad input leaves nothing; then the container's
directory is claimed (containers.py), its volumes are made (named ones on first
use, anonymous ones for `-v /path` and the image's VOLUMEs; pybuild.volumes), a
*monitor* process takes over (this process
in the foreground, a forked one with -d, as conmon is for podman): it gets its own
mount namespace, mounts the image's layers as an overlay rootfs there, fills new
volumes from the image's content at their paths, writes the bundle and runs
`<runtime> run` on it. `restart` runs a new monitor on the same record, upper dir
and volumes. The runtime forwards signals, sets up and
tears down the network through the bundle's hooks (pybuild.net), deletes the
container and exits with its status, which the monitor records and returns.

Why a private mount namespace: the rootfs overlay then lives exactly as long as
the processes that use it. A SIGKILLed monitor leaves no mount on the host: its
watcher (sandbox.Watcher) deletes the container through the runtime, tears the
network down and records exit 137; the monitor's lock, which the watcher keeps,
makes `pybuild rm` wait until it is done.

Exit status: the container's (128+N for signal N); 125 when pybuild or the
runtime could not run it (docker's convention), with one line saying why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any, Iterator

import click

from pybuild.errors import PybuildError
from pybuild.containers import Container, ContainerError, ContainerStore, new_id, runtime_error
from pyrunc.record import replace

if TYPE_CHECKING:
    from pybuild.net.model import PortMapping
    from pybuild.store import Store, StoredImage
    from pybuild.volumes.spec import MountSpec

_FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2,
              signal.SIGWINCH)


class RunError(ContainerError):
    exit_code = 125


@dataclasses.dataclass(frozen=True)
class RunRequest:
    image: str
    command: tuple[str, ...] = ()
    detach: bool = False
    remove: bool = False
    name: str = ""
    ports: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    mount: tuple[str, ...] = ()
    tmpfs: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    network: str = "bridge"
    entrypoint: str | None = None
    interactive: bool = False
    hostname: str | None = None


def parse_env(items: tuple[str, ...]) -> list[str]:
    out = []
    for item in items:
        key, eq, _ = item.partition("=")
        if not key:
            raise RunError(f"-e {item!r}: expected KEY=VALUE or KEY")
        if eq:
            out.append(item)
        elif key in os.environ:
            out.append(f"{key}={os.environ[key]}")
    return out


def merge_env(base: tuple[str, ...] | list[str], extra: list[str]) -> tuple[str, ...]:
    """`extra` (KEY=VALUE) over `base`: a key given again replaces the earlier entry."""
    keys = {e.partition("=")[0] for e in extra}
    return tuple(e for e in base if e.partition("=")[0] not in keys) + tuple(extra)


def run_config(image: "StoredImage", req: RunRequest) -> Any:
    """The image config with the run's overrides applied (docker's rules:
    --entrypoint resets the image's CMD; CMD… replaces it)."""
    cfg = image.config.config
    changes: dict[str, Any] = {}
    if req.entrypoint is not None:
        changes["entrypoint"] = tuple([req.entrypoint] if req.entrypoint else [])
        changes["cmd"] = ()
    if req.command:
        changes["cmd"] = tuple(req.command)
    if req.env:
        changes["env"] = merge_env(cfg.env, parse_env(req.env))
    if req.workdir:
        if not req.workdir.startswith("/"):
            raise RunError(f"-w {req.workdir}: the working directory must be absolute")
        changes["working_dir"] = req.workdir
    if req.user:
        changes["user"] = req.user
    return replace(image.config, config=replace(cfg, **changes))


def check_inputs(store: "Store", req: RunRequest) -> tuple["StoredImage", list["PortMapping"], list["MountSpec"]]:
    """Everything that can be wrong with the request, before anything is made."""
    from pybuild.net.model import check_ports, parse_port
    from pybuild.runtime import NETWORKS
    from pybuild.volumes.spec import plan

    if req.network not in NETWORKS:
        raise RunError(f"--network {req.network}: expected bridge, host or none")
    from pybuild.rootless import check_network

    check_network(req.network)
    ports = [parse_port(p) for p in req.ports]
    check_ports(ports)
    if ports and req.network != "bridge":
        raise RunError(f"-p {ports[0].text()}: publishing ports needs --network bridge")
    image = store.load_image(req.image)
    mounts = plan(req.volumes, req.mount, req.tmpfs, image.config.config.volumes)
    if req.network == "bridge":
        from pybuild.net import firewall, plumbing
        from pybuild.net.ipam import Ipam
        from pybuild.net.model import NetSettings

        firewall.detect()
        settings = NetSettings.from_env()
        plumbing.check_host_ports(tuple(ports), Ipam(settings.state_dir, settings.bridge).leases())
    cfg = run_config(image, req).config
    if not (cfg.entrypoint or cfg.cmd):
        raise RunError(f"{req.image}: no command given and the image has neither Entrypoint nor Cmd")
    return image, ports, mounts


def write_bundle(c: Container, image: "StoredImage", req: RunRequest, ports: list["PortMapping"],
                 mounts: list[dict], rootfs: str, netns: str | None, address: str | None) -> None:
    from pybuild.bundle import apply_network, bundle_config
    from pyrunc.fsutil import atomic_write
    import json

    hostname = req.hostname or c.id[:12]
    spec = bundle_config(run_config(image, req), rootfs, hostname=hostname)
    spec["root"] = {"path": rootfs, "readonly": False}
    spec["process"]["terminal"] = False
    os.makedirs(c.bundle, mode=0o700, exist_ok=True)
    apply_network(spec, c.bundle, req.network, ports, hostname, netns=netns, address=address)
    spec["mounts"] = spec["mounts"] + mounts
    spec["linux"]["cgroupsPath"] = f"/pybuild/{c.id}"
    from pybuild.rootless import adapt_spec

    adapt_spec(spec, req.network)
    atomic_write(os.path.join(c.bundle, "config.json"), json.dumps(spec, indent=1).encode(), 0o600)


def monitor(store: "Store", c: Container, image: "StoredImage", req: RunRequest,
            ports: list["PortMapping"], mounts: list["MountSpec"], stdio: tuple[int, int, int],
            ready: Any, restart: bool = False) -> int:
    """Mount, run, record, clean up; `ready(error or None)` is called once the
    container started (or could not). Returns the container's exit status.
    With `restart`, the record, its upper dir and volumes existed before and are
    kept whatever happens."""
    from pybuild.commands.build import private_mount_namespace
    from pybuild.sandbox import Watcher

    private_mount_namespace()
    c.record_monitor()
    lock = c.hold_monitor_lock()
    try:
        watcher = Watcher(lambda: after_monitor_died(c, req, restart), keep=(lock,))
        try:
            return _monitor(store, c, image, req, ports, mounts, stdio, ready, restart)
        finally:
            watcher.finish()
    finally:
        os.close(lock)


def _monitor(store: "Store", c: Container, image: "StoredImage", req: RunRequest,
             ports: list["PortMapping"], mounts: list["MountSpec"], stdio: tuple[int, int, int],
             ready: Any, restart: bool) -> int:
    from pybuild.overlay import mount_overlay
    from pybuild.volumes.attach import runtime_mounts

    started = False
    try:
        with store.using():  # unpacking: a prune must not take the temp dirs (the record keeps the result)
            lowers = list(reversed(store.ensure_layers(image.manifest, image.config)))
        with mount_overlay(c.fs, lowers, keep_upper=restart) as ov, _network(c, ports) as (netns, address):
            oci_mounts = runtime_mounts(store.root, mounts, ov.merged)
            write_bundle(c, image, req, ports, oci_mounts, ov.merged, netns, address)
            pidfile = os.path.join(c.home, "pid")
            proc = subprocess.Popen(c.runtime_cmd("run", "--bundle", c.bundle, "--pid-file", pidfile, c.id),
                                    stdin=stdio[0], stdout=stdio[1], stderr=stdio[2], close_fds=True)
            for sig in _FORWARDED:
                signal.signal(sig, lambda n, _f: proc.send_signal(n))
            if c.detached:  # the caller waits until the container runs (or could not)
                while proc.poll() is None and not os.path.exists(pidfile):
                    time.sleep(0.005)
            if os.path.exists(pidfile):
                started = True
                ready(None)
            code = proc.wait()
            started = started or os.path.exists(pidfile)
        if not started:
            raise RunError(runtime_error(c.runtime_log) or
                           f"{c.runtime[0]} exited with status {code} before the container started")
        c.record_exit(code)
        return code
    except BaseException as err:
        if not started:  # nothing of a container that never ran is kept
            _delete_runtime_state(c)
            if not restart:
                ContainerStore.of(c).remove(c, volumes=True)
        ready(str(err) if isinstance(err, Exception) else "interrupted")
        if not started and isinstance(err, PybuildError) and not isinstance(err, RunError):
            raise RunError(str(err)) from None  # could not run it: docker's 125
        raise
    finally:
        if req.remove and started and not os.path.exists(os.path.join(c.home, RESTARTING)):
            ContainerStore.of(c).remove(c, volumes=True)


RESTARTING = "restarting"  # in the container's dir while `restart` stops it: --rm must not remove it


def after_monitor_died(c: Container, req: RunRequest, restart: bool) -> None:
    """The monitor's watcher, when the monitor was killed: what the monitor would have done, the
    container first. It ends with its monitor (as a build's RUN step with its build): the runtime
    deletes it (its processes, cgroups and state), the network is torn down, a container that
    was running gets exit code 137 (it was SIGKILLed), the overlay is unmounted here (the watcher
    shares the monitor's mount namespace) and its work dir removed; --rm, or a container that never
    started, goes entirely (a restarted one keeps its record, as the monitor's error path does)."""
    from pybuild.overlay import unmount_under
    from pyrunc.fsutil import rmtree_nofollow

    started = os.path.exists(os.path.join(c.home, "pid"))
    state = c.runtime_state()
    _delete_runtime_state(c)
    if c.network == "bridge":
        from pybuild.net import plumbing

        plumbing.teardown(net_request(c))
    unmount_under(os.path.join(c.fs, "merged"))
    rmtree_nofollow(os.path.join(c.fs, "work"))
    if started and c.exit_code() is None and state is not None and state.get("status") != "stopped":
        c.record_exit(128 + signal.SIGKILL)
    if (not started and not restart) or (req.remove and started and
                                         not os.path.exists(os.path.join(c.home, RESTARTING))):
        ContainerStore.of(c).remove(c, volumes=True)


@contextlib.contextmanager
def _network(c: Container, ports: list["PortMapping"]) -> Iterator[tuple[str | None, str | None]]:
    """The container's network namespace on the bridge, set up here (one
    pyroute2 import instead of two hook processes) and torn down when the
    runtime is done; a SIGKILLed monitor leaves it to `pybuild rm`."""
    if c.network != "bridge":
        yield None, None
        return
    from pybuild.net import plumbing

    from pyrunc.fsutil import atomic_write
    import json

    with plumbing.attached(net_request(c, ports)) as (path, att):
        record = os.path.join(c.home, "net.json")
        atomic_write(record, json.dumps({"address": str(att.address), "prefix": att.network.prefixlen,
                                         "gateway": str(att.gateway), "bridge": net_request(c).bridge}).encode(),
                     0o600, durable=False)
        try:
            yield path, str(att.address)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(record)


def net_request(c: Container, ports: list["PortMapping"] | None = None) -> Any:
    from pybuild.net import plumbing
    from pybuild.net.model import NetSettings, parse_port

    s = NetSettings.from_env()
    mappings = ports if ports is not None else [parse_port(p) for p in c.ports]
    return plumbing.NetRequest(c.id, s.bridge, s.subnet, tuple(mappings), s.state_dir)


def _delete_runtime_state(c: Container) -> None:
    subprocess.run(c.runtime_cmd("delete", "-f", c.id), capture_output=True, stdin=subprocess.DEVNULL)


def start_detached(store: "Store", c: Container, image: "StoredImage", req: RunRequest,
                   ports: list["PortMapping"], mounts: list["MountSpec"], restart: bool = False) -> None:
    """Fork the monitor; return once the container runs, or raise its error."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the monitor: its own session, no fd of the caller's terminal or pipes
        os.close(r)
        code = 1
        try:
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            log = os.open(c.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            for fd, target in ((0, null), (1, log), (2, log)):
                os.dup2(target, fd)

            def ready(error: str | None) -> None:
                nonlocal w
                if w >= 0:
                    os.write(w, (error or "").encode()[:4000] or b"ok")
                    os.close(w)
                    w = -1
            code = monitor(store, c, image, req, ports, mounts, (0, 1, 2), ready, restart) & 0xFF
        except BaseException:  # the error went to the parent through ready()
            code = 125
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 4096):
        chunks.append(chunk)
    os.close(r)
    message = b"".join(chunks).decode(errors="replace")
    if message != "ok":
        raise RunError(message or "the monitor process died before the container started")


@click.command("run", context_settings={"allow_interspersed_args": False})
@click.option("-d", "--detach", is_flag=True, help="Run in the background; print the container ID.")
@click.option("--rm", "remove", is_flag=True, help="Remove the container when it exits.")
@click.option("--name", default="", help="Name of the container.")
@click.option("-p", "--publish", "ports", multiple=True, metavar="[IP:]HOST:CONTAINER[/PROTO]",
              help="Publish a container port on the host; repeatable.")
@click.option("-e", "--env", multiple=True, metavar="KEY[=VALUE]", help="Set an environment variable.")
@click.option("-v", "--volume", "volumes", multiple=True, metavar="[SRC:]DST[:OPTS]",
              help="A named volume (NAME:DST), an anonymous one (DST) or a host path (/SRC:DST); OPTS: ro, nocopy.")
@click.option("--mount", "mount", multiple=True, metavar="type=volume|bind|tmpfs,…",
              help="type=volume,[source=NAME,]target=DST[,readonly][,volume-nocopy] and bind, tmpfs.")
@click.option("--tmpfs", multiple=True, metavar="DST[:OPTS]", help="Mount a tmpfs.")
@click.option("-w", "--workdir", default=None, help="Working directory inside the container.")
@click.option("-u", "--user", default=None, help="USER[:GROUP] (names from the image's /etc/passwd).")
@click.option("--network", "--net", "network", default="default", show_default="bridge; host for a user",
              help="bridge, host or none.")
@click.option("--entrypoint", default=None, help="Override the image's ENTRYPOINT ('' clears it).")
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin attached.")
@click.option("--hostname", default=None, help="Container host name (default: the short ID).")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def run(ctx: click.Context, image: str, command: tuple[str, ...], **opts: Any) -> None:
    """Run a command in a new container."""
    from pybuild import rootless
    from pybuild.store import Store

    if opts.get("network") == "default":
        opts["network"] = rootless.default_network()
    req = RunRequest(image=image, command=command, **opts)
    if req.detach and req.interactive:
        raise RunError("-d and -i cannot be used together")
    store = Store(ctx.obj["root"])
    with store.using():  # a prune racing this run waits until the record names the image (a gc root)
        c, stored, ports, mounts = _claim(ctx, store, req, command)
    if req.detach:
        start_detached(store, c, stored, req, ports, mounts)
        click.echo(c.id)
        return
    stdin = sys.stdin.fileno() if req.interactive else os.open(os.devnull, os.O_RDONLY)
    code = monitor(store, c, stored, req, ports, mounts, (stdin, 1, 2), lambda _e: None)
    sys.stdout.flush()
    ctx.exit(code)


def _claim(ctx: click.Context, store: "Store", req: RunRequest,
           command: tuple[str, ...]) -> tuple[Container, "StoredImage", list["PortMapping"], list["MountSpec"]]:
    """Check the request, then make the container's record and its volumes."""
    from pybuild.runtime import resolve_runtime

    try:
        stored, ports, mounts = check_inputs(store, req)
    except PybuildError as err:  # bad input: docker's 125, one line, nothing made
        raise RunError(str(err)) from None
    final = run_config(stored, req).config
    overrides = {"entrypoint": req.entrypoint, "cmd": list(command) or None, "env": parse_env(req.env) or None,
                 "workdir": req.workdir, "user": req.user}
    c = Container(id=new_id(), name=req.name, image=req.image, image_id=stored.id,
                  image_digest=stored.descriptor.digest, created=time.time(),
                  command=list(final.entrypoint or ()) + list(final.cmd or ()),
                  runtime=resolve_runtime(ctx.obj["runtime"]), network=req.network, ports=[p.text() for p in ports],
                  remove=req.remove, detached=req.detach, mounts=[m.destination for m in mounts],
                  mount_specs=[m.to_dict() for m in mounts], request=dataclasses.asdict(req),
                  stop_signal=stored.config.config.stop_signal or "SIGTERM",
                  config={k: v for k, v in overrides.items() if v is not None})
    try:
        ContainerStore(ctx.obj["root"]).create(c)
    except PybuildError as err:  # a name in use or not a name: docker's 125 too
        raise RunError(str(err)) from None
    try:
        from pybuild.volumes.attach import ensure

        ensure(ctx.obj["root"], mounts)  # after the record: a volume in use is never removed
    except PybuildError as err:
        ContainerStore(ctx.obj["root"]).remove(c, volumes=True)
        raise RunError(str(err)) from None
    return c, stored, ports, mounts


def request_of(c: Container) -> RunRequest:
    """The run request recorded with a container (lists back to tuples)."""
    if not c.request:
        raise RunError(f"container {c.name}: made by an older pybuild, it has no recorded request to start again")
    fields = {f.name for f in dataclasses.fields(RunRequest)}
    return RunRequest(**{k: tuple(v) if isinstance(v, list) else v for k, v in c.request.items() if k in fields})


def start_again(root: str, c: Container) -> None:
    """Run an exited container again, detached, on its record, upper dir and volumes (restart)."""
    from pybuild.net.model import parse_port
    from pybuild.store import Store
    from pybuild.volumes.attach import ensure
    from pybuild.volumes.spec import MountSpec

    req = dataclasses.replace(request_of(c), detach=True, interactive=False)
    store = Store(root)
    image = store.load_image(c.image_ref)
    mounts = [MountSpec.from_dict(m) for m in c.mount_specs]
    ensure(root, mounts)
    for name in ("pid", "exit.json"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(c.home, name))
    c.detached = True
    c.restart_count += 1
    c.save()
    start_detached(store, c, image, req, [parse_port(p) for p in c.ports], mounts, restart=True)
