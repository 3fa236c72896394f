"""Run one RUN step in a container: write an OCI bundle, call `<runtime> run`.

pybuild drives the runtime only through its CLI (`RUNTIME --root DIR run -b
BUNDLE ID`), exactly as buildah drives runc, so pyrunc, runc and crun are
interchangeable here (DESIGN §1).

Invariants:
- The runtime gets a private `--root` inside the build's temp dir, so container
  state never mixes with the user's containers; the container is deleted and
  the bundle removed whatever happens.
- `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname` are bind mounts of files
  written into the bundle (docker's "init layer"): what the step writes to them
  is discarded and they never reach a layer.
- Networks: `host` shares the host's namespace, `none` gets a namespace with
  only `lo`, `bridge` (the default) gets a namespace on pybuild's bridge through
  the createRuntime/poststop hooks of pybuild.net (its resolv.conf drops the
  host's loopback name servers, which a namespace cannot reach).
- Host CA bundle (users behind TLS-intercepting proxies): when the host has
  /etc/ssl/certs/ca-certificates.crt and the image has a /etc/ssl/certs
  directory, the host file is bind-mounted read-only over that path for the
  RUN step only, and SSL_CERT_FILE, PIP_CERT and REQUESTS_CA_BUNDLE point to it
  unless the step's environment sets them. It never lands in a layer or in the
  image config. An image without /etc/ssl/certs gets neither (pointing TLS
  libraries at a missing file would break them). `--no-host-ca` turns it off,
  e.g. for a step that regenerates the bundle (a rename over a mount point fails).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Callable, Iterator

from pybuild.errors import PybuildError, RuntimeNotFound
from pyrunc.record import Record, factory, replace

if TYPE_CHECKING:
    from pybuild.net.model import NetSettings, PortMapping

HOST_CA = "/etc/ssl/certs/ca-certificates.crt"
CA_ENV = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE")
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# docker's default capability set for containers (and so for RUN steps).
DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
    "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
]
MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
    "/proc/scsi",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

# Destinations the runtime itself mounts; stubs it creates for them in the
# rootfs are removed from the diff afterwards (see steps/run.py).
SYSTEM_MOUNTS = ["/proc", "/dev", "/sys", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname"]
NETWORKS = ("bridge", "host", "none")


class RuntimeFailed(PybuildError):
    pass


class ContainerSpec(Record):
    """What a RUN step needs from the runtime."""

    rootfs: str
    args: list[str]
    env: list[str]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    network: str = "bridge"
    hostname: str = "pybuild"
    mounts: list[dict] = factory(list)
    net: "NetSettings | None" = None      # bridge, range, state dir (None: from the environment)
    ports: tuple["PortMapping", ...] = ()
    netns: str | None = None              # bridge: the namespace `network()` set up
    address: str | None = None            # bridge: the container's address (for /etc/hosts)


def resolve_runtime(name: str) -> list[str]:
    """`pyrunc` | `runc` | `crun` | a path → the argv prefix that runs it."""
    if name == "pyrunc":
        # The pyrunc command installed beside this pybuild (bin/pybuild sets argv[0] to
        # itself), else beside the interpreter; else the module, which guards itself too.
        for folder in (os.path.dirname(sys.argv[0]), os.path.dirname(sys.executable)):
            script = os.path.join(folder, "pyrunc")
            if folder and os.path.isfile(script) and os.access(script, os.X_OK):
                return [script]
        return [sys.executable, "-m", "pyrunc"]
    if "/" in name:
        path = os.path.abspath(name)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise RuntimeNotFound(f"runtime not found: {name} (no executable at {path})")
        return [path]
    found = shutil.which(name)
    if found is None:
        raise RuntimeNotFound(f"runtime not found: {name} (not on PATH)")
    return [os.path.abspath(found)]


def _system_mounts(bundle: str) -> list[dict]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/etc/hosts", "type": "bind", "source": os.path.join(bundle, "hosts"),
         "options": ["rbind", "rprivate"]},
        {"destination": "/etc/resolv.conf", "type": "bind", "source": os.path.join(bundle, "resolv.conf"),
         "options": ["rbind", "rprivate"]},
        {"destination": "/etc/hostname", "type": "bind", "source": os.path.join(bundle, "hostname"),
         "options": ["rbind", "rprivate"]},
    ]


def host_ca_mount(rootfs: str, enabled: bool = True) -> dict | None:
    """The read-only CA bind mount, or None when the host or image lacks
    what makes it safe (see the module docstring)."""
    if not enabled or not os.path.isfile(HOST_CA):
        return None
    certs = os.path.join(rootfs, "etc/ssl/certs")
    if os.path.islink(certs) or not os.path.isdir(certs):
        return None
    return {"destination": HOST_CA, "type": "bind", "source": HOST_CA,
            "options": ["rbind", "ro", "rprivate", "nosuid", "nodev", "noexec"]}


def with_ca_env(env: list[str]) -> list[str]:
    names = {e.split("=", 1)[0] for e in env}
    return env + [f"{n}={HOST_CA}" for n in CA_ENV if n not in names]


def _nofile_limit() -> dict:
    """docker gives containers 1048576 open files; never more than our own
    hard limit, which an unprivileged-looking sandbox may have lowered."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    n = 1048576 if hard == resource.RLIM_INFINITY else min(1048576, hard)
    return {"type": "RLIMIT_NOFILE", "hard": n, "soft": n}


