"""pyrunc/syscalls.py builds the part of ctypes it uses on `_ctypes` directly (import cost on the
run hot path). `_ctypes` is CPython's private half of ctypes, so these tests pin the equivalence
with the public package on whatever interpreter runs them: a CPython that changes `_ctypes` fails
here, not inside a container's init."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from pyrunc import syscalls
from pyrunc.syscalls import _C

SIMPLE = ["c_int", "c_uint", "c_long", "c_ulong", "c_ushort", "c_uint64", "c_char", "c_char_p",
          "c_void_p", "c_int32", "c_uint32", "c_size_t"]


@pytest.mark.parametrize("name", SIMPLE)
def test_simple_types_match_ctypes(name: str) -> None:
    ours, theirs = getattr(_C, name), getattr(ctypes, name)
    assert _C.sizeof(ours) == ctypes.sizeof(theirs)
    assert ctypes.alignment(ours) == ctypes.alignment(theirs)
    if name not in ("c_uint64", "c_int32", "c_uint32", "c_size_t"):  # ctypes aliases these per platform
        assert ours._type_ == theirs._type_
    if name not in ("c_char", "c_char_p", "c_void_p"):  # same range and signedness
        top = 2 ** (8 * ctypes.sizeof(theirs)) - 1
        assert ours(top).value == theirs(top).value
        assert ours(-1).value == theirs(-1).value


def test_values_round_trip() -> None:
    assert _C.c_int(-5).value == -5
    assert _C.c_ulong(2 ** 64 - 1).value == 2 ** 64 - 1
    assert _C.c_char_p(b"abc").value == b"abc"
    assert _C.c_uint64(1 << 40).value == 1 << 40


@pytest.mark.parametrize("init,size", [(b"abc", None), (b"a\0b", None), (b"xy", 8), (16, None)])
def test_create_string_buffer_matches_ctypes(init: bytes | int, size: int | None) -> None:
    ours = _C.create_string_buffer(init, size)
    theirs = ctypes.create_string_buffer(init, size)
    assert _C.sizeof(ours) == ctypes.sizeof(theirs)
    assert bytes(ours) == bytes(theirs)
    assert ours.raw == theirs.raw and ours.value == theirs.value


def test_structure_layout_matches_ctypes() -> None:
    class Ours(_C.Structure):
        _fields_ = [("a", _C.c_ushort), ("b", _C.c_uint64), ("c", _C.c_int)]

    class Theirs(ctypes.Structure):
        _fields_ = [("a", ctypes.c_ushort), ("b", ctypes.c_uint64), ("c", ctypes.c_int)]

    assert _C.sizeof(Ours) == ctypes.sizeof(Theirs)
    for field in ("a", "b", "c"):
        assert getattr(Ours, field).offset == getattr(Theirs, field).offset


def test_libc_call_returns_int_and_keeps_errno() -> None:
    """A libc function returns a C int by default and errno reaches get_errno (use_errno)."""
    assert syscalls._libc.getpid() == os.getpid()
    assert syscalls._libc.close(_C.c_int(-1)) == -1
    assert _C.get_errno() == errno.EBADF


def test_raw_syscall_error_is_an_oserror() -> None:
    """The wrappers' _check turns a failing call into OSError with the errno the kernel gave."""
    with pytest.raises(OSError) as info:
        syscalls.setns(-1, 0)
    assert info.value.errno == errno.EBADF
