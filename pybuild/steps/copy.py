"""COPY and ADD: sources from the context, another stage/image (--from), a
heredoc, or (ADD) a URL or a local tar archive, written through the stage's
overlay so the upper dir is exactly the diff.

Cache inputs: for context sources the content digest of what is copied (so
an unchanged file keeps the cache even if touched, and `--explain-cache`
can name the files that changed); for --from the source stage's cache key
or image digest; for URLs the downloaded content's digest (or --checksum).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass

from pybuild.context import Source, has_glob
from pybuild.dockerfile.instructions import AddInstr, CopyInstr
from pybuild.errors import ContextError, InstructionError
from pybuild.overlay import mount_overlay
from pybuild.steps.contract import BuildEnv, Outcome, Prepared, StageState
from pybuild.steps.archive import archive_kind, extract, fetch, is_url, url_filename
from pybuild.steps.copytree import Placement, SourceTree, copy_sources, dest_is_dir, dest_path
from pybuild.steps.fs import resolve_in_root
from pybuild.steps.users import resolve_chown


@dataclass(frozen=True, slots=True)
class Plan:
    srcs: list[str]          # expanded source words
    dest: str                # expanded destination (as written)
    from_: str | None
    chown: str | None
    chmod: int | None
    heredocs: list[tuple[str, str]]     # (file name, content)
    local: list[Source]                 # resolved context sources
    urls: list[tuple[str, str, str]]    # (url, downloaded file, digest)


class RootfsTree:
    """Sources inside another stage's (or image's) mounted rootfs."""

    def __init__(self, root: str) -> None:
        self.root = root

    def resolve(self, src: str) -> list[Source]:
        from pybuild.context import _go_match_regex

        parts = [p for p in src.split("/") if p not in ("", ".")]
        matches = [""]
        for comp in parts:
            nxt = []
            for base in matches:
                if not has_glob(comp):
                    nxt.append(f"{base}/{comp}")
                    continue
                host = resolve_in_root(self.root, base or "/")
                try:
                    names = sorted(os.listdir(host))
                except (NotADirectoryError, FileNotFoundError):
                    continue
                rx = _go_match_regex(comp)
                nxt.extend(f"{base}/{n}" for n in names if rx.match(n))
            matches = nxt
        out = []
        for m in matches or ["/"]:
            host = resolve_in_root(self.root, m or "/")
            if os.path.lexists(host):
                out.append(Source(m.lstrip("/") or ".", host, os.path.isdir(host)))
        if not out:
            raise ContextError(f"{src}: not found")
        return out

    def entries(self, source: Source) -> list[tuple[str, str, os.stat_result]]:
        if not source.is_dir:
            return [(source.rel, source.path, os.stat(source.path))]
        out = []
        prefix = "" if source.rel == "." else source.rel + "/"
        for dirpath, dirnames, filenames in os.walk(source.path):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, source.path)
            for name in sorted(dirnames + filenames):
                host = os.path.join(dirpath, name)
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                out.append((prefix + rel, host, os.lstat(host)))
        return sorted(out, key=lambda t: t[0])


def _parse_chmod(raw: str | None) -> int | None:
    if not raw:
        return None
    try:
        value = int(raw, 8)
    except ValueError:
        raise InstructionError(f"--chmod={raw}: expected an octal mode") from None
    if value > 0o7777:
        raise InstructionError(f"--chmod={raw}: mode out of range")
    return value


def _unsupported(ins: CopyInstr | AddInstr) -> str | None:
    """The first flag pybuild parses but cannot honour, or None."""
    if ins.excludes:
        return "exclude"
    if isinstance(ins, CopyInstr) and ins.parents:
        return "parents"
    if isinstance(ins, AddInstr) and ins.unpack is not None:
        return "unpack"
    return None


def _flag_text(word: str) -> str:
    """A flag as the step's text shows it: `--name=value`, or `--name` when it has no value."""
    name, _, value = word[2:].partition("=")
    return f"--{name}={value}" if value else f"--{name}"


