"""`pybuild fsck [--repair]`: verify the whole image store; report (or remove) what is garbage.

Errors (exit 1), the store does not hold what it says:
  - oci-layout or index.json unreadable; an index entry whose blob is missing, of another size or
    media type than the entry says, or does not parse;
  - a blob whose content does not hash to its name; a layer blob that does not decompress to a tar
    whose sha256 is the diffID its image's config names (each blob is read once: digest and diffID
    come from the same pass); a manifest and config that disagree on the number of layers;
  - an unpacked layer whose record is wrong: chainID not its directory's name, or not
    sha256(parent chainID + " " + diffID), or not the diffID/parent an image gives that chain;
  - a container of `pybuild run` whose image is gone.
Garbage (reported, exit 0), what a killed or failed command leaves and nothing refers to:
  - temp files and dirs (blobs/sha256/.tmp-*, layers/.tmp-*, `.NAME.<random>.tmp` of atomic
    writes) and the scratch dirs under tmp/ of processes that are gone;
  - partial downloads under ingest/ (a later pull resumes them; --repair drops them);
  - orphans: blobs and unpacked layers that no index entry, step-cache record or container refers
    to; cache records naming a blob that is gone (a miss, never a hit); source hints of gone blobs.

`--repair` removes the garbage, corrupt blobs and wrong unpacked layers (derived data: unpacked again
from their blob when needed); a tag pointing at a broken image is reported, never removed (that is
`rmi`'s job). Orphans are only removed when every document that could refer to them was read: an
unreadable index must not turn the whole store into orphans.

Locking: a check holds the store shared (store.using()): a prune cannot remove anything mid-check,
builds go on (what they are writing may show up as garbage). A repair holds it exclusively, so it
waits for running builds, pulls, loads, commits and run monitors to release the store; it also takes
index.json's lock so no tag is being written while its temp files are removed, and it leaves alone
partial downloads another pull holds locked and scratch dirs of live processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pybuild.errors import DigestMismatch, PybuildError
from pybuild.image import INDEX_TYPES, MANIFEST_TYPES, MT_MANIFEST, Descriptor, chain_ids, parse_config, \
    parse_index, parse_manifest
from pybuild.store import Store

_HEX = re.compile(r"[0-9a-f]{64}")
_TEMP = re.compile(r"\.tmp-.*|\..+\.[0-9a-f]{24}\.tmp")  # mkstemp/mkdtemp prefixes; fsutil.temp_name
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str             # "error" | "garbage"
    what: str             # one line: the object and why
    path: str | None = None  # what --repair removes (None: nothing it may remove)


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "error"]

    @property
    def garbage(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "garbage"]


class _Checker:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.report = Report()
        self.blobs: set[str] = set()              # digests referenced by an index entry, record or container
        self.diff_ids: dict[str, set[str]] = {}   # layer blob digest -> the diffIDs configs claim for it
        self.chains: dict[str, tuple[str, str | None]] = {}  # chainID -> (diffID, parent) as images say
        self.complete = True                      # every referring document was read

    def error(self, what: str, path: str | None = None) -> None:
        self.report.findings.append(Finding("error", what, path))

    def garbage(self, what: str, path: str) -> None:
        self.report.findings.append(Finding("garbage", what, path))

    def count(self, key: str) -> None:
        self.report.counts[key] = self.report.counts.get(key, 0) + 1

    # ---- what refers to blobs -----------------------------------------------------------------
    def _blob_file(self, desc: Descriptor, label: str) -> bool:
        """The blob of a descriptor exists with its size; counts it as referenced."""
        try:
            size = os.lstat(self.store.blob_path(desc.digest)).st_size
        except FileNotFoundError:
            self.error(f"{label}: blob {desc.digest} is missing")
            return False
        except PybuildError as err:
            self.error(f"{label}: {err}")
            return False
        self.blobs.add(desc.digest)
        if desc.size and size != desc.size:
            self.error(f"{label}: blob {desc.digest} has {size} bytes, the descriptor says {desc.size}")
            return False
        return True

    def _claim_image(self, layers: tuple[Descriptor, ...], diff_ids: tuple[str, ...]) -> None:
        chains = chain_ids(diff_ids)
        for i, (desc, diff_id, chain) in enumerate(zip(layers, diff_ids, chains)):
            self.diff_ids.setdefault(desc.digest, set()).add(diff_id)
            self.chains.setdefault(chain, (diff_id, chains[i - 1] if i else None))

    def manifest(self, desc: Descriptor, label: str, depth: int = 0) -> None:
        if not self._blob_file(desc, label):
            self.complete = False
            return
        try:
            data = self.store.read_blob(desc.digest)
            if desc.media_type in INDEX_TYPES:
                if depth > 4:
                    raise PybuildError("image indexes nested too deeply")
                for i, child in enumerate(parse_index(data).manifests):
                    self.manifest(child, f"{label} > manifests[{i}]", depth + 1)
                return
            if desc.media_type and desc.media_type not in MANIFEST_TYPES:
                raise PybuildError(f"media type {desc.media_type!r} is neither a manifest nor an index")
            manifest = parse_manifest(data)
            present = [self._blob_file(d, label) for d in (manifest.config, *manifest.layers)]
            if not present[0]:
                self.complete = False
                return
            config = parse_config(self.store.read_blob(manifest.config.digest))
        except PybuildError as err:
            self.error(f"{label}: {err}")
            self.complete = False
            return
        if len(config.rootfs.diff_ids) != len(manifest.layers):
            self.error(f"{label}: the manifest has {len(manifest.layers)} layers, the config "
                       f"{len(config.rootfs.diff_ids)} diff_ids")
            return
        self._claim_image(manifest.layers, config.rootfs.diff_ids)

    def index(self) -> None:
        try:
            with open(os.path.join(self.store.root, "oci-layout"), "rb") as fh:
                if not isinstance(json.load(fh).get("imageLayoutVersion"), str):
                    raise ValueError("no imageLayoutVersion")
        except (OSError, ValueError, AttributeError) as err:
            self.error(f"oci-layout: unreadable: {err}")
        try:
            entries = self.store.read_index().manifests
        except PybuildError as err:
            self.error(f"index.json: {err}")
            self.complete = False
            return
        for desc in entries:
            self.count("index entries")
            name = (desc.annotations or {}).get("org.opencontainers.image.ref.name")
            self.manifest(desc, f"index.json entry {name or desc.digest}")

    def cache_records(self) -> None:
        steps = os.path.join(self.store.root, "cache", "steps")
        for entry in _entries(steps):
            if _TEMP.fullmatch(entry.name):
                self.garbage(f"temp file cache/steps/{entry.name}", entry.path)
                continue
            self.count("cache records")
            try:
                with open(entry.path, "rb") as fh:
                    doc = json.load(fh)
                layers = tuple(Descriptor.from_dict(d) for d in doc["layers"])
                diff_ids = tuple(parse_config(doc["config"]).rootfs.diff_ids)
            except (OSError, ValueError, KeyError, TypeError, AttributeError, PybuildError) as err:
                self.garbage(f"cache record {entry.name}: unreadable ({err})", entry.path)
                continue
            if len(layers) != len(diff_ids):
                self.garbage(f"cache record {entry.name}: {len(layers)} layers, {len(diff_ids)} diff_ids",
                             entry.path)
                continue
            if not all(self.store.has_blob(d.digest) for d in layers):
                self.garbage(f"cache record {entry.name}: names a layer blob that is gone (stale)", entry.path)
                continue
            self.blobs.update(d.digest for d in layers)
            self._claim_image(layers, diff_ids)

    def containers(self) -> None:
        from pybuild.containers import ContainerStore

        for c in ContainerStore(self.store.root).list():
            self.count("containers")
            if c.image_digest:
                self.manifest(Descriptor(MT_MANIFEST, c.image_digest, 0), f"container {c.name} ({c.id[:12]})")
            else:  # recorded before image digests were: its image is protected by its tag only
                try:
                    self.store.resolve(c.image_id)
                except PybuildError:
                    self.error(f"container {c.name} ({c.id[:12]}): its image {c.image} ({c.image_id[:19]}) is gone")

    # ---- what is on disk ------------------------------------------------------------------------
    def blob_files(self) -> None:
        for entry in _entries(self.store.blob_dir):
            if _TEMP.fullmatch(entry.name) or not _HEX.fullmatch(entry.name):
                self.garbage(f"{'temp' if _TEMP.fullmatch(entry.name) else 'stray'} file blobs/sha256/{entry.name}",
                             entry.path)
                continue
            self.count("blobs")
            digest = "sha256:" + entry.name
            if not entry.is_file(follow_symlinks=False):
                self.error(f"blob {digest}: not a regular file", entry.path)
                continue
            try:
                diff_id = self._verify_blob(digest)
            except (PybuildError, OSError, EOFError) as err:
                self.error(f"blob {digest}: {err}", entry.path)
                continue
            claimed = self.diff_ids.get(digest, set())
            if diff_id is not None and claimed != {diff_id}:
                wrong = ", ".join(sorted(claimed - {diff_id}))
                self.error(f"layer blob {digest}: decompresses to {diff_id}, configs name {wrong}", entry.path)
            if digest not in self.blobs and self.complete:
                self.garbage(f"orphan blob {digest} ({entry.stat(follow_symlinks=False).st_size} bytes): no image, "
                             "cache record or container refers to it", entry.path)

    def _verify_blob(self, digest: str) -> str | None:
        """Read the blob once: its digest always, the diffID of its tar when a config names one."""
        with self.store.open_blob(digest) as reader:
            if digest not in self.diff_ids:
                reader.drain()
                return None
            from pybuild.compress import open_decompressed

            tar = hashlib.sha256()
            try:
                plain = open_decompressed(reader)
                while chunk := plain.read(_CHUNK):
                    tar.update(chunk)
            except (PybuildError, OSError, EOFError) as err:
                if isinstance(err, DigestMismatch):
                    raise
                self.store.verify_blob(digest)  # a damaged blob says so (DigestMismatch) ...
                raise  # ... a blob that hashes right but is no layer says what is wrong with it
            reader.drain()
            return "sha256:" + tar.hexdigest()

    def layers(self) -> None:
        for entry in _entries(self.store.layers_root):
            if not _HEX.fullmatch(entry.name):
                self.garbage(f"{'temp' if _TEMP.fullmatch(entry.name) else 'stray'} entry layers/{entry.name}",
                             entry.path)
                continue
            self.count("unpacked layers")
            chain = "sha256:" + entry.name
            problem = self._layer_problem(chain, entry.path)
            if problem:
                self.error(f"unpacked layer {chain}: {problem}", entry.path)
            elif chain not in self.chains and self.complete:
                self.garbage(f"orphan unpacked layer {chain}", entry.path)

    def _layer_problem(self, chain: str, path: str) -> str | None:
        try:
            with open(os.path.join(path, "layer.json"), "rb") as fh:
                meta = json.load(fh)
            diff_id, parent = meta["diff_id"], meta.get("parent")
            if meta["chain_id"] != chain:
                return f"layer.json names chain {meta['chain_id']}"
        except (OSError, ValueError, KeyError, TypeError) as err:
            return f"layer.json unreadable ({err})"
        expected = diff_id if parent is None else \
            "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()
        if expected != chain:
            return f"chainID of parent {parent} + diffID {diff_id} is {expected}"
        if chain in self.chains and self.chains[chain] != (diff_id, parent):
            return f"records diffID {diff_id}, parent {parent}; images say {self.chains[chain]}"
        if not os.path.isdir(os.path.join(path, "diff")) or os.path.islink(os.path.join(path, "diff")):
            return "no diff/ directory"
        return None

    def leftovers(self) -> None:
        """Temp files of atomic writes, scratch dirs of dead processes, partial downloads, stale hints."""
        from pybuild.buildtemp import _pid_alive

        root = self.store.root
        for sub in ("", "cache/meta", "cache/stages", "cache/context", "uploads", "containers"):
            for entry in _entries(os.path.join(root, sub)):
                if _TEMP.fullmatch(entry.name):
                    self.garbage(f"temp file {os.path.join(sub, entry.name)}", entry.path)
        for entry in _entries(os.path.join(root, "tmp")):
            parts = entry.name.split("-")
            if len(parts) >= 3 and parts[1].isdigit() and _pid_alive(int(parts[1])):
                continue  # a live build's, export's or load's scratch
            self.garbage(f"scratch tmp/{entry.name} of a process that is gone", entry.path)
        for entry in _entries(os.path.join(root, "ingest")):
            done = _HEX.fullmatch(entry.name) and self.store.has_blob("sha256:" + entry.name)
            self.garbage(f"{'finished' if done else 'partial'} download ingest/{entry.name}", entry.path)
        for entry in _entries(os.path.join(root, "sources")):
            if not (_HEX.fullmatch(entry.name) and self.store.has_blob("sha256:" + entry.name)):
                self.garbage(f"source hint sources/{entry.name} of a blob that is gone", entry.path)


def _entries(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def check(store: Store) -> Report:
    """Every check; nothing is changed. The caller holds the store (shared or exclusive)."""
    c = _Checker(store)
    c.index()
    c.containers()
    c.cache_records()
    c.blob_files()
    c.layers()
    c.leftovers()
    return c.report


def fsck(store: Store, repair: bool = False) -> Report:
    """Check the store; with `repair`, remove what may be removed, then check again."""
    if not repair:
        with store.using():
            return check(store)
    removed: list[str] = []
    with store.exclusive(), store.index_locked():
        for _ in range(3):  # removing an orphan blob makes its source hint garbage: until nothing changes
            report = check(store)
            done = [f.what for f in report.findings if f.path and _remove(f.path)]
            removed += done
            if not done:
                break
    report.removed = removed
    return report


def _remove(path: str) -> bool:
    """Remove one finding's path; a partial download another pull holds is left to it."""
    from pybuild.buildtemp import _clean_one
    from pyrunc.fsutil import rmtree_nofollow

    parent = os.path.basename(os.path.dirname(path))
    if parent == "ingest":
        with contextlib.suppress(FileNotFoundError), _locked_nb(path) as mine:
            if not mine:
                return False
            os.unlink(path)
        return True
    if parent == "tmp" and os.path.basename(path).startswith("build-"):
        _clean_one(path, wait=False)  # its runtime's containers, mounts and networks too
        return not os.path.lexists(path)
    rmtree_nofollow(path)
    return True


@contextlib.contextmanager
def _locked_nb(path: str) -> Iterator[bool]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def render(report: Report, repair: bool) -> list[str]:
    lines = [f"removed: {what}" for what in report.removed]
    lines += [f"{f.kind}: {f.what}" for f in report.findings]
    counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts.items())) or "an empty store"
    verdict = "ok" if not report.errors else f"{len(report.errors)} errors"
    tail = f", {len(report.garbage)} garbage (pybuild fsck --repair removes it)" if report.garbage and not repair \
        else f", {len(report.garbage)} garbage left" if report.garbage else ""
    lines.append(f"checked {counts}: {verdict}{tail}")
    return lines

