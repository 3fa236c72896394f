"""`pybuild bundle NAME DIR`: an image as an OCI runtime bundle that `pyrunc run` (or runc) runs directly.

DIR/rootfs is the image flattened (every layer applied in order, whiteouts honoured); DIR/config.json is
runc's default spec (pyrunc.spec.default_config) adjusted to the image config, as docker's
`container create` would: process.args = Entrypoint + Cmd, env = the image Env (PATH defaulted as docker
does), cwd = WorkingDir or /, user resolved through the image's own /etc/passwd and /etc/group (never the
host's), no terminal, a writable root, docker's default capability set, hostname from the image name.
An image with neither Entrypoint nor Cmd is refused: there would be nothing to run.

Network (`apply_network`): `bridge` (docker's default) gives the container a network namespace that
pybuild.net's createRuntime hook puts on the bridge with the published ports (`-p`), and its poststop
hook takes off again, so a plain `pyrunc run` (or runc, crun) of the bundle gets its ports; `none` an
empty namespace; `host` the host's. /etc/hosts, /etc/resolv.conf and /etc/hostname are files of the
bundle, bind-mounted, as docker's init layer.

Public API
  make_bundle(store, image, bundle_dir, rootless=False, hostname=None, network="bridge", ports=(),
              net=None) -> str   (path of config.json)
  bundle_config(image_config, rootfs, rootless=False, hostname=None) -> dict    (pure except the user
      lookup in rootfs)
  apply_network(spec, bundle_dir, network, ports, hostname, net) -> None   (writes the /etc files)
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Sequence

from pybuild.errors import PybuildError
from pybuild.image import ImageConfig
from pyrunc.fsutil import atomic_write

if TYPE_CHECKING:
    from pybuild.net.model import NetSettings, PortMapping
    from pybuild.store import Store, StoredImage

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# docker's default capabilities for a container (moby oci/caps/defaults.go).
DOCKER_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
               "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
               "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


class BundleError(PybuildError):
    pass


def bundle_config(image_config: ImageConfig, rootfs: str, rootless: bool = False,
                  hostname: str | None = None) -> dict[str, Any]:
    from pybuild.steps.users import resolve_user
    from pyrunc.spec import default_config

    cfg = image_config.config
    args = list(cfg.entrypoint or ()) + list(cfg.cmd or ())
    if not args:
        raise BundleError("bundle: the image has neither Entrypoint nor Cmd: nothing to run")
    env = list(cfg.env)
    if not any(item.startswith("PATH=") for item in env):
        env.insert(0, f"PATH={DEFAULT_PATH}")
    if not any(item.startswith("HOSTNAME=") for item in env) and hostname:
        env.append(f"HOSTNAME={hostname}")
    ids = resolve_user(rootfs, cfg.user)
    spec = default_config(rootless=rootless)
    process = spec["process"]
    process["terminal"] = False
    process["args"] = args
    process["env"] = env
    process["cwd"] = cfg.working_dir or "/"
    process["user"] = {"uid": ids.uid, "gid": ids.gid}
    if ids.additional_gids:
        process["user"]["additionalGids"] = list(ids.additional_gids)
    caps = DOCKER_CAPS if not rootless else process["capabilities"]["bounding"]
    process["capabilities"] = {k: list(caps) for k in ("bounding", "effective", "permitted")}
    process["noNewPrivileges"] = False  # docker's default; no_new_privs would defeat setuid binaries
    spec["root"] = {"path": "rootfs", "readonly": False}
    spec["hostname"] = hostname or "pybuild"
    return spec


def apply_network(spec: dict[str, Any], bundle_dir: str, network: str = "bridge",
                  ports: Sequence[PortMapping] = (), hostname: str = "pybuild",
                  net: NetSettings | None = None, netns: str | None = None, address: str | None = None) -> None:
    """Set `spec`'s network namespace, hooks and /etc mounts for `network`;
    write the /etc files into `bundle_dir`. With `netns` (a namespace the
    caller already put on the bridge, `pybuild run`) the spec joins it and
    gets no hooks."""
    from pybuild.runtime import NETWORKS, etc_files

    if network not in NETWORKS:
        raise BundleError(f"--network {network}: expected bridge, host or none")
    if ports and network != "bridge":
        raise BundleError(f"-p {ports[0].text()}: publishing ports needs --network bridge")
    linux = spec.setdefault("linux", {})
    namespaces = [n for n in linux.get("namespaces", []) if n.get("type") != "network"]
    if network != "host":
        namespaces.append({"type": "network", **({"path": netns} if netns else {})})
    linux["namespaces"] = namespaces
    if network == "bridge" and not netns:
        if any(n.get("type") == "user" for n in namespaces):
            raise BundleError("--network bridge: needs root (a rootless bundle takes --network none or host)")
        from pybuild.net.hook import hook_config
        from pybuild.net.model import NetSettings

        hooks = hook_config(net or NetSettings.from_env(), ports, hosts=os.path.join(bundle_dir, "hosts"),
                            hostname=hostname)
        for kind, entries in hooks.items():
            spec.setdefault("hooks", {}).setdefault(kind, []).extend(entries)
    mounts = [m for m in spec.get("mounts", []) if m.get("destination") not in _ETC]
    for name, data in etc_files(network, hostname, address).items():
        path = os.path.join(bundle_dir, name)
        atomic_write(path, data)
        mounts.append({"destination": f"/etc/{name}", "type": "bind", "source": path,
                       "options": ["rbind", "rprivate"]})
    spec["mounts"] = mounts


_ETC = ("/etc/hosts", "/etc/resolv.conf", "/etc/hostname")


def make_bundle(store: Store, image: StoredImage, bundle_dir: str, rootless: bool = False,
                hostname: str | None = None, network: str = "bridge", ports: Sequence[PortMapping] = (),
                net: NetSettings | None = None) -> str:
    from pybuild.export import flatten
    from pyrunc.fsutil import rmtree_nofollow

    rootfs = os.path.join(bundle_dir, "rootfs")
    if os.path.lexists(rootfs) and (os.path.islink(rootfs) or not os.path.isdir(rootfs) or os.listdir(rootfs)):
        raise BundleError(f"bundle: {rootfs}: exists and is not empty (or not a directory)")
    if rootless and network == "bridge":
        raise BundleError("--network bridge: needs root (a rootless bundle takes --network none or host)")
    cfg = image.config.config
    if not (cfg.entrypoint or cfg.cmd):
        raise BundleError("bundle: the image has neither Entrypoint nor Cmd: nothing to run")
    made = [d for d in (bundle_dir, rootfs) if not os.path.lexists(d)]
    made_files = [os.path.join(bundle_dir, n) for n in ("hosts", "resolv.conf", "hostname")
                  if not os.path.lexists(os.path.join(bundle_dir, n))]
    os.makedirs(rootfs, exist_ok=True)
    try:
        os.chmod(rootfs, 0o755)
        flatten(store, image, rootfs)
        spec = bundle_config(image.config, rootfs, rootless=rootless, hostname=hostname)
        apply_network(spec, os.path.abspath(bundle_dir), network, ports, spec["hostname"], net)
        path = os.path.join(bundle_dir, "config.json")
        atomic_write(path, (json.dumps(spec, indent="\t") + "\n").encode())
    except BaseException:
        # leave nothing behind: the outermost dir made here, or what went into the (empty) rootfs
        if made:
            rmtree_nofollow(made[0])
        else:
            for name in os.listdir(rootfs):
                rmtree_nofollow(os.path.join(rootfs, name))
            for path in made_files:
                if os.path.lexists(path):
                    os.unlink(path)
        raise
    return path
