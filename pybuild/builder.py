"""The build loop: Dockerfile → stages → steps → layers → a tagged image.

    image_id = build(BuildOptions(...))

Flow (DESIGN §5, STYLE §4): parse and check the Dockerfile (the parser and
`instructions` modules), pick the stages the target needs (FROM and
COPY/RUN --mount `from=` references, transitively), then for each stage:
resolve the base (an earlier stage, the store, or an oci:/oci-archive:/
docker-archive: reference), run its ONBUILD triggers, and for each
instruction compute the step's cache key; a hit reuses the recorded config
and layers without mounting or running anything, a miss applies the step and
commits its diff as a layer (or an `empty_layer` history entry when the diff
is empty). The final config and manifest are written, then tagged.

Invariants:
- Everything temporary (overlays, bundles, runtime state, downloads) lives in
  one BuildTemp, removed on every exit path; tags move only after the image
  is complete, so a failed or killed build leaves the store as it was, plus
  finished layers and cache records that the next build reuses.
- The build holds `store.using()` so a concurrent prune cannot remove the
  untagged layers it relies on.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field

from typing import TYPE_CHECKING, Callable

from pybuild import fault_point
from pybuild.errors import DockerfileError, InstructionError, PybuildError, StepFailed
from pybuild.image import (MT_CONFIG, MT_MANIFEST, Descriptor, History, ImageConfig, Manifest, chain_id,
                           format_time, host_platform, parse_config)

if TYPE_CHECKING:
    from pybuild.cache import StepInputs
    from pybuild.dockerfile.instructions import ArgInstr, Stage
    from pybuild.dockerfile.shell_words import ShellLex
    from pybuild.dockerfile.instructions import Instruction
    from pybuild.steps.contract import BuildEnv, Outcome, Prepared, StageState, Step
    from pybuild.store import StoredImage


@dataclass
class BuildOptions:
    context_dir: str
    root: str
    runtime: str = "pyrunc"
    dockerfile: str | None = None
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    network: str = "bridge"
    outputs: list[str] = field(default_factory=list)
    compression: str = "gzip"
    explain_cache: bool = False
    progress: str = "plain"
    iidfile: str | None = None
    host_ca: bool = True
    source_date_epoch: int | None = None
    pull: str = "missing"                  # FROM images the store lacks: missing | always | never
    tls_verify: bool | None = None         # for pulls (None: verify, except loopback registries)
    authfile: str | None = None
    cache_from: list[str] = field(default_factory=list)  # type=registry,ref=R | type=local,src=D
    cache_to: list[str] = field(default_factory=list)    # ...,mode=min|max,mounts=true


@dataclass
class StageResult:
    state: StageState
    key: str


def _read_dockerfile(opts: BuildOptions) -> tuple[bytes, str, str]:
    """(content, path for messages, path used for .dockerignore lookup)."""
    path = opts.dockerfile or os.path.join(opts.context_dir, "Dockerfile")
    if opts.dockerfile and not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(opts.context_dir, opts.dockerfile)
    try:
        with open(path, "rb") as fh:
            return fh.read(), os.path.basename(path), path
    except OSError as err:
        raise PybuildError(f"read Dockerfile {path}: {err.strerror}") from None


def _stage_refs(stage: "Stage") -> list[str]:
    """Names another stage may be referenced by from this stage's instructions."""
    from pybuild.dockerfile.instructions import CopyInstr, RunInstr
    from pybuild.steps.run_mounts import parse_mount

    refs = []
    for ins in stage.instructions:
        if isinstance(ins, CopyInstr) and ins.from_:
            refs.append(ins.from_)
        elif isinstance(ins, RunInstr):
            for raw in ins.mounts:
                try:
                    spec = parse_mount(raw)
                except PybuildError:
                    continue
                if spec.from_:
                    refs.append(spec.from_)
    return refs