class CopyStep:
    """COPY; ADD is the same step with URLs and archives allowed (`AddStep`)."""

    record: type[CopyInstr] | type[AddInstr] = CopyInstr
    metadata_only = False
    add = False
    name = "COPY"

    def prepare(self, b: BuildEnv, st: StageState, ins: CopyInstr | AddInstr) -> Prepared:
        unsupported = _unsupported(ins)
        if unsupported:
            raise InstructionError(f"{self.name} --{unsupported} is not supported by pybuild")
        env = st.env()
        srcs = [b.lex.process_word(w, env) for w in ins.sources]
        dest = b.lex.process_word(ins.dest, env)
        from_ = ins.from_ if isinstance(ins, CopyInstr) else ""
        chown = b.lex.process_word(ins.chown, env) if ins.chown else None
        chmod = _parse_chmod(b.lex.process_word(ins.chmod, env) if ins.chmod else None)
        checksum = ins.checksum if isinstance(ins, AddInstr) else ""
        heredocs = []
        for doc in ins.contents:
            content = doc.data
            if doc.expand and "$" in content:
                # BuildKit expands heredoc bodies with quotes and escapes kept raw
                import dataclasses as _dc

                raw = _dc.replace(b.lex, raw_quotes=True, raw_escapes=True)
                content = raw.process_word(content, env)
            heredocs.append((doc.path, content))
        local_words = []
        url_words = []
        for word in srcs:
            if is_url(word):
                if not self.add:
                    raise InstructionError(f"COPY {word}: source can't be a URL (use ADD)")
                url_words.append(word)
            else:
                local_words.append(word)
        if checksum and (not url_words or len(srcs) != 1):
            raise InstructionError("ADD --checksum requires exactly one http(s) source")
        files: dict[str, str] = {}
        h = hashlib.sha256()
        local: list[Source] = []
        if from_:
            assert b.key_of is not None
            h.update(f"from {from_} {b.key_of(from_)} {local_words}".encode())
        else:
            for word in local_words:
                try:
                    found = b.context.resolve(word)
                except ContextError as err:
                    raise InstructionError(f"{self.name} {word}: {str(err).split(': ', 1)[-1]}") from None
                local.extend(found)
            digest = b.context.digest(local, for_layer=True)
            files.update(digest.files)
            h.update(digest.digest.encode())
        for name, content in heredocs:
            h.update(f"heredoc {name}\0{content}".encode("utf-8", "surrogateescape"))
        urls = []
        for url in url_words:
            if checksum:
                urls.append((url, "", checksum))  # downloaded in apply(); the checksum is the key
                h.update(f"url {url} {checksum}".encode())
                continue
            path = os.path.join(b.temp.new_dir("download"))
            os.mkdir(path, 0o700)
            target = os.path.join(path, url_filename(url))
            digest_url, mtime = fetch(url, target, None)
            if mtime is not None:
                os.utime(target, (mtime, mtime))
            urls.append((url, target, digest_url))
            files[url] = digest_url
            h.update(f"url {url} {digest_url}".encode())
        plan = Plan(srcs=srcs, dest=dest, from_=from_ or None, chown=chown, chmod=chmod, heredocs=heredocs,
                    local=local, urls=urls)
        flags = " ".join(_flag_text(word) for word in ins.flags)
        words = srcs + [f"<<{doc.path}" for doc in ins.contents]
        text = f"{self.name} {flags + ' ' if flags else ''}{' '.join(words)} {dest}"
        return Prepared(text=text, sources="sha256:" + h.hexdigest(), files=files,
                        extra={"user": st.container.user, "workdir": st.container.working_dir},
                        payload=plan)

    def apply(self, b: BuildEnv, st: StageState, ins: CopyInstr | AddInstr, prep: Prepared) -> Outcome:
        plan = prep.payload
        assert isinstance(plan, Plan)
        assert b.ensure_lowers is not None
        lowers = b.ensure_lowers(st)
        dest = dest_path(plan.dest, st.container.working_dir or "/")
        with contextlib.ExitStack() as stack:
            ov = stack.enter_context(mount_overlay(b.temp.new_dir("step"), list(reversed(lowers))))
            ids = resolve_chown(ov.merged, plan.chown) if plan.chown else None
            if ids is not None:
                from pybuild.rootless import check_mapped

                check_mapped(ids.uid, ids.gid, f"--chown={plan.chown}")
            place = Placement(uid=ids.uid if ids else 0, gid=ids.gid if ids else 0, chmod=plan.chmod)
            if plan.from_:
                assert b.lowers_of is not None
                src_lowers = b.lowers_of(plan.from_)
                src_ov = stack.enter_context(mount_overlay(b.temp.new_dir("from"), list(reversed(src_lowers))))
                tree = RootfsTree(src_ov.merged)
                sources = [s for w in plan.srcs for s in tree.resolve(w)]
                self._copy(tree, sources, ov.merged, dest, place, len(plan.srcs), archives=None)
            else:
                n = len(plan.local) + len(plan.heredocs) + len(plan.urls)
                owner = (place.uid, place.gid) if plan.chown else None
                self._copy(b.context, plan.local, ov.merged, dest, place, n,
                           archives=owner if self.add else None, unpack=self.add)
                for name, content in plan.heredocs:
                    hd = b.temp.new_dir("heredoc")
                    os.mkdir(hd, 0o700)
                    path = os.path.join(hd, name)
                    with open(path, "w", encoding="utf-8", errors="surrogateescape") as fh:
                        fh.write(content)  # any bytes the Dockerfile held, written back as they were
                    os.chmod(path, 0o644)
                    src = Source(name, path, False)
                    copy_sources(b.context, [src], ov.merged, dest, place, dest_is_dir(ov.merged, dest, n))
                for url, path, digest in plan.urls:
                    if not path:
                        dl = b.temp.new_dir("download")
                        os.mkdir(dl, 0o700)
                        path = os.path.join(dl, url_filename(url))
                        _, mtime = fetch(url, path, digest)
                        if mtime is not None:
                            os.utime(path, (mtime, mtime))
                    src = Source(os.path.basename(path), path, False)
                    copy_sources(b.context, [src], ov.merged, dest, place, dest_is_dir(ov.merged, dest, n))
        created_by = f"{prep.text} # buildkit"
        return Outcome(config=st.config, created_by=created_by, diff=ov.upper, base_lowers=lowers)

    def _copy(self, tree: "SourceTree", sources: list[Source], rootfs: str, dest: str, place: Placement,
              n: int, archives: tuple[int, int] | None, unpack: bool = False) -> None:
        """Copy sources; with `unpack` (ADD), local tar archives are extracted
        instead, owned by `archives` (--chown) or by their own numeric owners."""
        as_dir = dest_is_dir(rootfs, dest, n)
        plain = []
        for source in sources:
            kind = archive_kind(source.path) if unpack and not source.is_dir else None
            if kind is not None:
                extract(source.path, kind, rootfs, dest, archives)
            else:
                plain.append(source)
        if plain:
            copy_sources(tree, plain, rootfs, dest, place, as_dir)


class AddStep(CopyStep):
    record = AddInstr
    add = True
    name = "ADD"
