"""ADD's two extras: local tar archives are unpacked, http(s) URLs are fetched.

- An archive is recognised by its bytes, not its name (as docker does):
  gzip, bzip2, xz, zstd or a plain tar. zstd goes through the `zstd` tool,
  since Python 3.11 has no zstd module. Entries keep their numeric owners
  (unless --chown) and modes; every entry path is resolved inside the rootfs
  and `..` cannot climb out of it; hard links may only point inside the archive.
- A URL download lands in the build's temp dir with mode 0600 (docker's
  default for ADD from a URL); `--checksum=sha256:<hex>` is verified before use.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
import urllib.parse
from typing import IO

from pybuild.errors import PybuildError
from pybuild.steps.fs import makedirs_in_root, resolve_in_root

MAGIC = [
    (b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"),
]


class ArchiveError(PybuildError):
    pass


def archive_kind(path: str) -> str | None:
    """'gz' | 'bz2' | 'xz' | 'zstd' | 'tar' | None (not an archive: copied as is)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except (IsADirectoryError, PermissionError):
        return None
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def _open_stream(path: str, kind: str) -> tuple[IO[bytes], "subprocess.Popen[bytes] | None"]:
    if kind == "zstd":
        tool = shutil.which("zstd")
        if tool is None:
            raise ArchiveError(f"ADD {os.path.basename(path)}: zstd archive needs the zstd tool on PATH")
        proc = subprocess.Popen([tool, "-dc", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        return proc.stdout, proc
    return open(path, "rb"), None


def extract(path: str, kind: str, rootfs: str, dest: str, chown: tuple[int, int] | None) -> None:
    """Unpack archive `path` into the in-image directory `dest`."""
    dest_host = makedirs_in_root(rootfs, dest, *(chown or (0, 0)))
    fileobj, proc = _open_stream(path, kind)
    mode = {"gz": "r|gz", "bz2": "r|bz2", "xz": "r|xz"}.get(kind, "r|")
    dir_times: list[tuple[str, int]] = []
    try:
        with tarfile.open(fileobj=fileobj, mode=mode) as tar:
            for member in tar:
                _extract_member(tar, member, rootfs, dest, dest_host, chown, dir_times)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ArchiveError(f"ADD {os.path.basename(path)}: bad archive: {err}") from err
    finally:
        fileobj.close()
        if proc is not None:
            proc.wait()
    if proc is not None and proc.returncode != 0:
        raise ArchiveError(f"ADD {os.path.basename(path)}: zstd -d failed "
                           f"({proc.stderr.read().decode(errors='replace').strip() if proc.stderr else ''})")
    for target, mtime in reversed(dir_times):
        os.utime(target, (mtime, mtime))


def _extract_member(tar: tarfile.TarFile, m: tarfile.TarInfo, rootfs: str, dest: str,
                    dest_host: str, chown: tuple[int, int] | None, dir_times: list) -> None:
    name = m.name.lstrip("/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts:
        return
    if ".." in parts:
        raise ArchiveError(f"archive entry {m.name!r}: '..' is not allowed")
    inside = dest.rstrip("/") + "/" + "/".join(parts)
    uid, gid = chown if chown else (m.uid, m.gid)
    parent = makedirs_in_root(rootfs, os.path.dirname(inside) or "/", uid, gid)
    target = os.path.join(parent, parts[-1])
    try:
        existing = os.lstat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None and not (m.isdir() and stat.S_ISDIR(existing.st_mode)):
        if stat.S_ISDIR(existing.st_mode):
            shutil.rmtree(target)
        else:
            os.unlink(target)
    if m.isdir():
        if existing is None or not stat.S_ISDIR(existing.st_mode):
            os.mkdir(target)
        dir_times.append((target, int(m.mtime)))
    elif m.isreg():
        src = tar.extractfile(m)
        assert src is not None
        with open(target, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    elif m.issym():
        os.symlink(m.linkname, target)
    elif m.islnk():
        link_parts = [p for p in m.linkname.lstrip("/").split("/") if p not in ("", ".")]
        if ".." in link_parts:
            raise ArchiveError(f"archive entry {m.name!r}: hard link outside the archive")
        os.link(resolve_in_root(rootfs, dest.rstrip("/") + "/" + "/".join(link_parts), follow_last=False),
                target)
        return
    elif m.ischr() or m.isblk() or m.isfifo():
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        os.mknod(target, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor))
    else:
        return
    os.lchown(target, uid, gid)
    if not m.issym():
        os.chmod(target, m.mode & 0o7777)
    os.utime(target, (m.mtime, m.mtime), follow_symlinks=False)


def is_url(src: str) -> bool:
    return src.startswith(("http://", "https://"))


def url_filename(url: str) -> str:
    name = os.path.basename(urllib.parse.urlparse(url).path.rstrip("/"))
    return name or "index.html"


def fetch(url: str, dest_file: str, checksum: str | None) -> tuple[str, float | None]:
    """Download `url` to `dest_file` (mode 0600); return (sha256 digest, Last-Modified)."""
    import email.utils
    import urllib.request

    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, \
                open(os.open(dest_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            modified = resp.headers.get("Last-Modified")
            while chunk := resp.read(1 << 20):
                h.update(chunk)
                out.write(chunk)
    except OSError as err:
        raise ArchiveError(f"ADD {url}: download failed: {err}") from err
    digest = "sha256:" + h.hexdigest()
    if checksum and checksum != digest:
        raise ArchiveError(f"ADD {url}: checksum mismatch: expected {checksum}, got {digest}")
    mtime = None
    if modified:
        parsed = email.utils.parsedate_to_datetime(modified)
        mtime = parsed.timestamp() if parsed else None
    return digest, mtime