def make_config(spec: ContainerSpec, bundle: str) -> dict:
    """config.json (OCI runtime spec 1.0) for one RUN step."""
    namespaces = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    if spec.network not in NETWORKS:
        raise PybuildError(f"--network={spec.network}: expected bridge, host or none")
    if spec.network != "host":
        namespaces.append({"type": "network", **({"path": spec.netns} if spec.netns else {})})
    caps = list(DEFAULT_CAPS)
    env = list(spec.env)
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    from pybuild.rootless import adapt_spec

    return adapt_spec({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": spec.uid, "gid": spec.gid,
                     **({"additionalGids": list(spec.additional_gids)} if spec.additional_gids else {})},
            "args": list(spec.args),
            "env": env,
            "cwd": spec.cwd or "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [_nofile_limit()],
            "noNewPrivileges": False,
        },
        "root": {"path": spec.rootfs, "readonly": False},
        "hostname": spec.hostname,
        "mounts": _system_mounts(bundle) + list(spec.mounts),
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    }, spec.network)


@contextlib.contextmanager
def network(spec: ContainerSpec, container_id: str) -> Iterator[ContainerSpec]:
    """For `bridge`: a network namespace on the bridge for the container's
    lifetime (pybuild.net, in this process), torn down on exit; the spec
    comes back with the namespace's path and the address. Other networks
    need nothing."""
    if spec.network != "bridge":
        yield spec
        return
    from pybuild.rootless import check_network

    check_network(spec.network)
    from pybuild.net import plumbing
    from pybuild.net.model import NetSettings

    settings = spec.net or NetSettings.from_env()
    req = plumbing.NetRequest(container_id, settings.bridge, settings.subnet, tuple(spec.ports), settings.state_dir)
    with plumbing.attached(req) as (path, att):
        yield replace(spec, netns=path, address=str(att.address))


def etc_files(network: str, hostname: str, address: str | None = None) -> dict[str, bytes]:
    """The generated /etc/hosts, /etc/resolv.conf and /etc/hostname. On the
    bridge the hosts file names the container's address (when known here; the
    set-up hook of a bundle writes it in place otherwise)."""
    from pybuild.net.model import hosts_file, resolv_conf

    try:
        with open("/etc/resolv.conf", "rb") as fh:
            resolv = fh.read().decode(errors="replace")
    except FileNotFoundError:
        resolv = ""
    if network == "bridge":
        resolv = resolv_conf(resolv)
    elif network == "none":
        resolv = ""
    hosts = hosts_file(hostname, address)
    if network == "host":
        hosts = f"127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    return {"hosts": hosts.encode(), "resolv.conf": resolv.encode(), "hostname": f"{hostname}\n".encode()}


def write_bundle(bundle: str, spec: ContainerSpec) -> str:
    """Create the bundle dir with config.json, hosts, resolv.conf and hostname."""
    os.makedirs(bundle, mode=0o700)
    for name, data in etc_files(spec.network, spec.hostname, spec.address).items():
        with open(os.path.join(bundle, name), "wb") as fh:
            fh.write(data)
    with open(os.path.join(bundle, "config.json"), "w") as fh:
        json.dump(make_config(spec, bundle), fh, indent=1)
    return bundle


def run_container(runtime: list[str], state_root: str, bundle: str, container_id: str,
                  on_output: Callable[[bytes], None]) -> int:
    """Run the bundle to completion, streaming its combined output line by
    line to `on_output`; return the container's exit status. The container
    and its state are deleted on every path out of here."""
    os.makedirs(state_root, mode=0o700, exist_ok=True)
    # Which runtime owns this state root: the build's watcher (sandbox.py), or a later build, uses
    # it to delete what a killed build left running.
    with open(os.path.join(state_root, "runtime.json"), "w") as fh:
        json.dump({"argv": runtime}, fh)
    argv = [*runtime, "--root", state_root, "run", "-b", bundle, container_id]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, close_fds=True, preexec_fn=_die_with_parent())
    except OSError as err:
        raise RuntimeNotFound(f"runtime {runtime[0]}: {err.strerror}") from err
    try:
        assert proc.stdout is not None
        for line in iter(proc.stdout.readline, b""):
            on_output(line)
        return proc.wait()
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
        _delete_container(runtime, state_root, container_id)


def _die_with_parent() -> Callable[[], None]:
    """preexec_fn: SIGKILL this runtime when the build process dies (issue 11): a SIGKILLed build
    must not leave its runtime running. Only a prctl between fork and exec (no import, no lock)."""
    from pyrunc import syscalls

    parent = os.getpid()

    def arm() -> None:
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the build died before the prctl
            os._exit(137)

    return arm


def _delete_container(runtime: list[str], state_root: str, container_id: str) -> None:
    if not os.path.exists(os.path.join(state_root, container_id)):
        return
    res = subprocess.run([*runtime, "--root", state_root, "delete", "-f", container_id],
                         stdin=subprocess.DEVNULL, capture_output=True)
    if res.returncode != 0 and os.path.exists(os.path.join(state_root, container_id)):
        raise RuntimeFailed(f"delete container {container_id}: "
                            f"{res.stderr.decode(errors='replace').strip()}")
