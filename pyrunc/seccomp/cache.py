"""Compiled seccomp filters, kept between runs (crun keeps such a cache too).

Compiling Docker's default profile to BPF costs ~35 ms of Python on every create
and exec that carries it, and podman, docker and Kubernetes send the same few
profiles thousands of times a day. So `prepare()` looks the compiled program up
here first.

Where: DIR_NAME under the runtime's state root (--root: the runtime's own
directory, 0711, root's). '@' cannot begin a container ID, so no container
collides with it.

Key: sha256 over the profile (the checked `spec.Seccomp`, in its canonical repr), the
bounding set and the field name it was compiled with, the native architecture,
pyrunc's version, and the size and mtime of every module of the compiler and its
syscall tables: an edited, upgraded or differently-installed compiler never reads
an entry another one wrote. Only what the compiler computes is cached; what
depends on the running kernel (which filter flags it knows) is probed on every
use, as before.

Entry: a one-line JSON header (the program's sha256 and length, the fields of
`Compiled` besides the program) and the program bytes, written atomically
(fsutil.atomic_write: unpredictable temp name, O_EXCL|O_NOFOLLOW, rename) and
checked against its sha256 when read: a damaged or foreign entry is a miss, which
compiles and rewrites it. At most MAX_ENTRIES entries: each write removes the
oldest ones beyond that. Failing to write the cache (read-only or full --root) is
not an error: the compiled program is used all the same.
"""

from __future__ import annotations

import os

from pyrunc import jsonfast
from pyrunc.record import tuple_record

try:
    from _sha256 import sha256  # CPython <= 3.11: 40 us to import, where hashlib costs ~10 ms (OpenSSL)
except ImportError:  # pragma: no cover - CPython >= 3.12
    from _sha2 import sha256  # type: ignore[no-redef]

DIR_NAME = "@seccomp"
MAX_ENTRIES = 64
_FORMAT = 1

# What the compiler computes for a profile, and what an entry holds. flag_bits: the
# profile's `flags` as (name, SECCOMP_FILTER_FLAG bit) pairs, probed against the kernel at
# each use.
Compiled = tuple_record("Compiled", "program notify flag_bits listener_path listener_metadata")


def _code_fingerprint() -> str:
    """Size and mtime of every module of the compiler and its tables."""
    from pyrunc import __version__

    here = os.path.dirname(os.path.abspath(__file__))
    parts = [__version__]
    for d in (here, os.path.join(here, "tables")):
        for entry in sorted(os.scandir(d), key=lambda e: e.name):
            if entry.name.endswith(".py"):
                st = entry.stat()
                parts.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def key(seccomp: object, bounding_caps: list[str] | None, field: str) -> str:
    """The entry name of a profile (a spec.Seccomp): its repr is canonical (fields in
    declaration order, values as Python literals) and 4x cheaper than its JSON."""
    head = f"{_FORMAT}|{os.uname().machine}|{field}|{sorted(bounding_caps or [])!r}|{_code_fingerprint()}\n"
    body = repr(seccomp)
    h = sha256(head.encode())
    h.update(body.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def get(cache_dir: str, entry_key: str) -> Compiled | None:
    """The entry for `entry_key`, or None (absent, damaged, unreadable: all a miss)."""
    try:
        with open(os.path.join(cache_dir, entry_key), "rb") as f:
            header, _, program = f.read().partition(b"\n")
        meta = jsonfast.loads(header)
        if (meta.get("format") != _FORMAT or len(program) != meta.get("length")
                or sha256(program).hexdigest() != meta.get("sha256")):
            return None
        bits = meta["flag_bits"]
        return Compiled(program, bool(meta["notify"]),
                        None if bits is None else tuple((str(n), int(b)) for n, b in bits),
                        meta["listener_path"], meta["listener_metadata"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def put(cache_dir: str, entry_key: str, compiled: Compiled) -> None:
    """Store atomically, then keep the MAX_ENTRIES newest; any failure leaves the cache as it was."""
    from pyrunc.fsutil import atomic_write

    header = jsonfast.dumps({"format": _FORMAT, "sha256": sha256(compiled.program).hexdigest(),
                             "length": len(compiled.program), "notify": compiled.notify,
                             "flag_bits": None if compiled.flag_bits is None
                             else [list(fb) for fb in compiled.flag_bits],
                             "listener_path": compiled.listener_path,
                             "listener_metadata": compiled.listener_metadata})
    try:
        os.makedirs(cache_dir, 0o700, exist_ok=True)
        atomic_write(os.path.join(cache_dir, entry_key), header.encode() + b"\n" + compiled.program, 0o600,
                     durable=False)
        entries = sorted(os.scandir(cache_dir), key=lambda e: e.stat(follow_symlinks=False).st_mtime_ns)
        for old in entries[:-MAX_ENTRIES]:
            if old.is_file(follow_symlinks=False) and len(old.name) == 64:
                os.unlink(old.path)
    except OSError as err:  # a read-only or full state root costs the next run a compile, nothing else
        from pyrunc import logs

        logs.debug(f"seccomp cache {cache_dir}: not written: {err.strerror}")
