"""Base image + new layers + config changes -> committed config and manifest blobs (umoci's Mutator).

A Mutator holds an image being changed in memory; nothing reaches the store until `commit()`, which
writes the config blob, then the manifest blob (each atomically, content-addressed), and returns the
manifest descriptor. Tagging is a separate, explicit `store.tag(name, desc)`, so a failed build never
moves a tag. Layer blobs are written by `pybuild.layer.commit_layer` before `add_layer` is called; the
Mutator only checks that they are in the store.

Invariant kept: len(manifest.layers) == len(config.rootfs.diff_ids) == number of history entries without
empty_layer (docker's rule; `docker history` pairs them up).

Public API
  Mutator(store, base: StoredImage | None = None)          None = FROM scratch (host platform)
    .config -> ImageConfig, .layers -> tuple[Descriptor, ...], .diff_ids, .chain_id
    .set_config(container_config: ContainerConfig)        replace the `config` object
    .update(**fields)                                      record.replace on ContainerConfig fields
    .add_history(created_by, created=None, empty_layer=True, comment=None, author=None)
    .add_layer(desc, diff_id, created_by, created=None, comment=None)
    .set_created(ts_text) / .set_author(text)
    .commit(annotations=None) -> Descriptor (manifest; config blob digest = image ID)
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pybuild.errors import StoreError
from pybuild.image import (MT_CONFIG, MT_MANIFEST, ContainerConfig, Descriptor, History, ImageConfig, Manifest,
                           RootFS, chain_id, format_time, host_platform)
from pyrunc.record import replace

if TYPE_CHECKING:
    from pybuild.store import Store, StoredImage


class Mutator:
    def __init__(self, store: Store, base: StoredImage | None = None) -> None:
        self._store = store
        if base is None:
            platform = host_platform()
            self._config = ImageConfig(architecture=platform["architecture"], os=platform["os"])
            self._layers: tuple[Descriptor, ...] = ()
        else:
            self._config = base.config
            self._layers = tuple(d.with_annotations(None) for d in base.manifest.layers)

    @property
    def config(self) -> ImageConfig:
        return self._config

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        return self._layers

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return self._config.rootfs.diff_ids

    @property
    def chain_id(self) -> str | None:
        return chain_id(self.diff_ids)

    def set_config(self, container_config: ContainerConfig) -> None:
        self._config = replace(self._config, config=container_config)

    def update(self, **fields: Any) -> None:
        self.set_config(replace(self._config.config, **fields))

    def set_created(self, created: str) -> None:
        self._config = replace(self._config, created=created)

    def set_author(self, author: str | None) -> None:
        self._config = replace(self._config, author=author)

    def add_history(self, created_by: str, created: str | None = None, empty_layer: bool = True,
                    comment: str | None = None, author: str | None = None) -> None:
        entry = History(created=created or format_time(time.time()), created_by=created_by, author=author,
                        comment=comment, empty_layer=empty_layer)
        self._config = replace(self._config, history=self._config.history + (entry,))

    def add_layer(self, desc: Descriptor, diff_id: str, created_by: str, created: str | None = None,
                  comment: str | None = None) -> None:
        if not self._store.has_blob(desc.digest):
            raise StoreError(f"add layer: blob {desc.digest} is not in the store")
        rootfs = RootFS(diff_ids=self._config.rootfs.diff_ids + (diff_id,))
        self._config = replace(self._config, rootfs=rootfs)
        self._layers += (desc,)
        self.add_history(created_by, created, empty_layer=False, comment=comment)

    def commit(self, annotations: dict[str, str] | None = None) -> Descriptor:
        """Write config and manifest blobs; returns the manifest descriptor (untagged)."""
        if len(self._layers) != len(self._config.rootfs.diff_ids):
            raise StoreError(f"commit: {len(self._layers)} layers but {len(self._config.rootfs.diff_ids)} diff_ids")
        config_desc = self._store.put_json(self._config, MT_CONFIG)
        manifest = Manifest(config=config_desc, layers=self._layers, annotations=annotations)
        return self._store.put_json(manifest, MT_MANIFEST)
