"""`pybuild commit CONTAINER [NAME]`: the container's changes as a new layer on its image (docker commit).

The overlay's upper dir *is* the container's diff (as for a RUN step), so the
layer is written from it directly. What the runtime or the run mounted over the
rootfs (/proc, /dev, /sys, the generated /etc/hosts, resolv.conf and hostname,
-v and --tmpfs destinations) is excluded: it is not the container's change, and
the generated files are never committed. The new image's config is the image's
with the run's overrides (command, entrypoint, env, working dir, user), as docker
records them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from pybuild import fault_point
from pybuild.containers import Container, ContainerError
from pybuild.errors import PybuildError
from pyrunc.record import replace

if TYPE_CHECKING:
    from pybuild.store import Store


def commit_container(store: "Store", c: Container, name: str | None, message: str | None = None,
                     author: str | None = None) -> str:
    from pybuild.layer import commit_layer
    from pybuild.mutate import Mutator
    from pybuild.runtime import SYSTEM_MOUNTS

    upper = os.path.join(c.fs, "upper")
    if not os.path.isdir(upper):
        raise ContainerError(f"commit {c.name}: the container has no filesystem (it never started)")
    with store.using():
        try:
            base = store.load_image(c.image_ref)
        except PybuildError as err:  # ImageNotFound, StoreError: the image was removed meanwhile
            raise ContainerError(f"commit {c.name}: its image {c.image} is gone: {err}") from None
        m = Mutator(store, base)
        cfg = m.config.config
        over = c.config
        changes = {}
        if "entrypoint" in over:
            changes["entrypoint"] = tuple([over["entrypoint"]] if over["entrypoint"] else [])
            changes["cmd"] = None
        if over.get("cmd"):
            changes["cmd"] = tuple(over["cmd"])
        if over.get("env"):
            keys = {e.partition("=")[0] for e in over["env"]}
            changes["env"] = tuple(e for e in cfg.env if e.partition("=")[0] not in keys) + tuple(over["env"])
        if over.get("workdir"):
            changes["working_dir"] = over["workdir"]
        if over.get("user"):
            changes["user"] = over["user"]
        if changes:
            m.set_config(replace(cfg, **changes))
        exclude = list(SYSTEM_MOUNTS) + list(c.mounts)
        desc, digests = commit_layer(store, upper, exclude=exclude)
        fault_point("commit.layer-blob")
        m.add_layer(desc, digests.diff_id, created_by=f"pybuild commit {c.id[:12]}", comment=message)
        if author:
            m.set_author(author)
        manifest = m.commit()
        fault_point("commit.image-written")
        if name:
            store.tag(name, manifest)
    return store.read_manifest(manifest.digest).config.digest
