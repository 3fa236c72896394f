"""The build context: the directory COPY/ADD read from, as `docker build` sees it.

Invariants:
- Nothing outside the context root is ever read: a source path is cleaned
  lexically (a `..` that climbs above the root is an error, not clamped) and
  every symlink on the way is resolved and must stay inside the root.
- Files matched by `.dockerignore` do not exist for COPY/ADD: wildcards skip
  them, naming one explicitly is "not found", and directory copies leave them out.
- A COPY/ADD source named `.wh.*` (or holding such a file) is refused: in a
  layer it would be a whiteout, deleting what it names when the image is
  unpacked (`.wh...`: emptying the unpack directory's parent in unpackers that
  do not check). BuildKit copies it and the image fails later ("invalid
  whiteout name"); docker's classic builder applies it as a deletion.
- A source's content digest covers what a COPY of it would produce (relative
  paths, file types, permission bits, bytes, symlink targets) and nothing else
  (no mtimes, no owners: COPY resets both), so touching a file keeps the cache.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Callable, Iterator

from pybuild.errors import ContextError
from pyrunc.record import NEW_DICT, Record

_CHUNK = 1 << 20


class Source(Record):
    """One resolved COPY/ADD source inside the context."""

    rel: str          # path relative to the context root, "/"-separated, "." for the root
    path: str         # absolute host path after symlink resolution (inside the root)
    is_dir: bool


class SourceDigest(Record):
    """The cache input of a COPY/ADD: one digest plus the per-file digests
    (context-relative path → digest) that `--explain-cache` diffs."""

    digest: str
    files: dict[str, str] = NEW_DICT


def has_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _go_match_regex(pattern: str) -> re.Pattern[str]:
    """Go's filepath.Match for one path component: `*`, `?`, `[...]` with `^`
    negation and ranges, `\\` escapes; `*` never crosses '/'."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = i + 1
            chunk = ["["]
            if j < n and pattern[j] == "^":
                chunk.append("^")
                j += 1
            while j < n and pattern[j] != "]":
                if pattern[j] == "\\" and j + 1 < n:
                    j += 1
                chunk.append(re.escape(pattern[j]) if pattern[j] not in "-" else "-")
                j += 1
            if j >= n:
                raise ContextError(f"bad wildcard pattern {pattern!r}: unterminated '['")
            chunk.append("]")
            out.append("".join(chunk))
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def _load_ignore(root: str, dockerfile: str | None) -> tuple[Callable[[str], bool], bool]:
    """The ignore rules (`<Dockerfile>.dockerignore` beside the Dockerfile wins
    over the context's `.dockerignore`) → (predicate, has `!` exceptions)."""
    from pybuild import dockerignore

    rules = dockerignore.DockerIgnore.from_file(dockerignore.ignore_file_for(root, dockerfile))
    if not rules.patterns:
        return (lambda rel: False), False
    return rules.matches, rules.has_exclusions


