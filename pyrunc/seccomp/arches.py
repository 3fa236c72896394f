"""The architectures pyrunc's seccomp compiler knows: audit tokens, word size,
byte order and the syscall table column of each.

`bits` is libseccomp's notion of the ABI size: on a 32-bit ABI (x86, x32, arm)
only the low 32 bits of an argument are compared, as libseccomp does, because
the kernel hands the filter zero-extended 32-bit registers there. Arches that
multiplex socket and SysV IPC calls (x86, s390x, ppc64) also get rules on
`socketcall(2)`/`ipc(2)` for those names, again as libseccomp 2.5 does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pyrunc.seccomp.tables.syscalls import ARCHES as _COLUMNS
from pyrunc.seccomp.tables.syscalls import SYSCALLS

X32_SYSCALL_BIT = 0x40000000

_EM_386, _EM_X86_64, _EM_ARM, _EM_AARCH64 = 3, 62, 40, 183
_EM_RISCV, _EM_S390, _EM_PPC64 = 243, 22, 21
_A64, _ALE = 0x80000000, 0x40000000


@dataclass(frozen=True, slots=True)
class Arch:
    name: str              # pyrunc's name (also `--arch` of the tools)
    scmp: str              # OCI / libseccomp name
    audit: int             # AUDIT_ARCH_* value in seccomp_data.arch
    bits: int              # 32 or 64: how many argument bits libseccomp compares
    big_endian: bool
    column: str            # column of tables/syscalls.py
    socketcall: int | None = None
    ipc: int | None = None

    def number(self, name: str) -> int | None:
        """The raw syscall number of `name` here, None if it has none."""
        row = SYSCALLS.get(name)
        return None if row is None else row[_COLUMNS.index(self.column)]

    def arg_offsets(self, index: int) -> tuple[int | None, int]:
        """Offsets in seccomp_data of the (high, low) 32-bit words of args[index];
        high is None on a 32-bit ABI."""
        base = 16 + 8 * index
        if self.bits == 32:
            return None, base + (4 if self.big_endian else 0)
        return (base, base + 4) if self.big_endian else (base + 4, base)


ARCHES: dict[str, Arch] = {a.name: a for a in (
    Arch("x86_64", "SCMP_ARCH_X86_64", _EM_X86_64 | _A64 | _ALE, 64, False, "x86_64"),
    Arch("x86", "SCMP_ARCH_X86", _EM_386 | _ALE, 32, False, "x86", socketcall=102, ipc=117),
    Arch("x32", "SCMP_ARCH_X32", _EM_X86_64 | _A64 | _ALE, 32, False, "x32"),
    Arch("aarch64", "SCMP_ARCH_AARCH64", _EM_AARCH64 | _A64 | _ALE, 64, False, "aarch64"),
    Arch("arm", "SCMP_ARCH_ARM", _EM_ARM | _ALE, 32, False, "arm"),
    Arch("riscv64", "SCMP_ARCH_RISCV64", _EM_RISCV | _A64 | _ALE, 64, False, "riscv64"),
    Arch("s390x", "SCMP_ARCH_S390X", _EM_S390 | _A64, 64, True, "s390x", socketcall=102, ipc=117),
    Arch("ppc64le", "SCMP_ARCH_PPC64LE", _EM_PPC64 | _A64 | _ALE, 64, False, "ppc64",
         socketcall=102, ipc=117),
    Arch("ppc64", "SCMP_ARCH_PPC64", _EM_PPC64 | _A64, 64, True, "ppc64", socketcall=102, ipc=117),
    Arch("s390", "SCMP_ARCH_S390", _EM_S390, 32, True, "s390", socketcall=102, ipc=117),
)}

BY_SCMP: dict[str, Arch] = {a.scmp: a for a in ARCHES.values()}

# Valid OCI names pyrunc has no syscall table for: an error naming them, not a skip.
UNSUPPORTED_SCMP = frozenset({
    "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH", "SCMP_ARCH_SHEB",
})

# Go/Docker names (archMap, includes.arches) -> pyrunc names.
GO_NAMES: dict[str, str] = {
    "amd64": "x86_64", "x86_64": "x86_64", "386": "x86", "x86": "x86", "x32": "x32",
    "arm64": "aarch64", "aarch64": "aarch64", "arm": "arm", "riscv64": "riscv64",
    "s390x": "s390x", "s390": "s390", "ppc64le": "ppc64le", "ppc64": "ppc64",
}

# seccomp_data: nr (u32) at 0, arch (u32) at 4, instruction_pointer at 8, args at 16.
OFFSET_NR = 0
OFFSET_ARCH = 4

_MACHINES = {"x86_64": "x86_64", "amd64": "x86_64", "i386": "x86", "i686": "x86",
             "aarch64": "aarch64", "arm64": "aarch64", "armv7l": "arm", "armv8l": "arm",
             "riscv64": "riscv64", "s390x": "s390x", "ppc64le": "ppc64le", "ppc64": "ppc64"}


def native() -> Arch:
    """The architecture this Python runs on (what `seccomp_arch_native()` says)."""
    machine = os.uname().machine  # not platform.machine(): platform imports re
    if machine not in _MACHINES:
        from pyrunc.errors import MissingFeature

        raise MissingFeature(f"seccomp on {machine}", "no syscall table for this machine")
    return ARCHES[_MACHINES[machine]]


def go_name(arch: Arch) -> str:
    """The Go/Docker spelling used by profile `archMap` and `includes.arches`."""
    return {"x86_64": "amd64", "x86": "x86", "aarch64": "arm64"}.get(arch.name, arch.name)
