"""The step cache: a hash chain of step keys → (image config, layer descriptors).

key(step) = sha256(parent key, expanded instruction, content digest of its
COPY/ADD sources, build args in scope). The first parent is the base image's
config digest, so a changed base, instruction, source file or build arg
changes this key and every key after it (osbuild's stage ids, kaniko's
composite keys). Secrets never enter a key: only their ids appear in the
instruction text.

Records live beside the OCI layout, in `<root>/cache/`:
- `steps/<hex>.json`: the image config after the step (inline JSON, so no
  dangling config blobs) and the manifest layer descriptors so far. A record
  is only used if every layer blob it names is still in the store (after a
  prune it is a miss, never an error).
- `meta/<hex of the key a run starts from>.json`: a run of consecutive
  metadata-only steps (ENV, LABEL, CMD, ...) keeps only their history
  timestamps, by step key, in one file written once per run. Its config is a pure function of the parent state and
  the instruction, both covered by the key, so it is recomputed on a hit; a
  full config per step would make a Dockerfile of n LABEL lines cost O(n²)
  (each record the size of everything before it).
- `stages/<hex of stage identity>.json`: the inputs of each step of the last few
  builds of one stage (same context dir, Dockerfile and stage), which
  `--explain-cache` diffs against to say *what changed*.
Both are written atomically (temp + rename), so a killed build leaves only
whole records.

The records a build used are tracked per stage (`used_steps`, `used_meta`) so that `--cache-to`
(pybuild.cache_transfer) can export them; records imported by `--cache-from` name layer blobs that
`usable()` fetches from the imported cache only when a step hits.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Any

from pyrunc.fsutil import atomic_write
from pyrunc.record import NEW_DICT, Record

KEEP_BUILDS = 8


def step_key(parent: str, instruction: str, sources: str | None, args: dict[str, str],
             extra: dict[str, Any] | None = None) -> str:
    """The cache key of one step (hex sha256 of a canonical JSON document)."""
    doc = {"parent": parent, "instruction": instruction, "sources": sources,
           "args": dict(sorted(args.items())), "extra": extra or {}}
    return "sha256:" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


class StepInputs(Record):
    """What went into one step's key, kept for --explain-cache."""

    key: str
    text: str
    scope: dict[str, str]          # ARG and ENV values in scope ("ARG X", "ENV Y" → value)
    base: str | None = None        # base image digest (first step of a stage)
    sources: dict[str, str] = NEW_DICT  # context path → digest

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "text": self.text, "scope": self.scope, "base": self.base,
                "sources": self.sources}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StepInputs":
        return cls(key=d["key"], text=d["text"], scope=dict(d.get("scope") or {}),
                   base=d.get("base"), sources=dict(d.get("sources") or {}))


class CacheRecord(Record):
    config: dict[str, Any]          # the image config JSON after the step
    layers: list[dict[str, Any]]    # manifest layer descriptors so far (bottom first)


