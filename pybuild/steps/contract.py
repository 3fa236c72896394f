"""The step contract: what a step is given (the typed instruction, the stage being built, the
build's services) and what it hands back.

Every Dockerfile instruction after FROM is run by a Step (kaniko's
DockerCommand, osbuild's stages): `prepare()` expands the typed instruction
(`pybuild.dockerfile.instructions`, already checked by the parser layer) and
names its cache inputs, `apply()` produces the new image config and, for
steps that touch the filesystem, a diff directory (an overlay upper dir).
The builder loop never switches on the instruction type; it only calls
these two methods and commits what `apply()` returns. A step raises
`InstructionError` for what it cannot do; the builder adds the line.

Invariant: `prepare()` has no side effects beyond reading the context (and
downloading an ADD URL without --checksum, whose content is its cache input),
so a cache hit never mounts, runs or writes anything.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol, runtime_checkable

from pybuild.image import ContainerConfig, Descriptor, History, ImageConfig
from pyrunc.record import NEW_DICT, Record, replace

if TYPE_CHECKING:
    from pybuild.cache import Cache
    from pybuild.dockerfile.instructions import Instruction
    from pybuild.context import BuildContext
    from pybuild.progress import Progress
    from pybuild.dockerfile.shell_words import ShellLex
    from pybuild.buildtemp import BuildTemp
    from pybuild.store import Store

@dataclass
class StageState:
    """An image being built: what one step hands to the next."""

    config: ImageConfig
    layers: tuple[Descriptor, ...]
    key: str                               # cache chain key so far
    base_digest: str | None                # the FROM image's config digest
    args: dict[str, str | None] = field(default_factory=dict)   # ARGs declared in this stage
    global_args: dict[str, str] = field(default_factory=dict)   # ARGs before the first FROM (+ defaults)
    lowers: list[str] | None = None        # unpacked layer dirs, bottom first (filled on demand)
    cmd_set: bool = False                  # a CMD appeared in this stage (ENTRYPOINT keeps it)
    meta_run: str | None = None            # key the current run of metadata-only steps started from
    # Metadata steps keep their cost proportional to the instruction, not to the config so far
    # (a Dockerfile of n LABEL or ENV lines must be O(n)): history entries of a run of metadata steps
    # wait here until a filesystem step or the stage end folds them in (builder.fold_history), and the
    # dicts below are owned by this state and updated in place, rebuilt only when `config` was
    # replaced from outside (a cache hit, a new base).
    pending_history: list[History] = field(default_factory=list)
    own_labels: dict[str, str] | None = None
    _env_for: tuple[str, ...] | None = None       # the config env tuple the caches below describe
    _env_only: dict[str, str] = field(default_factory=dict)
    _env_pos: dict[str, int] = field(default_factory=dict)
    _env_last: dict[str, int] = field(default_factory=dict)
    _merged: dict[str, str] | None = None

    @property
    def container(self) -> ContainerConfig:
        return self.config.config

    def _env_caches(self) -> None:
        env = self.container.env
        if self._env_for is not env:
            self._env_only, self._env_pos, self._env_last = {}, {}, {}
            for i, item in enumerate(env):
                key, _, value = item.partition("=")
                self._env_only[key] = value           # a later duplicate wins for lookups,
                self._env_pos.setdefault(key, i)      # ENV replaces the first, as before
                self._env_last[key] = i
            self._env_for = env
            self._merged = None

    def env(self) -> dict[str, str]:
        """The expansion environment: ARG values, overridden by ENV (BuildKit's order).
        Shared and kept up to date by set_arg/set_env: callers must not modify it."""
        self._env_caches()
        if self._merged is None:
            merged = {k: v for k, v in self.args.items() if v is not None}
            merged.update(self._env_only)
            self._merged = merged
        return self._merged

    def set_arg(self, key: str, value: str | None) -> None:
        self.args[key] = value
        if self._merged is not None and self._env_for is self.container.env and key not in self._env_only:
            if value is None:
                self._merged.pop(key, None)
            else:
                self._merged[key] = value

    def set_env(self, pairs: list[tuple[str, str]]) -> tuple[str, ...]:
        """ENV: the new env tuple (a key keeps its position, a new one goes last), caches updated."""
        self._env_caches()
        env = list(self.container.env)
        for key, value in pairs:
            pos = self._env_pos.get(key)
            if pos is None:
                self._env_pos[key] = self._env_last[key] = len(env)
                env.append(f"{key}={value}")
            else:
                env[pos] = f"{key}={value}"
                if pos != self._env_last[key]:
                    continue  # a later duplicate (from a base image) still wins for lookups
            self._env_only[key] = value
            if self._merged is not None:
                self._merged[key] = value
        new = tuple(env)
        self._env_for = new
        return new

    def labels_to_update(self) -> dict[str, str]:
        """A labels dict this state owns (copied once from the config), to update in place."""
        if self.own_labels is None or self.container.labels is not self.own_labels:
            self.own_labels = dict(self.container.labels)
        return self.own_labels

    def arg_values(self) -> dict[str, str]:
        return {k: v for k, v in self.args.items() if v is not None}


class Prepared(Record):
    """A step's expanded form and cache inputs."""

    text: str                      # the expanded instruction (progress, cache key)
    sources: str | None = None     # content digest of COPY/ADD sources
    files: dict[str, str] = NEW_DICT   # per-file digests for --explain-cache
    extra: dict = NEW_DICT             # anything else the key must cover
    payload: object = None         # what apply() needs (resolved sources, downloads)


class Outcome(Record):
    """What a step produced: the new container config, the history line,
    and the diff dir (None for metadata-only steps)."""

    config: ImageConfig
    created_by: str
    diff: str | None = None
    base_lowers: list[str] | None = None   # the lowers the diff was made on


@dataclass
class BuildEnv:
    """Build-wide services the steps use."""

    store: "Store"
    cache: "Cache"
    context: "BuildContext"
    temp: "BuildTemp"
    progress: "Progress"
    lex: "ShellLex"
    runtime: list[str]
    network: str = "bridge"
    secrets: dict[str, str] = field(default_factory=dict)
    host_ca: bool = True
    build_args: dict[str, str] = field(default_factory=dict)
    proxy_env: dict[str, str] = field(default_factory=dict)
    lowers_of: Callable[[str], list[str]] | None = None       # --from name → lowers
    key_of: Callable[[str], str] | None = None                # --from name → cache key/digest
    ensure_lowers: Callable[[StageState], list[str]] | None = None
    stack: contextlib.ExitStack | None = None
    dockerfile: str = "Dockerfile"                            # its name, for StepFailed messages


@runtime_checkable
class Step(Protocol):
    """`record`: the instruction record this step runs (`RunInstr`), the step's own declaration
    that `table.STEPS` collects. `metadata_only`: the step changes the config alone (no overlay,
    no layer, its cache record is a timestamp). `prepare` must not write anything (module
    docstring)."""

    record: "type[Instruction]"
    metadata_only: bool

    def prepare(self, b: BuildEnv, st: StageState, ins: "Instruction") -> Prepared: ...

    def apply(self, b: BuildEnv, st: StageState, ins: "Instruction", prep: Prepared) -> Outcome: ...


def with_container(st: StageState, **fields: object) -> ImageConfig:
    return replace(st.config, config=replace(st.container, **fields))