class BuildContext:
    """A context directory plus its ignore rules; resolves and digests sources."""

    def __init__(self, root: str, dockerfile: str | None = None) -> None:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            raise ContextError(f"build context {root}: not a directory")
        self.root = real
        self._ignored, self._exceptions = _load_ignore(real, dockerfile)
        self._hash_cache: dict[str, str] = {}
        self._cache_file: str | None = None
        self._cache_dirty = False
        self._used: dict[str, str] = {}

    # --- paths -------------------------------------------------------------
    def ignored(self, rel: str) -> bool:
        return rel not in ("", ".") and self._ignored(rel)

    def clean(self, src: str) -> str:
        """Lexically clean a source path relative to the root; refuse `..` escapes."""
        parts: list[str] = []
        for comp in src.split("/"):
            if comp in ("", "."):
                continue
            if comp == "..":
                if not parts:
                    raise ContextError(f"{src}: path outside the build context")
                parts.pop()
                continue
            parts.append(comp)
        return "/".join(parts) or "."

    def _host(self, rel: str, what: str) -> str:
        """Host path of a context-relative path with every symlink resolved;
        the result must stay inside the root."""
        full = self.root if rel == "." else os.path.join(self.root, rel)
        real = os.path.realpath(full)
        if real != self.root and not real.startswith(self.root + os.sep):
            raise ContextError(f"{what}: resolves outside the build context (to {real})")
        return real

    @staticmethod
    def check_layer_name(rel: str) -> None:
        """Refuse an entry whose own name a layer would read as a whiteout (module docstring). Only
        the last component: the names above it are not what the copy writes."""
        if rel.rsplit("/", 1)[-1].startswith(".wh."):
            raise ContextError(f"{rel}: names beginning with .wh. are reserved for OCI whiteouts; "
                               "a layer cannot hold this file")

    def resolve(self, src: str) -> list[Source]:
        """All sources a COPY/ADD `src` names (a wildcard may name several).

        Missing, ignored or escaping sources raise ContextError naming `src`."""
        rel = self.clean(src)
        if not has_glob(rel):
            if self.ignored(rel):
                raise ContextError(f"{src}: not found in the build context (excluded by .dockerignore)")
            host = self._host(rel, src)
            if not os.path.lexists(host):
                raise ContextError(f"{src}: not found in the build context")
            return [Source(rel, host, os.path.isdir(host))]
        matches = sorted(self._glob(rel.split("/"), "."))
        if not matches:
            raise ContextError(f"{src}: no source files match in the build context")
        return [Source(m, self._host(m, src), os.path.isdir(self._host(m, src))) for m in matches]

    def _glob(self, comps: list[str], base: str) -> Iterator[str]:
        head, rest = comps[0], comps[1:]
        host_base = self._host(base, base)
        if not has_glob(head):
            candidates = [head] if os.path.lexists(os.path.join(host_base, head)) else []
        else:
            rx = _go_match_regex(head)
            try:
                candidates = [n for n in os.listdir(host_base) if rx.match(n)]
            except (NotADirectoryError, FileNotFoundError):
                candidates = []
        for name in candidates:
            rel = name if base == "." else f"{base}/{name}"
            if self.ignored(rel):
                continue
            if not rest:
                yield rel
            elif os.path.isdir(self._host(rel, rel)):
                yield from self._glob(rest, rel)

    def walk(self, source: Source, for_layer: bool = False) -> Iterator[tuple[str, str, os.stat_result]]:
        """(context-relative path, host path, lstat) of every non-ignored entry
        below a directory source, sorted by name, parents before children.
        Symlinks inside are entries, never followed. `for_layer`: the entries go
        into a layer (COPY/ADD), so whiteout-like names are refused."""
        with os.scandir(source.path) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = entry.name if source.rel == "." else f"{source.rel}/{entry.name}"
            is_dir = entry.is_dir(follow_symlinks=False)
            if self.ignored(rel):
                if is_dir and self._exceptions:
                    # An exception rule (`!dir/keep`) may re-include a child.
                    yield from self.walk(Source(rel, entry.path, True), for_layer)
                continue
            if for_layer:
                self.check_layer_name(rel)
            yield rel, entry.path, entry.stat(follow_symlinks=False)
            if is_dir:
                yield from self.walk(Source(rel, entry.path, True), for_layer)

    def entries(self, source: Source, for_layer: bool = False) -> list[tuple[str, str, os.stat_result]]:
        """`walk` in a stable sorted order (for digests and copies)."""
        if not source.is_dir:
            if for_layer:
                self.check_layer_name(source.rel)
            return [(source.rel, source.path, os.stat(source.path))]
        return sorted(self.walk(source, for_layer), key=lambda t: t[0])

    # --- digests -------------------------------------------------------------
    @staticmethod
    def _stat_key(host: str, st: os.stat_result) -> str:
        # ctime too: it changes on every content write even if mtime is forged back.
        return f"{host}\0{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"

    def file_digest(self, host: str, st: os.stat_result) -> str:
        key = self._stat_key(host, st)
        cached = self._hash_cache.get(key)
        if cached is not None:
            self._used[key] = cached
            return cached
        h = hashlib.sha256()
        with open(host, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        value = h.hexdigest()
        self._hash_cache[key] = value
        self._used[key] = value
        self._cache_dirty = True
        return value

    def use_digest_cache(self, cache_dir: str) -> None:
        """Remember file digests across builds (keyed by path and full stat
        identity, as BuildKit's content-hash cache), so a rebuild of a large
        unchanged context re-hashes nothing. A corrupt cache is ignored."""
        import json

        os.makedirs(cache_dir, exist_ok=True)
        name = hashlib.sha256(self.root.encode()).hexdigest()[:32] + ".json"
        self._cache_file = os.path.join(cache_dir, name)
        try:
            with open(self._cache_file, "rb") as fh:
                loaded = json.load(fh)
            if isinstance(loaded, dict):
                self._hash_cache.update({str(k): str(v) for k, v in loaded.items()})
        except (OSError, ValueError):
            pass

    def save_digest_cache(self) -> None:
        """Persist the digests seen in this build (only those: stale ones drop out)."""
        if self._cache_file is None or not self._cache_dirty and os.path.exists(self._cache_file):
            return
        import json

        from pyrunc.fsutil import atomic_write

        atomic_write(self._cache_file, json.dumps(self._used).encode(), durable=False)

    def entry_digest(self, host: str, st: os.stat_result) -> str:
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISREG(st.st_mode):
            return f"f{mode:o}:{self.file_digest(host, st)}"
        if stat.S_ISDIR(st.st_mode):
            return f"d{mode:o}"
        if stat.S_ISLNK(st.st_mode):
            return f"l:{os.readlink(host)}"
        return f"o{st.st_mode:o}"

    def digest(self, sources: list[Source], for_layer: bool = False) -> SourceDigest:
        """Content digest of a list of sources (what a COPY of them produces); `for_layer` as in walk."""
        files: dict[str, str] = {}
        for source in sources:
            for rel, host, st in self.entries(source, for_layer):
                files[rel] = self.entry_digest(host, st)
            if source.is_dir:
                files.setdefault(source.rel + "/", "d")
        h = hashlib.sha256()
        for rel in sorted(files):
            h.update(f"{rel}\0{files[rel]}\n".encode("utf-8", "surrogateescape"))
        return SourceDigest("sha256:" + h.hexdigest(), files)


def load(path: str | Path, dockerfile: str | None = None) -> BuildContext:
    return BuildContext(str(path), dockerfile)
