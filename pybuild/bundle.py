"""`pybuild bundle NAME DIR`: an image as an OCI runtime bundle that `pyrunc run` (or runc) runs directly.

DIR/rootfs is the image flattened (every layer applied in order, whiteouts honoured); DIR/config.json is
runc's default spec (pyrunc.spec.default_config) adjusted to the image config, as docker's
`container create` would: process.args = Entrypoint + Cmd, env = the image Env (PATH defaulted as docker
does), cwd = WorkingDir or /, user resolved through the image's own /etc/passwd and /etc/group (never the
host's), no terminal, a writable root, docker's default capability set, hostname from the image name.
An image with neither Entrypoint nor Cmd is refused: there would be nothing to run.

Public API
  make_bundle(store, image, bundle_dir, rootless=False, hostname=None) -> str   (path of config.json)
  bundle_config(image_config, rootfs, rootless=False, hostname=None) -> dict    (pure except the user
      lookup in rootfs)
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from pybuild.errors import PybuildError
from pybuild.image import ImageConfig
from pyrunc.fsutil import atomic_write

if TYPE_CHECKING:
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


def make_bundle(store: Store, image: StoredImage, bundle_dir: str, rootless: bool = False,
                hostname: str | None = None) -> str:
    from pybuild.export import flatten
    from pyrunc.fsutil import rmtree_nofollow

    rootfs = os.path.join(bundle_dir, "rootfs")
    if os.path.lexists(rootfs) and (os.path.islink(rootfs) or not os.path.isdir(rootfs) or os.listdir(rootfs)):
        raise BundleError(f"bundle: {rootfs}: exists and is not empty (or not a directory)")
    made = [d for d in (bundle_dir, rootfs) if not os.path.lexists(d)]
    os.makedirs(rootfs, exist_ok=True)
    try:
        os.chmod(rootfs, 0o755)
        flatten(store, image, rootfs)
        spec = bundle_config(image.config, rootfs, rootless=rootless, hostname=hostname)
        path = os.path.join(bundle_dir, "config.json")
        atomic_write(path, (json.dumps(spec, indent="\t") + "\n").encode())
    except BaseException:
        # leave nothing behind: the outermost dir made here, or what went into the (empty) rootfs
        if made:
            rmtree_nofollow(made[0])
        else:
            for name in os.listdir(rootfs):
                rmtree_nofollow(os.path.join(rootfs, name))
        raise
    return path
