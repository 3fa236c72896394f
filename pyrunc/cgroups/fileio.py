"""Thin cgroupfs I/O: write a plan all-or-nothing, read values back.

`Writer` records the previous content of every file before it writes it, so
a failure half-way restores what was there (the issue's "apply all or restore
the previous values"). Errors become CgroupError naming the file and value.
"""

from __future__ import annotations

import errno
import os

from pyrunc.errors import CgroupError

# files whose lines are keyed by "major:minor": restoring them must also
# reset devices that were absent before (written as "MAJ:MIN 0"/"max")
_DEVICE_KEYED_V1 = frozenset({"blkio.weight_device", "blkio.bfq.weight_device", "blkio.leaf_weight_device"})


def _device_keyed(name: str) -> bool:
    """blkio.throttle.*_device and the weight_device files (no `re`: this
    module is on the run hot path)."""
    if name.startswith("blkio.throttle.") and name.endswith("_device"):
        return name[len("blkio.throttle."):-len("_device")].replace("_", "").isalnum()
    return name in _DEVICE_KEYED_V1


def read(path: str) -> str:
    with open(path, "rb", buffering=0) as f:
        return f.read().decode().strip()


def read_int(path: str, default: int = 0) -> int:
    try:
        text = read(path)
    except OSError:
        return default
    if text == "max":
        return default
    try:
        return int(text)
    except ValueError:
        return default


def read_flat(path: str) -> dict[str, int]:
    """`key value` lines (memory.stat, cpu.stat, memory.events) → dict."""
    out: dict[str, int] = {}
    try:
        text = read(path)
    except OSError:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def write(path: str, value: str) -> None:
    """Write each line of `value` with its own write(2), as cgroupfs parses
    one record per write."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)  # O_TRUNC as runc (a no-op on cgroupfs)
    except OSError as err:
        raise CgroupError(f"open {path}: {err.strerror}") from None
    try:
        for line in value.split("\n"):
            try:
                os.write(fd, line.encode())
            except OSError as err:
                raise CgroupError(f"write {path} {line!r}: {err.strerror}") from err
    finally:
        os.close(fd)


def _restore_value(name: str, old: str, new: str) -> str | None:
    """What to write back to undo writing `new` over `old` (None: nothing)."""
    if name == "memory.oom_control":
        for line in old.splitlines():
            if line.startswith("oom_kill_disable "):
                return line.split()[1]
        return None
    if _device_keyed(name) or name in ("io.max", "io.weight", "io.bfq.weight"):
        old_keys = {ln.split()[0] for ln in old.splitlines() if ln.strip()}
        undo = []
        for line in new.split("\n"):
            key = line.split()[0] if line.strip() else ""
            if key and key not in old_keys and ":" in key:
                if name == "io.max":
                    undo.append(f"{key} rbps=max wbps=max riops=max wiops=max")
                elif name.startswith("blkio.throttle"):
                    undo.append(f"{key} 0")
        return "\n".join(undo + [ln for ln in old.splitlines() if ln.strip()]) or None
    return old


class Writer:
    """Writes files, remembering how to undo each write; `rollback()` undoes
    them in reverse order (best effort: the first error is the one raised)."""

    def __init__(self) -> None:
        self.undo: list[tuple[str, str]] = []

    def write(self, path: str, value: str) -> None:
        name = os.path.basename(path)
        old: str | None
        if name in ("devices.allow", "devices.deny"):
            old = None  # restored as a whole from devices.list by the manager
        else:
            try:
                old = read(path)
            except OSError as err:
                if err.errno == errno.ENOENT:
                    raise CgroupError(f"write {path}: {err.strerror} (the kernel lacks this cgroup file)") from None
                old = None
        write(path, value)
        if old is not None:
            restore = _restore_value(name, old, value)
            if restore is not None:
                self.undo.append((path, restore))

    def rollback(self) -> None:
        for path, value in reversed(self.undo):
            try:
                write(path, value)
            except CgroupError:
                continue  # keep undoing the rest; the original error is what the user sees
        self.undo.clear()
