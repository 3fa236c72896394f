"""Content-addressed blob files: the streaming writer (temp + fsync + rename) and the verifying reader.

Used by pybuild.store; kept apart so that the two invariants sit in one small place:
  - BlobWriter: a blob appears under its digest only complete and fsynced (temp file in the blob
    directory, fsync, rename, fsync of the directory); `commit(expected)` refuses other content.
  - VerifiedReader: hashes what it returns and raises DigestMismatch at EOF (callers that stop early
    call `drain()`), so no corrupt byte is accepted silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile

from pybuild import fault_point
from pybuild.errors import DigestMismatch, StoreError
from pyrunc.fsutil import fsync_dir

_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_CHUNK = 1 << 20


def check_digest(digest: str) -> str:
    """Return the hex part; refuse anything that is not sha256:<64 hex> (digests become paths)."""
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        raise StoreError(f"invalid digest: {digest!r}")
    return digest[7:]



class BlobWriter:
    """Streams a blob into a temp file beside its final place; `commit` fsyncs, checks, renames."""

    def __init__(self, blob_dir: str) -> None:
        self._dir = blob_dir
        fd, self._tmp = tempfile.mkstemp(prefix=".tmp-", dir=blob_dir)
        os.fchmod(fd, 0o644)  # blobs are public content, as every OCI layout writer leaves them
        self._file = os.fdopen(fd, "wb", buffering=_CHUNK)
        self._hash = hashlib.sha256()
        self.size = 0
        self._done = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._hash.update(data)
        try:
            self._file.write(data)
        except OSError as err:
            raise StoreError(f"{self._dir}: writing a blob: {err.strerror or err}") from None
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def commit(self, expected: str | None = None) -> tuple[str, int]:
        """Make the blob visible under its digest; idempotent if it already exists."""
        digest = "sha256:" + self._hash.hexdigest()
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as err:  # the temp file is removed by abort()
            raise StoreError(f"{self._dir}: writing a blob: {err.strerror or err}") from None
        self._file.close()
        self._done = True
        fault_point("blob.synced")
        if expected is not None and expected != digest:
            os.unlink(self._tmp)
            raise DigestMismatch(expected, digest)
        os.rename(self._tmp, os.path.join(self._dir, digest[7:]))
        fsync_dir(self._dir)
        return digest, self.size

    def abort(self) -> None:
        """Throw the temp file away. Its name goes first: closing flushes the buffer, which fails again
        on a full disk (ENOSPC), and that must neither keep the half-written file nor hide the error
        that made the caller abort (found by tests/integration/reliability/test_disk_full.py)."""
        if not self._done:
            self._done = True
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            with contextlib.suppress(OSError):  # the bytes are discarded; the fd is closed regardless
                self._file.close()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


class VerifiedReader:
    """A read-only stream over a blob that hashes what it returns and raises DigestMismatch at EOF."""

    def __init__(self, path: str, digest: str, size: int | None = None) -> None:
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()/__exit__
        self._digest = digest
        self._size = size
        self._hash = hashlib.sha256()
        self._read = 0
        self._checked = False

    def read(self, n: int = -1) -> bytes:
        read_all = n is None or n < 0
        data = self._file.read(-1 if read_all else n) or b""
        self._hash.update(data)
        self._read += len(data)
        if (read_all or not data) and not self._checked:
            self._check()
        return data

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    def _check(self) -> None:
        self._checked = True
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self._digest or (self._size is not None and self._size != self._read):
            raise DigestMismatch(self._digest, actual)

    def drain(self) -> None:
        """Read to EOF (verifying): callers whose parser stops early call this."""
        while self.read(_CHUNK):
            pass

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> VerifiedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