class Builder:
    def __init__(self, opts: BuildOptions) -> None:
        from pybuild.cache import Cache
        from pybuild.progress import Progress
        from pybuild.runtime import resolve_runtime
        from pybuild.store import Store

        from pybuild.utf8 import check_value

        from pybuild.store import normalize_name

        for flag, values in (("--build-arg", opts.build_args), ("--label", opts.labels)):
            for key, value in values.items():
                check_value(f"{key}={value}", f"{flag} {key}")
        for tag in opts.tags:
            normalize_name(tag)  # a bad name fails now, not after every step has run
        self.opts = opts
        self.progress = Progress(opts.progress)
        self.runtime = resolve_runtime(opts.runtime)
        self.store = Store(opts.root)
        self.cache = Cache(self.store.root)
        self.results: dict[int, StageResult] = {}
        self.stage_index: dict[str, int] = {}
        self.images: dict[str, StoredImage | None] = {}

    # --- references -------------------------------------------------------------
    def _stage_for(self, name: str) -> int | None:
        lowered = name.lower()
        if lowered in self.stage_index:
            return self.stage_index[lowered]
        if name.isdigit() and int(name) < len(self.stages):
            return int(name)
        return None

    def _image(self, ref: str) -> "StoredImage | None":
        from pybuild import baseimage

        if ref not in self.images:
            pull = baseimage.PullOptions(self.opts.pull, self.opts.tls_verify, self.opts.authfile,
                                         self.progress.mode)
            self.images[ref] = baseimage.resolve(self.store, ref, pull)
        return self.images[ref]

    def lowers_of(self, name: str) -> list[str]:
        idx = self._stage_for(name)
        if idx is not None:
            if idx not in self.results:
                raise PybuildError(f"stage {name} is used before it is built")
            return self.ensure_lowers(self.results[idx].state)
        image = self._image(name)
        return [] if image is None else self.store.ensure_layers(image.manifest, image.config)

    def key_of(self, name: str) -> str:
        idx = self._stage_for(name)
        if idx is not None:
            return self.results[idx].key
        image = self._image(name)
        return "scratch" if image is None else image.id

    def ensure_lowers(self, st: "StageState") -> list[str]:
        if st.lowers is None:
            dummy = Descriptor(MT_CONFIG, "sha256:" + "0" * 64, 0)
            st.lowers = self.store.ensure_layers(Manifest(config=dummy, layers=st.layers), st.config)
        return st.lowers

    # --- the build ----------------------------------------------------------------
    def build(self) -> str:
        from pybuild import utf8
        from pybuild.dockerfile import parser as dockerfile_parser, stages as instructions
        from pybuild.context import BuildContext
        from pybuild.dockerfile.shell_words import ShellLex, default_args, meta_arg_env, proxy_env
        from pybuild.buildtemp import BuildTemp
        from pybuild.steps.contract import BuildEnv

        opts = self.opts
        data, self.df_name, df_path = _read_dockerfile(opts)
        result = dockerfile_parser.parse(data, self.df_name)
        meta, self.stages = instructions.parse_stages(result)
        utf8.check_dockerfile(result, self.df_name)  # before anything runs (issue 11 finding 8)
        target = instructions.select_target(self.stages, opts.target)
        self.stage_index = {s.name: s.index for s in self.stages if s.name}
        lex = ShellLex(result.escape)
        target_name = self.stages[target].name
        self.global_args = meta_arg_env([(a.key, a.default) for m in meta for a in m.args], opts.build_args,
                                        lex, default_args(target=target_name, overrides=opts.build_args))
        needed = self._needed(target, lex)
        context = BuildContext(opts.context_dir, df_path)
        context.use_digest_cache(os.path.join(self.store.root, "cache", "context"))
        with contextlib.ExitStack() as stack:
            stack.enter_context(self.store.using())
            temp = stack.enter_context(BuildTemp(self.store.root))
            fault_point("build.locked")
            self.env = BuildEnv(store=self.store, cache=self.cache, context=context, temp=temp,
                                progress=self.progress, lex=lex, runtime=self.runtime, network=opts.network,
                                secrets=opts.secrets, host_ca=opts.host_ca, build_args=opts.build_args,
                                proxy_env=proxy_env(opts.build_args), lowers_of=self.lowers_of,
                                key_of=self.key_of, ensure_lowers=self.ensure_lowers, stack=stack,
                                dockerfile=self.df_name)
            stack.callback(self.cache.flush_meta)
            if opts.cache_from:
                from pybuild import cache_transfer
                cache_transfer.import_caches(self, opts.cache_from)
            for n, idx in enumerate(needed, 1):
                self.cache.stage = idx
                self.results[idx] = self._build_stage(self.stages[idx], n, len(needed))
            final = self.results[target].state
            image_id, desc, config = self._commit(final)
            fault_point("build.image-written")
            for tag in opts.tags:
                self.store.tag(tag, desc)
            fault_point("build.tagged")
            if opts.iidfile:  # replaced atomically: a link planted at the name is replaced, never followed
                from pyrunc.fsutil import atomic_write

                atomic_write(opts.iidfile, image_id.encode())
            if opts.outputs:
                from pybuild.export import write_output
                from pybuild.store import StoredImage

                image = StoredImage(name=opts.tags[0] if opts.tags else None, descriptor=desc,
                                    manifest=self.store.read_manifest(desc.digest), config=config)
                for spec in opts.outputs:
                    write_output(self.store, image, spec, image.name)
            if opts.cache_to:
                from pybuild import cache_transfer
                self.cache.flush_meta()
                cache_transfer.export_caches(self, opts.cache_to, target)
        context.save_digest_cache()
        self._warn_unused_args(meta)
        self.progress.final(image_id, list(opts.tags))
        return image_id

    def _warn_unused_args(self, meta: "list[ArgInstr]") -> None:
        """docker's warning for --build-arg values no ARG declared (a typo, usually)."""
        from pybuild.dockerfile.instructions import ArgInstr
        from pybuild.dockerfile.shell_words import PROXY_ARGS

        declared = {a.key for m in meta for a in m.args}
        for stage in self.stages:
            declared |= {a.key for i in stage.instructions if isinstance(i, ArgInstr) for a in i.args}
        proxies = {p.lower() for p in PROXY_ARGS}
        unused = sorted(k for k in self.opts.build_args if k not in declared and k.lower() not in proxies
                        and k not in self.global_args)
        if unused:
            self.progress.message(f"[warning] build-args not consumed by any ARG: {', '.join(unused)}")

    def _needed(self, target: int, lex: "ShellLex") -> list[int]:
        """Indices of the stages the target depends on (and itself), in file order."""
        seen: set[int] = set()
        todo = [target]
        while todo:
            idx = todo.pop()
            if idx in seen:
                continue
            seen.add(idx)
            stage = self.stages[idx]
            base = lex.process_word(stage.base_name, self.global_args)
            refs = [base] + _stage_refs(stage)
            for ref in refs:
                dep = self._stage_for(ref)
                if dep is not None and dep < idx:
                    todo.append(dep)
                elif dep is not None and dep >= idx and ref.lower() in self.stage_index:
                    raise DockerfileError(f"stage {ref} refers to itself or a later stage", stage.line,
                                          self.df_name)
        return sorted(seen)

    def _base_state(self, stage: "Stage", lex: "ShellLex") -> "tuple[StageState, str]":
        """The stage's starting state. An image without PATH in its Env gets
        the default PATH, as BuildKit and buildah do."""
        st, name = self._base_state_raw(stage, lex)
        if not any(e.startswith("PATH=") for e in st.container.env):
            from pybuild.runtime import DEFAULT_PATH
            from pybuild.steps.contract import with_container

            st.config = with_container(st, env=(DEFAULT_PATH,) + tuple(st.container.env))
        # The chain starts from the base's digest *and* the config the stage starts
        # with, so a change in how pybuild derives that config can't reuse old records.
        from pybuild.cache import step_key

        st.key = step_key(st.key, "FROM", None, {}, {"config": st.container.to_dict()})
        return st, name

    def _base_state_raw(self, stage: "Stage", lex: "ShellLex") -> "tuple[StageState, str]":
        from pybuild.errors import ImageNotFound
        from pybuild.steps.contract import StageState

        name = lex.process_word(stage.base_name, self.global_args)
        platform = lex.process_word(stage.platform, self.global_args) if stage.platform else ""
        host = f"{host_platform()['os']}/{host_platform()['architecture']}"
        if platform and platform.split("/")[:2] != host.split("/"):
            raise DockerfileError(f"FROM --platform={platform}: pybuild builds for this machine only ({host})",
                                  stage.line, self.df_name)
        idx = self._stage_for(name)
        if idx is not None and idx < stage.index:
            parent = self.results[idx]
            ps = parent.state
            return StageState(config=ps.config, layers=ps.layers, key=parent.key, base_digest=parent.key,
                              global_args=dict(self.global_args), lowers=ps.lowers), name
        try:
            image = self._image(name)
        except ImageNotFound as err:
            reason = getattr(err, "reason", None)
            raise DockerfileError(f"FROM {name}: image not found in the store {self.store.root}"
                                  + (f"; pull: {reason}" if reason else ""), stage.line, self.df_name) from None
        if image is None:
            platform = host_platform()
            config = ImageConfig(architecture=platform["architecture"], os=platform["os"])
            return StageState(config=config, layers=(), key="scratch", base_digest="scratch",
                              global_args=dict(self.global_args)), name
        return StageState(config=image.config, layers=tuple(d.with_annotations(None) for d in image.manifest.layers),
                          key=image.id, base_digest=image.id, global_args=dict(self.global_args)), name

    def _triggers(self, st: "StageState", stage: "Stage") -> "list[Instruction]":
        """ONBUILD triggers of the base image, as instructions at the FROM line."""
        from pybuild.dockerfile import parser as dockerfile_parser, stages as instructions
        from pybuild.steps.contract import with_container
        from pyrunc import record

        out = []
        for trigger in st.container.on_build:
            result = dockerfile_parser.parse(trigger.encode(), self.df_name)
            for node in result.nodes:
                node.start_line = stage.line
                parsed = instructions.parse_instruction(node, self.df_name)
                if isinstance(parsed, tuple):  # FROM: refused as a trigger when written, not in a base
                    raise DockerfileError("FROM isn't allowed as an ONBUILD trigger", stage.line, self.df_name)
                out.append(record.replace(parsed, line=stage.line, end_line=stage.line))
        if st.container.on_build:
            st.config = with_container(st, on_build=())
        return out

    def _build_stage(self, stage: "Stage", n: int, total: int) -> StageResult:
        from pybuild.cache import StepInputs

        b = self.env
        # FROM is shown before the base is resolved: importing an oci-archive or
        # unpacking nothing yet can take a while, and the user should see on what.
        self.progress.step(n, total, 1, len(stage.instructions) + 1, stage.original)
        started = time.monotonic()
        st, base_name = self._base_state(stage, b.lex)
        if time.monotonic() - started > 0.2:
            self.progress.done(f"base {base_name} resolved")
        instrs = self._triggers(st, stage) + list(stage.instructions)
        steps_total = len(instrs) + 1
        stage_id = f"{b.context.root}\0{self.df_name}\0{stage.name or stage.index}"
        history = self.cache.stage_builds(stage_id) if self.opts.explain_cache else []
        done: list[StepInputs] = []
        rebuilt = False
        for k, ins in enumerate(instrs, 2):
            self.progress.step(n, total, k, steps_total, " ".join(ins.original.split("\n")[0].split()))
            inputs, hit = self._run_step(b, st, ins, done, history, rebuilt)
            done.append(inputs)
            rebuilt = rebuilt or not hit
        fold_history(st)
        self.cache.save_stage_build(stage_id, done)
        return StageResult(state=st, key=st.key)

    def _run_step(self, b: "BuildEnv", st: "StageState", ins: "Instruction", done: "list[StepInputs]",
                  history: "list[list[StepInputs]]", rebuilt: bool) -> "tuple[StepInputs, bool]":
        from pybuild.cache import CacheRecord, StepInputs, step_key
        from pybuild.steps.table import step_for

        try:
            step = step_for(ins)
            prep = step.prepare(b, st, ins)
        except (DockerfileError, StepFailed):
            raise
        except InstructionError as err:
            raise DockerfileError(str(err), ins.line, self.df_name) from None
        except PybuildError as err:
            raise DockerfileError(f"{ins.keyword.upper()}: {err}", ins.line, self.df_name) from None
        # A metadata step's inputs are its text and its parent's key: every ARG value in scope was
        # set by an ARG step of this stage whose key covers the resolved value. Hashing all ARGs
        # again at each step made a file of n ARG lines O(n²).
        args = {} if step.metadata_only else st.arg_values()
        key = step_key(st.key, prep.text, prep.sources, args, prep.extra)
        scope: dict[str, str] = {}
        if not step.metadata_only:
            scope = {f"ARG {k}": v for k, v in args.items()}
            scope.update({f"ENV {k}": v for k, v in st.container.env_dict().items()})
        inputs = StepInputs(key=key, text=prep.text, scope=scope,
                            base=st.base_digest if not done else None, sources=prep.files)
        if step.metadata_only:
            return inputs, self._run_metadata_step(b, st, ins, step, prep, key, lambda: self._explain_miss(
                inputs, history, done, rebuilt))
        st.meta_run = None
        record = None if self.opts.no_cache else self.cache.lookup(key)
        if record is not None and self.cache.usable(self.store, key, record):
            st.pending_history.clear()  # the record's history has them (same key chain)
            st.config = parse_config(record.config)
            st.layers = tuple(Descriptor.from_dict(d) for d in record.layers)
            st.lowers = None
            st.key = key
            self.progress.cached()
            return inputs, True
        self._explain_miss(inputs, history, done, rebuilt)
        fold_history(st)
        outcome = self._apply(b, st, ins, step, prep)
        fault_point("build.step-applied")
        try:
            detail = self._commit_step(st, outcome)
        except PybuildError as err:  # e.g. a file the step made that no layer can hold
            raise DockerfileError(f"{ins.keyword.upper()}: {err}", ins.line, self.df_name) from None
        st.key = key
        self.cache.record(key, CacheRecord(config=st.config.to_dict(),
                                           layers=[d.to_dict() for d in st.layers]))
        fault_point("build.cache-recorded")
        self.progress.done(detail)
        return inputs, False

    def _explain_miss(self, inputs: "StepInputs", history: "list[list[StepInputs]]", done: "list[StepInputs]",
                      rebuilt: bool) -> None:
        from pybuild.cache import explain, nearest_build

        if self.opts.explain_cache:
            old_build = nearest_build(history, done)
            old = old_build[len(done)] if old_build and len(old_build) > len(done) else None
            self.progress.explain(explain(old, inputs, rebuilt))

    def _apply(self, b: "BuildEnv", st: "StageState", ins: "Instruction", step: "Step",
               prep: "Prepared") -> "Outcome":
        try:
            return step.apply(b, st, ins, prep)
        except (DockerfileError, StepFailed):
            raise
        except InstructionError as err:
            raise DockerfileError(str(err), ins.line, self.df_name) from None
        except PybuildError as err:
            raise DockerfileError(f"{ins.keyword.upper()}: {err}", ins.line, self.df_name) from None

    def _run_metadata_step(self, b: "BuildEnv", st: "StageState", ins: "Instruction", step: "Step",
                           prep: "Prepared", key: str, explain_miss: "Callable[[], None]") -> bool:
        """A config-only step: always recomputed in memory (cheap, and a pure function of what the key
        covers), with the history timestamp of the cached run on a hit, so a rebuild gives the same
        image ID. Its cache record is that timestamp alone: a full config per step made a Dockerfile
        of n LABEL lines cost O(n²) (10k lines: minutes); now the work per step is proportional to
        the instruction."""
        if st.meta_run is None:
            st.meta_run = st.key
        recorded = None if self.opts.no_cache else self.cache.lookup_meta(st.meta_run, key)
        if recorded is None:
            explain_miss()
        outcome = self._apply(b, st, ins, step, prep)
        created = recorded or self._created()
        st.config = outcome.config
        st.pending_history.append(History(created=created, created_by=outcome.created_by, empty_layer=True))
        st.key = key
        if recorded is None:
            self.cache.record_meta(st.meta_run, key, created)
            self.progress.done()
        else:
            self.progress.cached()
        return recorded is not None

    def _created(self) -> str:
        epoch = self.opts.source_date_epoch
        return format_time(epoch if epoch is not None else time.time())

    def _commit_step(self, st: "StageState", outcome: "Outcome") -> str:
        """Commit the step's diff (if any) as a layer; returns a progress note."""
        from pyrunc.record import replace

        from pybuild.layer import commit_layer

        config = outcome.config
        created = self._created()
        empty = outcome.diff is None or not os.listdir(outcome.diff)
        if empty:
            entry = History(created=created, created_by=outcome.created_by, empty_layer=True)
            st.config = replace(config, history=config.history + (entry,))
            return "" if outcome.diff is None else "no changes: empty layer"
        started = time.monotonic()
        desc, digests = commit_layer(self.store, outcome.diff, compression=self.opts.compression,
                                     source_date_epoch=self.opts.source_date_epoch)
        took = max(time.monotonic() - started, 1e-6)
        fault_point("build.layer-blob")
        parent = chain_id(config.rootfs.diff_ids)
        diff_ids = config.rootfs.diff_ids + (digests.diff_id,)
        new_chain = chain_id(diff_ids)
        assert new_chain is not None
        layer_dir = self.store.adopt_layer(new_chain, parent, digests.diff_id, digests.uncompressed_size,
                                           outcome.diff)
        fault_point("build.layer-adopted")
        entry = History(created=created, created_by=outcome.created_by)
        st.config = replace(config, rootfs=replace(config.rootfs, diff_ids=diff_ids),
                                        history=config.history + (entry,))
        st.layers = st.layers + (desc,)
        base = outcome.base_lowers if outcome.base_lowers is not None else self.ensure_lowers(st)
        st.lowers = list(base) + [layer_dir]
        mb = digests.uncompressed_size / 1e6
        return f"layer {mb:.1f} MB → {desc.size / 1e6:.1f} MB {self.opts.compression}, " \
               f"committed in {took:.2f}s = {mb / took:.0f} MB/s"

    def _commit(self, st: "StageState") -> tuple[str, Descriptor, ImageConfig]:
        from pyrunc.record import replace

        config = st.config
        if self.opts.labels:
            labels = dict(config.config.labels)
            labels.update(self.opts.labels)
            config = replace(config, config=replace(config.config, labels=labels))
        created = (config.history[-1].created if config.history else None) or self._created()
        if self.opts.source_date_epoch is not None:
            created = format_time(self.opts.source_date_epoch)
        config = replace(config, created=created)
        config_desc = self.store.put_json(config, MT_CONFIG)
        manifest = Manifest(config=config_desc, layers=st.layers)
        desc = self.store.put_json(manifest, MT_MANIFEST)
        return config_desc.digest, desc, config


def fold_history(st: "StageState") -> None:
    """Append the history entries of the metadata steps run since the last fold, in one copy."""
    from pyrunc.record import replace

    if st.pending_history:
        st.config = replace(st.config, history=st.config.history + tuple(st.pending_history))
        st.pending_history.clear()


def build(opts: BuildOptions) -> str:
    """Build and tag; returns the image ID (the config digest)."""
    return Builder(opts).build()