class Cache:
    def __init__(self, root: str) -> None:
        self.steps_dir = os.path.join(root, "cache", "steps")
        self.meta_dir = os.path.join(root, "cache", "meta")
        self.stages_dir = os.path.join(root, "cache", "stages")
        for d in (self.steps_dir, self.meta_dir, self.stages_dir):
            os.makedirs(d, exist_ok=True)
        self._meta_parent: str | None = None
        self._meta: dict[str, str] = {}
        self._meta_dirty = False
        # What this build used, per stage index (for --cache-to), and where blobs of imported records
        # can be fetched from (--cache-from): digest -> fetch(descriptor dict).
        self.stage: int = 0
        self.used_steps: dict[str, int] = {}
        self.used_meta: dict[str, int] = {}
        self.remote_blobs: dict[str, Callable[[dict[str, Any]], None]] = {}

    def _step_path(self, key: str) -> str:
        return os.path.join(self.steps_dir, key.split(":", 1)[-1] + ".json")

    def lookup(self, key: str) -> CacheRecord | None:
        try:
            with open(self._step_path(key), "rb") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # a torn record cannot exist (atomic writes); treat junk as a miss
        return CacheRecord(config=doc["config"], layers=list(doc["layers"]))

    def record(self, key: str, rec: CacheRecord) -> None:
        data = json.dumps({"key": key, "config": rec.config, "layers": rec.layers}, sort_keys=True)
        atomic_write(self._step_path(key), data.encode(), durable=False)
        self.used_steps.setdefault(key, self.stage)

    def usable(self, store: Any, key: str, rec: CacheRecord) -> bool:
        """A hit needs every layer blob: in the store, or fetched now from an imported cache
        (--cache-from, fetched only when a step hits, as BuildKit's registry cache). Marks the key used."""
        for layer in rec.layers:
            if not store.has_blob(layer["digest"]):
                fetch = self.remote_blobs.get(layer["digest"])
                if fetch is None:
                    return False
                fetch(layer)
        self.used_steps.setdefault(key, self.stage)
        return True

    # --- metadata-only steps: one small file per run of consecutive ones ----------
    def _meta_path(self, run_parent: str) -> str:
        return os.path.join(self.meta_dir, run_parent.split(":", 1)[-1] + ".json")

    def _load_meta(self, run_parent: str) -> dict[str, str]:
        if self._meta_parent == run_parent:
            return self._meta
        self.flush_meta()
        try:
            with open(self._meta_path(run_parent), "rb") as fh:
                doc = json.load(fh)
        except (FileNotFoundError, ValueError):
            doc = {}
        entries = doc.get("created") if isinstance(doc, dict) else None
        self._meta_parent = run_parent
        self._meta = {k: v for k, v in entries.items() if isinstance(v, str)} if isinstance(entries, dict) else {}
        return self._meta

    def lookup_meta(self, run_parent: str, key: str) -> str | None:
        """The history timestamp recorded for a metadata-only step (`run_parent`: the key the run of
        metadata steps it belongs to started from), or None (a miss)."""
        found = self._load_meta(run_parent).get(key)
        if found is not None:
            self.used_meta.setdefault(run_parent, self.stage)
        return found

    def record_meta(self, run_parent: str, key: str, created: str) -> None:
        """Buffered: a run of n steps is written once (flush_meta), not n times."""
        self._load_meta(run_parent)[key] = created
        self._meta_dirty = True
        self.used_meta.setdefault(run_parent, self.stage)

    def meta_entries(self, run_parent: str) -> dict[str, str]:
        return dict(self._load_meta(run_parent))

    def merge_meta(self, run_parent: str, entries: dict[str, str]) -> None:
        """Add imported timestamps (--cache-from) without replacing local ones."""
        mine = self._load_meta(run_parent)
        for key, created in entries.items():
            if key not in mine and isinstance(created, str):
                mine[key] = created
                self._meta_dirty = True
        self.flush_meta()

    def flush_meta(self) -> None:
        if self._meta_dirty and self._meta_parent is not None:
            doc = {"parent": self._meta_parent, "created": self._meta}
            atomic_write(self._meta_path(self._meta_parent), json.dumps(doc, sort_keys=True).encode(),
                         durable=False)
        self._meta_dirty = False

    def forget(self, key: str) -> None:
        try:
            os.unlink(self._step_path(key))
        except FileNotFoundError:
            pass

    # --- per-stage history for --explain-cache ------------------------------
    def _stage_path(self, stage_id: str) -> str:
        return os.path.join(self.stages_dir, hashlib.sha256(stage_id.encode()).hexdigest() + ".json")

    def stage_builds(self, stage_id: str) -> list[list[StepInputs]]:
        try:
            with open(self._stage_path(stage_id), "rb") as fh:
                doc = json.load(fh)
        except (FileNotFoundError, ValueError):
            return []
        return [[StepInputs.from_dict(s) for s in build] for build in doc.get("builds", [])]

    def save_stage_build(self, stage_id: str, steps: list[StepInputs]) -> None:
        builds = [b for b in self.stage_builds(stage_id)
                  if [s.key for s in b] != [s.key for s in steps]]
        builds.insert(0, steps)
        doc = {"stage": stage_id, "builds": [[s.to_dict() for s in b] for b in builds[:KEEP_BUILDS]]}
        atomic_write(self._stage_path(stage_id), json.dumps(doc, sort_keys=True).encode(), durable=False)


def nearest_build(builds: list[list[StepInputs]], done: list[StepInputs]) -> list[StepInputs] | None:
    """The earlier build sharing the longest prefix of keys with the steps done so far."""
    best, best_len = None, -1
    for build in builds:
        n = 0
        while n < len(done) and n < len(build) and build[n].key == done[n].key:
            n += 1
        if n > best_len:
            best, best_len = build, n
    return best


def _short(value: str | None, limit: int = 60) -> str:
    if value is None:
        return "(unset)"
    return repr(value if len(value) <= limit else value[:limit] + "…")


def explain(old: StepInputs | None, new: StepInputs, parent_rebuilt: bool) -> list[str]:
    """Human lines saying why `new` missed the cache, compared with `old`
    (the same step of the nearest earlier build)."""
    if old is None:
        return ["no earlier build of this stage reached this step"]
    reasons: list[str] = []
    if old.base != new.base:
        reasons.append(f"base image changed: {old.base or '(none)'} → {new.base or '(none)'}")
    if old.text != new.text:
        reasons.append(f"instruction changed: {old.text!r} → {new.text!r}")
    for name in sorted(set(old.scope) | set(new.scope)):
        a, b = old.scope.get(name), new.scope.get(name)
        if a != b:
            reasons.append(f"{name} changed: {_short(a)} → {_short(b)}")
    added = sorted(set(new.sources) - set(old.sources))
    removed = sorted(set(old.sources) - set(new.sources))
    changed = sorted(p for p in set(old.sources) & set(new.sources) if old.sources[p] != new.sources[p])
    for label, paths in (("added", added), ("removed", removed), ("changed", changed)):
        if paths:
            shown = ", ".join(paths[:10]) + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")
            reasons.append(f"source files {label}: {shown}")
    if not reasons:
        if parent_rebuilt:
            reasons.append("an earlier step of this stage was rebuilt")
        elif old.key == new.key:
            reasons.append("the cached result is gone from the store (pruned)")
        else:
            reasons.append("the parent image changed")
    return reasons
