"""Volumes in a container's life: made before it runs, filled on first use, removed with `--rm`.

    ensure(root, specs)                 the named (made on first use, as docker) and anonymous volumes
    runtime_mounts(root, specs, rootfs) the OCI mounts, after the copy-up of new volumes from the
                                        image's tree at their path (rootfs: the mounted overlay)
    remove_anonymous(store, c)          a removed container's anonymous volumes, when no other uses them
    discard(root, specs)                the anonymous volumes of a container that never ran

Order of locks: the containers' lock, then the volumes' lock (see pybuild.volumes).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from pybuild.volumes import NoSuchVolume, VolumeError, VolumeStore, volume_names
from pybuild.volumes.spec import MountSpec, oci_mount

if TYPE_CHECKING:
    from pybuild.containers import Container, ContainerStore


def ensure(root: str, specs: list[MountSpec]) -> None:
    store = VolumeStore(root)
    for spec in specs:
        if spec.type == "volume":
            store.create(spec.source, anonymous=spec.anonymous, exist_ok=True)


def runtime_mounts(root: str, specs: list[MountSpec], rootfs: str) -> list[dict[str, Any]]:
    """OCI mounts for `specs`; a volume no container has mounted yet first gets the image's
    content at its destination (unless nocopy), under the volume's copy lock."""
    from pybuild.volumes.copyup import copy_up

    store = VolumeStore(root)
    out = []
    for spec in specs:
        if spec.type != "volume":
            out.append(oci_mount(spec))
            continue
        vol = store.get(spec.source)
        if vol.needs_copy_up:
            with store.copy_lock(vol):
                vol = store.get(spec.source)
                if vol.needs_copy_up:
                    if not spec.nocopy:
                        copy_up(rootfs, spec.destination, vol.mountpoint)
                    store.mark_populated(vol)
        out.append(oci_mount(spec, vol.mountpoint))
    return out


def remove_anonymous(containers: "ContainerStore", c: "Container") -> None:
    anonymous = [m["source"] for m in c.mount_specs if m.get("type") == "volume" and m.get("anonymous")]
    if not anonymous:
        return
    store = VolumeStore(containers.root)
    with containers.locked(), store.locked():
        users = {n for other in containers.list() for n in volume_names(other)}
        for name in anonymous:
            if name in users:
                continue
            with contextlib.suppress(NoSuchVolume):
                store.remove(store.get(name))


def discard(root: str, specs: list[MountSpec]) -> None:
    """Remove the anonymous volumes made for a container whose record is already gone
    (clean-up on a failed run: an error here must not hide the run's own)."""
    from pybuild.containers import ContainerStore

    with contextlib.suppress(VolumeError, OSError):
        remove_anonymous(ContainerStore(root), _Record([s.to_dict() for s in specs]))


class _Record:
    def __init__(self, mount_specs: list[dict]) -> None:
        self.mount_specs = mount_specs

