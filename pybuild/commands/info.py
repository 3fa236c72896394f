"""`pybuild info` and `pybuild system df` (docker's text and field names; `--format` takes a Go template).

info: the store (path, storage driver `overlay` and its backing filesystem, counts of
containers, images, unpacked layers and volumes), the OCI runtime (name, path, its own
`--version`), the cgroup version, and what this host allows: seccomp (the kernel's filter mode
and, when the runtime says, the runtime's support) and rootless containers (unprivileged user
namespaces), each with the reason when not.

system df: images (blobs and unpacked layers, shared ones once; active = used by a
container), containers (their upper dirs), local volumes, build cache (layer blobs only the
step cache keeps); RECLAIMABLE is what is not active. Sizes are walked without following
links or crossing mounts (volumes.copyup.tree_size).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from typing import Any

import click

from pybuild.gotemplate import Struct


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except OSError:
        return ""


def cgroup_version() -> str:
    """"2" on a unified hierarchy, "1" on v1 (also v1 with a controller-less cgroup2 beside it)."""
    return "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


def seccomp_support(runtime_features: dict[str, Any] | None) -> tuple[bool, str]:
    if "Seccomp:" not in _read("/proc/self/status"):
        return False, "the kernel has no seccomp (CONFIG_SECCOMP)"
    if not os.path.exists("/proc/sys/kernel/seccomp/actions_avail"):
        return False, "the kernel has no seccomp filter mode (CONFIG_SECCOMP_FILTER)"
    enabled = ((runtime_features or {}).get("linux") or {}).get("seccomp", {}).get("enabled")
    if enabled is False:
        return False, "the OCI runtime was built without seccomp"
    return True, "kernel filter mode" + (", runtime support" if enabled else "")


def rootless_support() -> tuple[bool, str]:
    if not os.path.exists("/proc/self/ns/user"):
        return False, "the kernel has no user namespaces (CONFIG_USER_NS)"
    if _read("/proc/sys/user/max_user_namespaces").strip() == "0":
        return False, "user.max_user_namespaces is 0"
    if _read("/proc/sys/kernel/unprivileged_userns_clone").strip() == "0":
        return False, "kernel.unprivileged_userns_clone is 0 (unprivileged user namespaces are off)"
    return True, "unprivileged user namespaces"


def _runtime_facts(argv: list[str]) -> tuple[str, dict[str, Any] | None]:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*argv, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)

    try:
        version = run("--version")
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"unknown ({err})", None
    text = (version.stdout or version.stderr).strip().splitlines()
    features = None
    try:
        res = run("features")
        if res.returncode == 0:
            features = json.loads(res.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        features = None  # older runtimes have no `features`: the kernel's answer stands alone
    return (text[0] if text else f"unknown (exit status {version.returncode})"), features


def _backing_fs(path: str) -> str:
    """The filesystem type of the mount holding `path` (longest mount point prefix)."""
    best, fstype = "", "unknown"
    for line in _read("/proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        point = fields[4] if len(fields) > 4 else ""
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, fstype = point, right.split()[0] if right else "unknown"
    return fstype


def _meminfo_total() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _os_name() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.partition("=")[2].strip().strip('"')
    return platform.system()


def _counts(root: str) -> dict[str, int]:
    from pybuild.containers import ContainerStore
    from pybuild.store import Store
    from pybuild.volumes import VolumeStore

    statuses = [c.status() for c in ContainerStore(root).list()]
    store = Store(root)
    images = {desc.digest for _, desc in store.list_refs()}
    try:
        layers = sum(1 for e in os.scandir(store.layers_root) if not e.name.startswith("."))
    except FileNotFoundError:
        layers = 0
    return {"Containers": len(statuses), "ContainersRunning": statuses.count("running"),
            "ContainersPaused": statuses.count("paused"),
            "ContainersStopped": len(statuses) - statuses.count("running") - statuses.count("paused"),
            "Images": len(images), "Layers": layers, "Volumes": len(VolumeStore(root).list())}


def info_data(root: str, runtime: str) -> Struct:
    from importlib.metadata import version

    from pybuild.inspect_data import runtime_name
    from pybuild.runtime import resolve_runtime

    root = os.path.abspath(root)
    argv = resolve_runtime(runtime)
    runtime_version, features = _runtime_facts(argv)
    seccomp, seccomp_why = seccomp_support(features)
    rootless, rootless_why = rootless_support()
    name = runtime_name(argv)
    uname = os.uname()
    return Struct("Info", {
        **_counts(root),
        "Driver": "overlay",
        "DriverStatus": [["Backing Filesystem", _backing_fs(root)]],
        "DockerRootDir": root,
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version(),
        "DefaultRuntime": name,
        "Runtimes": {name: Struct("Runtime", {"Path": argv[0] if "-m" not in argv else " ".join(argv)})},
        "RuntimeVersion": runtime_version,
        "SecurityOptions": ["name=seccomp,profile=builtin"] if seccomp else [],
        "Seccomp": Struct("Support", {"Available": seccomp, "Reason": seccomp_why}),
        "Rootless": Struct("Support", {"Available": rootless, "Reason": rootless_why}),
        "KernelVersion": uname.release,
        "OperatingSystem": _os_name(),
        "OSType": "linux",
        "Architecture": uname.machine,
        "NCPU": os.cpu_count() or 0,
        "MemTotal": _meminfo_total(),
        "Name": uname.nodename,
        "ServerVersion": version("pyrunc"),
    })


def info_text(d: Struct) -> str:
    from pybuild.commands.images import size_text

    sec = d["Seccomp"]
    rl = d["Rootless"]
    lines = [
        f"Containers: {d['Containers']}", f" Running: {d['ContainersRunning']}", f" Paused: {d['ContainersPaused']}",
        f" Stopped: {d['ContainersStopped']}", f"Images: {d['Images']}", f"Layers: {d['Layers']}",
        f"Volumes: {d['Volumes']}", f"Server Version: pybuild {d['ServerVersion']}",
        f"Storage Driver: {d['Driver']}", f" Backing Filesystem: {d['DriverStatus'][0][1]}",
        f"Store Root: {d['DockerRootDir']}", f"Cgroup Driver: {d['CgroupDriver']}",
        f"Cgroup Version: {d['CgroupVersion']}", f"Default Runtime: {d['DefaultRuntime']}",
        f" Path: {d['Runtimes'][d['DefaultRuntime']]['Path']}", f" Version: {d['RuntimeVersion']}",
        f"Seccomp: {'available' if sec['Available'] else 'not available'} ({sec['Reason']})",
        f"Rootless: {'available' if rl['Available'] else 'not available'} ({rl['Reason']})",
        f"Kernel Version: {d['KernelVersion']}", f"Operating System: {d['OperatingSystem']}",
        f"OSType: {d['OSType']}", f"Architecture: {d['Architecture']}", f"CPUs: {d['NCPU']}",
        f"Total Memory: {size_text(d['MemTotal'])}", f"Name: {d['Name']}",
    ]
    return "\n".join(lines)


@click.command("info")
@click.option("-f", "--format", "fmt", default=None, help="A Go template, or json.")
@click.pass_context
def info(ctx: click.Context, fmt: str | None) -> None:
    """Show the store, the runtime and what this host supports."""
    from pybuild.gotemplate import Template
    from pybuild.commands.inspect import json_text

    template = Template(fmt, "info") if fmt and fmt != "json" else None
    data = info_data(ctx.obj["root"], ctx.obj["runtime"])
    if fmt == "json":
        click.echo(json_text(data))
    elif template is not None:
        click.echo(template.render(data))
    else:
        click.echo(info_text(data))


# ---- system df ---------------------------------------------------------------------------------
def _image_sizes(store: Any) -> tuple[dict[str, set[str]], dict[str, int]]:
    """Per image ID, the blobs and layer dirs it holds; and the size of each of those."""
    from pybuild.image import INDEX_TYPES

    holds: dict[str, set[str]] = {}
    sizes: dict[str, int] = {}
    for _, desc in store.list_refs():
        if desc.media_type in INDEX_TYPES:
            continue
        manifest = store.read_manifest(desc.digest)
        items = {desc.digest, manifest.config.digest}
        sizes[desc.digest] = desc.size
        sizes[manifest.config.digest] = manifest.config.size
        for layer in manifest.layers:
            items.add(layer.digest)
            sizes[layer.digest] = layer.size
        for chain in _chains(store, manifest.config.digest):
            if store.has_layer(chain):
                items.add(chain + "/unpacked")
                sizes[chain + "/unpacked"] = store.layer_record(chain).size
        holds.setdefault(manifest.config.digest, set()).update(items)
    return holds, sizes


def _chains(store: Any, config_digest: str) -> list[str]:
    from pybuild.image import chain_ids

    return chain_ids(store.read_config(config_digest).rootfs.diff_ids)


def _cache_only(root: str, referenced: set[str], sizes: dict[str, int]) -> tuple[int, int]:
    """(records, bytes of layer blobs that only the step cache keeps)."""
    steps = os.path.join(root, "cache", "steps")
    try:
        names = [n for n in os.listdir(steps) if n.endswith(".json")]
    except FileNotFoundError:
        return 0, 0
    extra: dict[str, int] = {}
    for name in names:
        try:
            fd = os.open(os.path.join(steps, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as fh:
                doc = json.load(fh)
            for layer in doc.get("layers") or ():
                digest = layer.get("digest")
                if digest and digest not in referenced and os.path.exists(
                        os.path.join(root, "blobs", "sha256", digest.partition(":")[2])):
                    extra[digest] = int(layer.get("size") or 0)
        except (OSError, ValueError, AttributeError, TypeError):
            continue  # a record torn by a crash counts for nothing
    return len(names), sum(extra.values())


def df_rows(root: str) -> list[tuple[str, int, int, int, int]]:
    """(type, total, active, size, reclaimable) for images, containers, volumes, build cache."""
    from pybuild.containers import ContainerStore
    from pybuild.store import Store
    from pybuild.volumes import VolumeStore, volume_names
    from pybuild.volumes.copyup import tree_size

    store = Store(root)
    containers = ContainerStore(root).list()
    statuses = {c.id: c.status() for c in containers}
    active_ids = {c.id for c in containers if statuses[c.id] in ("running", "paused")}
    holds, sizes = _image_sizes(store)
    used_images = {c.image_id for c in containers}
    all_items = set().union(*holds.values()) if holds else set()
    used_items = set().union(*(holds[i] for i in used_images if i in holds)) if holds else set()
    image_size = sum(sizes[i] for i in all_items)
    image_row = ("Images", len(holds), len(used_images & set(holds)), image_size,
                 image_size - sum(sizes[i] for i in used_items))
    csize = {c.id: tree_size(os.path.join(c.fs, "upper")) for c in containers}
    container_row = ("Containers", len(containers), len(active_ids), sum(csize.values()),
                     sum(v for k, v in csize.items() if k not in active_ids))
    vols = VolumeStore(root).list()
    used_vols = {n for c in containers for n in volume_names(c)}
    vsize = {v.name: tree_size(v.mountpoint) for v in vols}
    volume_row = ("Local Volumes", len(vols), len(used_vols & set(vsize)), sum(vsize.values()),
                  sum(v for k, v in vsize.items() if k not in used_vols))
    records, cache_bytes = _cache_only(root, all_items, sizes)
    return [image_row, container_row, volume_row, ("Build Cache", records, 0, cache_bytes, cache_bytes)]


@click.group("system")
def system() -> None:
    """Information about the whole store."""


@system.command("df")
@click.option("--format", "fmt", default=None, help="A Go template per row (.Type .Total .Active .Size .Reclaimable).")
@click.pass_context
def df(ctx: click.Context, fmt: str | None) -> None:
    """Show disk usage: images, containers, volumes, build cache."""
    from pybuild.commands.images import size_text
    from pybuild.commands.inspect import emit

    rows = df_rows(ctx.find_root().obj["root"])
    if fmt:
        emit([Struct("SystemDfReport", {"Type": t, "Total": n, "Active": a, "Size": size_text(sz),
                                        "Reclaimable": size_text(r)}) for t, n, a, sz, r in rows], fmt, "df")
        return
    table = [("TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE")]
    for kind, total, active, size, reclaim in rows:
        pct = f" ({100 * reclaim // size}%)" if size else " (0%)"
        table.append((kind, str(total), str(active), size_text(size), size_text(reclaim) + pct))
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for row in table:
        click.echo("   ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
