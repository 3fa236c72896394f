"""COPY's file placement, with docker's directory semantics, into a mounted rootfs.

Rules (Dockerfile reference, COPY):
- A relative destination is relative to WORKDIR.
- The destination is a directory when it ends with `/`, already is a directory
  in the image, or several sources are copied; otherwise a file source is
  copied *as* the destination path.
- A directory source copies its contents (not itself) into the destination.
- Owners become 0:0 (or `--chown`), permission bits are kept (or `--chmod`),
  modification times are kept, symlinks are copied as symlinks.
- Every write goes through in-root resolution (steps/fs.py), so a symlink in
  the image can redirect a copy only to somewhere inside the image.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from typing import Iterable, Protocol

from pybuild.context import Source
from pybuild.errors import PybuildError
from pybuild.steps.fs import makedirs_in_root, resolve_in_root


class CopyError(PybuildError):
    pass


class SourceTree(Protocol):
    def entries(self, source: Source) -> list[tuple[str, str, os.stat_result]]: ...


@dataclass(frozen=True, slots=True)
class Placement:
    uid: int = 0
    gid: int = 0
    chmod: int | None = None        # --chmod (applies to files and directories)


def dest_path(dest: str, workdir: str) -> str:
    if dest.startswith("/"):
        return dest
    base = workdir or "/"
    return base.rstrip("/") + "/" + dest if dest not in (".", "./") else base.rstrip("/") + "/"


def dest_is_dir(rootfs: str, dest: str, n_sources: int) -> bool:
    if dest.endswith("/") or dest.endswith("/.") or n_sources > 1:
        return True
    return os.path.isdir(resolve_in_root(rootfs, dest))


class _Writer:
    def __init__(self, rootfs: str, place: Placement) -> None:
        self.rootfs = rootfs
        self.place = place
        self._dirs: dict[str, str] = {}
        self._dir_times: list[tuple[str, os.stat_result]] = []

    def parent(self, inside: str) -> str:
        """Host dir for the parent of `inside` (created as needed)."""
        parent = os.path.dirname(inside.rstrip("/")) or "/"
        host = self._dirs.get(parent)
        if host is None:
            host = makedirs_in_root(self.rootfs, parent, self.place.uid, self.place.gid)
            self._dirs[parent] = host
        return host

    def _mode(self, st: os.stat_result) -> int:
        return self.place.chmod if self.place.chmod is not None else stat.S_IMODE(st.st_mode)

    def put(self, inside: str, host_src: str, st: os.stat_result) -> None:
        target = os.path.join(self.parent(inside), os.path.basename(inside.rstrip("/")))
        existing = _lstat(target)
        if stat.S_ISDIR(st.st_mode):
            if existing is not None and stat.S_ISLNK(existing.st_mode):
                followed = resolve_in_root(self.rootfs, inside.rstrip("/"))
                if os.path.isdir(followed):
                    # a symlinked directory in the image is merged into, as docker does
                    self._dirs[inside.rstrip("/")] = followed
                    return
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                os.unlink(target)
                existing = None
            if existing is None:
                os.mkdir(target)
            os.chmod(target, self._mode(st))
            os.lchown(target, self.place.uid, self.place.gid)
            self._dirs[inside.rstrip("/")] = target
            self._dir_times.append((target, st))
            return
        if existing is not None:
            if stat.S_ISDIR(existing.st_mode):
                raise CopyError(f"cannot copy a file over the directory {inside}")
            os.unlink(target)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(host_src), target)
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(host_src, target, follow_symlinks=False)
            os.chmod(target, self._mode(st))
        else:
            # fifos and device nodes (COPY --from an image) are recreated as they were
            os.mknod(target, st.st_mode, st.st_rdev)
        os.lchown(target, self.place.uid, self.place.gid)
        os.utime(target, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=False)

    def finish(self) -> None:
        for target, st in reversed(self._dir_times):
            os.utime(target, ns=(st.st_mtime_ns, st.st_mtime_ns))


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def copy_sources(tree: SourceTree, sources: Iterable[Source], rootfs: str, dest: str,
                 place: Placement, as_dir: bool) -> None:
    """Copy resolved sources to `dest` (an absolute in-image path)."""
    writer = _Writer(rootfs, place)
    if as_dir:
        makedirs_in_root(rootfs, dest, place.uid, place.gid)
    for source in sources:
        if source.is_dir:
            base = dest.rstrip("/") or ""
            makedirs_in_root(rootfs, base or "/", place.uid, place.gid)
            cut = 0 if source.rel == "." else len(source.rel) + 1
            for rel, host, st in tree.entries(source):
                writer.put(f"{base}/{rel[cut:]}", host, st)
        else:
            target = (dest.rstrip("/") + "/" + os.path.basename(source.rel)) if as_dir else dest
            st = os.stat(source.path)
            writer.put(target, source.path, st)
    writer.finish()
