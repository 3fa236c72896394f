"""What `inspect` shows: containers, images and volumes with docker's field names (podman's values).

Each function returns a gotemplate.Struct tree, so `--format` sees Go's types: a struct field
that is not there is an error, a map key that is not there is `<no value>`, nil slices and maps
print `[]` and `map[]`. Only what pybuild knows is shown; a docker field pybuild has no truth for
(OOMKilled, MacAddress, …) is left out rather than filled with a made-up value. Where docker and
podman differ in a value, podman's is used: `Name` without docker's leading slash.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from pybuild.gotemplate import Struct
from pybuild.gotemplate.values import NIL_LIST, NIL_MAP
from pybuild.image import format_time

if TYPE_CHECKING:
    from pybuild.containers import Container
    from pybuild.store import Store, StoredImage
    from pybuild.volumes import Volume

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as docker shows "never"


def _mtime(path: str) -> str:
    try:
        return format_time(os.stat(path).st_mtime)
    except FileNotFoundError:
        return ZERO_TIME


def _list(items: Any) -> Any:
    return list(items) if items is not None else NIL_LIST


def _map(d: Any) -> Any:
    return dict(d) if d else NIL_MAP


def runtime_name(argv: list[str]) -> str:
    return argv[-1] if "-m" in argv else os.path.basename(argv[0])


def container_config_struct(cfg: Any, hostname: str | None = None, image: str | None = None,
                            env: list[str] | None = None, extra: dict[str, Any] | None = None) -> Struct:
    """docker's Config (container.Config) from an OCI image config's `config` (+ a run's view)."""
    fields: dict[str, Any] = {}
    if hostname is not None:
        fields["Hostname"] = hostname
        fields["Domainname"] = ""
    fields["User"] = cfg.user or ""
    fields.update(extra or {})
    fields["ExposedPorts"] = {p: Struct("struct {}") for p in cfg.exposed_ports} or NIL_MAP
    fields["Env"] = _list(env if env is not None else cfg.env)
    fields["Cmd"] = _list(cfg.cmd)
    if image is not None:
        fields["Image"] = image
    fields["Volumes"] = {v: Struct("struct {}") for v in cfg.volumes} or NIL_MAP
    fields["WorkingDir"] = cfg.working_dir or ""
    fields["Entrypoint"] = _list(cfg.entrypoint)
    fields["OnBuild"] = _list(cfg.on_build or None)
    fields["Labels"] = _map(cfg.labels)
    fields["StopSignal"] = cfg.stop_signal or ""
    return Struct("Config", fields)


def image_struct(store: "Store", image: "StoredImage") -> Struct:
    from pybuild.image import repo_digest
    from pybuild.store import split_name

    cfg = image.config
    names = sorted({name for name, desc in store.list_refs() if name and desc.digest == image.descriptor.digest})
    tags = []
    for name in names:
        repo, tag = split_name(name)
        tags.append(f"{repo}:{tag}")
    size = sum(layer.size for layer in image.manifest.layers) + image.manifest.config.size
    layers = [store.layer_dir(chain) for chain in reversed(image.chain_ids) if store.has_layer(chain)]
    history = [Struct("History", {"created": h.created or ZERO_TIME, "created_by": h.created_by or "",
                                  "author": h.author or "", "comment": h.comment or "",
                                  "empty_layer": h.empty_layer}) for h in cfg.history]
    return Struct("Image", {
        "Id": image.id,
        "Digest": image.descriptor.digest,
        "RepoTags": _list(tags or None),
        "RepoDigests": _list([f"{split_name(n)[0]}@{repo_digest(image.descriptor)}" for n in names] or None),
        "Parent": "",
        "Comment": next((h.comment for h in reversed(cfg.history) if h.comment), ""),
        "Created": cfg.created or ZERO_TIME,
        "Config": container_config_struct(cfg.config),
        "Author": cfg.author or "",
        "Architecture": cfg.architecture,
        "Variant": cfg.variant or "",
        "Os": cfg.os,
        "Size": size,
        "VirtualSize": size,
        "GraphDriver": Struct("GraphDriverData", {"Name": "overlay",
                                                  "Data": {"LowerDir": ":".join(layers)} if layers else NIL_MAP}),
        "RootFS": Struct("RootFS", {"Type": cfg.rootfs.type, "Layers": _list(cfg.rootfs.diff_ids)}),
        "Labels": _map(cfg.config.labels),
        "ManifestType": image.manifest.media_type,
        "User": cfg.config.user or "",
        "History": _list(history or None),
        "ChainIDs": _list(image.chain_ids),
    })


def volume_struct(vol: "Volume") -> Struct:
    return Struct("InspectVolumeData", {
        "Name": vol.name,
        "Driver": "local",
        "Mountpoint": vol.mountpoint,
        "CreatedAt": format_time(vol.created),
        "Labels": dict(vol.labels),
        "Scope": "local",
        "Options": {},
        "Anonymous": vol.anonymous,
        "NeedsCopyUp": vol.needs_copy_up,
    })


def _bundle_env(c: "Container") -> list[str] | None:
    try:
        fd = os.open(os.path.join(c.bundle, "config.json"), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            return list(json.load(fh)["process"]["env"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _net_record(c: "Container") -> dict[str, Any]:
    try:
        fd = os.open(os.path.join(c.home, "net.json"), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as fh:
            doc = json.load(fh)
        return doc if isinstance(doc, dict) else {}
    except (OSError, ValueError):
        return {}


def _mounts(c: "Container", root: str) -> list[Struct]:
    from pybuild.volumes import VolumeStore
    from pybuild.volumes.spec import MountSpec

    out = []
    for m in (MountSpec.from_dict(d) for d in c.mount_specs):
        source = m.source
        if m.type == "volume":
            source = os.path.join(VolumeStore(root).dir, m.source, "_data")
        out.append(Struct("MountPoint", {
            "Type": m.type, "Name": m.source if m.type == "volume" else "", "Source": source,
            "Destination": m.destination, "Driver": "local" if m.type == "volume" else "",
            "Mode": "ro" if m.readonly else "", "RW": not m.readonly,
            "Propagation": m.options[0] if m.type == "bind" and m.options else ""}))
    return out


def _port_bindings(c: "Container") -> dict[str, list[Struct]]:
    from pybuild.net.model import parse_port

    out: dict[str, list[Struct]] = {}
    for p in (parse_port(text) for text in c.ports):
        out.setdefault(f"{p.container_port}/{p.protocol}", []).append(
            Struct("PortBinding", {"HostIp": p.host_ip, "HostPort": str(p.host_port)}))
    return out


def container_struct(store: "Store", c: "Container") -> Struct:
    from pybuild.commands.run import request_of, run_config

    state = c.runtime_state()
    status = c.status()
    running = status in ("running", "paused")
    code = c.exit_code()
    req = request_of(c) if c.request else None
    from pybuild.errors import PybuildError

    try:
        image = store.load_image(c.image_ref)
    except PybuildError:  # the image was removed since: what the record says is still shown
        image = None
    cfg = run_config(image, req).config if image is not None and req is not None else None
    net = _net_record(c) if running else {}
    hostname = (req.hostname if req else None) or c.id[:12]
    bindings = _port_bindings(c)
    layers = [store.layer_dir(ch) for ch in reversed(image.chain_ids)] if image is not None else []
    root = os.path.dirname(os.path.dirname(c.home))
    config_extra = {"AttachStdin": bool(req and req.interactive), "AttachStdout": not c.detached,
                    "AttachStderr": not c.detached, "Tty": False, "OpenStdin": bool(req and req.interactive),
                    "StdinOnce": bool(req and req.interactive)}
    if cfg is not None:
        config = container_config_struct(cfg, hostname, c.image, _bundle_env(c), config_extra)
    else:
        config = Struct("Config", {"Hostname": hostname, "Image": c.image, "Cmd": _list(c.command)})
    if cfg is not None and bindings:  # published ports are exposed too, as docker records them
        exposed = dict(config["ExposedPorts"] or {})
        exposed.update({k: Struct("struct {}") for k in bindings})
        config["ExposedPorts"] = exposed
    network = Struct("NetworkSettings", {
        "Bridge": net.get("bridge", "") if running else "",
        "SandboxKey": f"/proc/{state['pid']}/ns/net" if running and state and state.get("pid") else "",
        "Ports": bindings if running else NIL_MAP,
        "Gateway": net.get("gateway", ""),
        "IPAddress": net.get("address", ""),
        "IPPrefixLen": int(net.get("prefix", 0)),
        "Networks": {c.network: Struct("EndpointSettings", {
            "Gateway": net.get("gateway", ""), "IPAddress": net.get("address", ""),
            "IPPrefixLen": int(net.get("prefix", 0)), "NetworkID": c.network})} if c.network != "host" else NIL_MAP,
    })
    return Struct("InspectContainerData", {
        "Id": c.id,
        "Created": format_time(c.created),
        "Path": c.command[0] if c.command else "",
        "Args": _list(c.command[1:]),
        "State": Struct("ContainerState", {
            "Status": status, "Running": running, "Paused": status == "paused", "Restarting": False,
            "Dead": False, "Pid": int(state.get("pid") or 0) if running and state else 0,
            "ExitCode": code if code is not None and not running else 0, "Error": "",
            "StartedAt": _mtime(os.path.join(c.home, "pid")),
            "FinishedAt": _mtime(os.path.join(c.home, "exit.json")) if not running else ZERO_TIME}),
        "Image": c.image_id,
        "ImageName": c.image,
        "ResolvConfPath": os.path.join(c.bundle, "resolv.conf"),
        "HostnamePath": os.path.join(c.bundle, "hostname"),
        "HostsPath": os.path.join(c.bundle, "hosts"),
        "LogPath": c.log if c.detached else "",
        "Name": c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "OCIRuntime": runtime_name(c.runtime),
        "OCIConfigPath": os.path.join(c.bundle, "config.json"),
        "GraphDriver": Struct("GraphDriverData", {"Name": "overlay", "Data": {
            "LowerDir": ":".join(layers), "UpperDir": os.path.join(c.fs, "upper"),
            "WorkDir": os.path.join(c.fs, "work"), "MergedDir": os.path.join(c.fs, "merged")}}),
        "Mounts": _mounts(c, root),
        "Config": config,
        "HostConfig": Struct("HostConfig", {
            "Binds": _list([f"{m['Name'] or m['Source']}:{m['Destination']}" + (":ro" if not m["RW"] else "")
                            for m in _mounts(c, root) if m["Type"] in ("bind", "volume")] or None),
            "NetworkMode": c.network,
            "PortBindings": bindings or NIL_MAP,
            "AutoRemove": c.remove,
            "Runtime": runtime_name(c.runtime),
            "Tmpfs": {m.destination: ",".join(m.options) for m in _tmpfs(c)} or NIL_MAP,
        }),
        "NetworkSettings": network,
    })


def _tmpfs(c: "Container") -> list[Any]:
    from pybuild.volumes.spec import MountSpec

    return [MountSpec.from_dict(d) for d in c.mount_specs if d.get("type") == "tmpfs"]
