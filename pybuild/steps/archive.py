"""ADD's two extras: local tar archives are unpacked, http(s) URLs are fetched.

- An archive is recognised by its bytes, not its name (as docker does):
  gzip, bzip2, xz, zstd or a plain tar. Entries keep their numeric owners
  (unless --chown) and modes. Extraction is pybuild.unpack's "plain" mode: every
  entry is placed through fds resolved inside the rootfs (openat2
  RESOLVE_IN_ROOT), `..` cannot climb out, hard links may only point inside the
  archive, metadata is set on fds or with AT_SYMLINK_NOFOLLOW, and the final
  directory-time pass re-checks each directory's inode, so a later entry that
  replaces `dd/` with `dd -> /host/file` changes nothing outside (issue 11
  finding 3). Names beginning with `.wh.` are refused: in the layer they would
  be whiteouts.
- A URL download lands in the build's temp dir with mode 0600 (docker's
  default for ADD from a URL); `--checksum=sha256:<hex>` is verified before use.
"""

from __future__ import annotations

import hashlib
import os
import stat
import urllib.parse

from pybuild.errors import PybuildError
from pybuild.steps.fs import makedirs_in_root

MAGIC = [
    (b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"),
]


class ArchiveError(PybuildError):
    pass


def _open_regular(path: str) -> int | None:
    """A read fd for `path` if it is a regular file (O_NONBLOCK: a FIFO in the context must not
    hang the build; never through a final symlink), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    return fd


def archive_kind(path: str) -> str | None:
    """'gz' | 'bz2' | 'xz' | 'zstd' | 'tar' | None (not an archive: copied as is)."""
    fd = _open_regular(path)
    if fd is None:
        return None
    try:
        head = os.pread(fd, 512, 0)
    finally:
        os.close(fd)
    for magic, kind in MAGIC:
        if head.startswith(magic):
            return kind
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def extract(path: str, kind: str, rootfs: str, dest: str, chown: tuple[int, int] | None) -> None:
    """Unpack archive `path` into the in-image directory `dest`."""
    import lzma
    import zlib

    from pybuild.compress import open_decompressed
    from pybuild.unpack import UnpackError, unpack_tar

    name = os.path.basename(path)
    makedirs_in_root(rootfs, dest, *(chown or (0, 0)))
    fd = _open_regular(path)
    if fd is None:
        raise ArchiveError(f"ADD {name}: not a regular file")
    try:
        with os.fdopen(fd, "rb") as raw:
            unpack_tar(open_decompressed(raw), rootfs, mode="plain", keep_owner=True, prefix=dest, chown=chown)
    except UnpackError as err:
        raise ArchiveError(f"ADD {name}: {str(err).removeprefix('unpack: ')}") from None
    except PybuildError as err:  # a corrupt compressed stream
        raise ArchiveError(f"ADD {name}: bad archive ({kind}): {err}") from None
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as err:
        raise ArchiveError(f"ADD {name}: bad archive ({kind}): {err}") from None


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
