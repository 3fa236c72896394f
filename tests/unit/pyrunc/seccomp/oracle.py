"""Shared helpers of the seccomp tests: profiles from tests/data, both compilers,
and the (arch, nr, args) tuples the differential tests run."""

from __future__ import annotations

import json
import os
from typing import Any

from pyrunc.seccomp import bpf, codegen, ruledb, profiles, rules
from pyrunc.seccomp.arches import ARCHES, X32_SYSCALL_BIT, Arch
from pyrunc.seccomp.reference import libseccomp_program_or_hang
from pyrunc.seccomp.tables.syscalls import NEWER_THAN_LIBSECCOMP

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "data", "seccomp")


def load_profile(name: str) -> dict[str, Any]:
    with open(os.path.join(DATA, name)) as f:
        return json.load(f)


def without_newer_names(oci: dict[str, Any]) -> dict[str, Any]:
    """Drop names libseccomp 2.5.4 does not know: there the compilers differ by design."""
    out = dict(oci)
    syscalls = []
    for rule in oci.get("syscalls", []):
        names = [n for n in rule["names"] if n not in NEWER_THAN_LIBSECCOMP]
        if names:
            syscalls.append({**rule, "names": names})
    out["syscalls"] = syscalls
    return out


def both(oci: dict[str, Any], arch: Arch) -> tuple[rules.Profile, list[bpf.Insn], list[bpf.Insn]]:
    profile = rules.parse(oci, ".linux.seccomp", arch)
    mine = codegen.generate(ruledb.build(profile), profile.default_action,
                            libseccomp_tree=ruledb.libseccomp_tree_layout(profile))
    theirs = libseccomp_insns(profile, arch)
    return profile, mine, theirs


def libseccomp_insns(profile: rules.Profile, arch: Arch) -> list[bpf.Insn]:
    """libseccomp's filter as instructions. libseccomp writes a filter in its
    target's byte order, and for a big-endian target on this little-endian host
    some of its RET values come out byte-swapped once more (an export quirk that
    never matters for the kernel, which only loads native filters). Undo both: a
    RET value that is no action libseccomp emits is swapped back."""
    data = libseccomp_program_or_hang(profile)
    if not arch.big_endian:
        return bpf.decode(data)
    out = []
    for ins in bpf.decode(data, ">"):
        if ins.code & 0x07 == bpf.BPF_RET and not _plausible(ins.k):
            ins = bpf.Insn(ins.code, ins.jt, ins.jf, int.from_bytes(ins.k.to_bytes(4, "big"), "little"))
        out.append(ins)
    return out


def _plausible(k: int) -> bool:
    action, data = k & bpf.RET_ACTION_FULL, k & bpf.RET_DATA
    if action in (bpf.RET_ERRNO, bpf.RET_TRACE):
        return True
    return action in (bpf.RET_KILL_PROCESS, bpf.RET_KILL_THREAD, bpf.RET_TRAP, bpf.RET_USER_NOTIF,
                      bpf.RET_LOG, bpf.RET_ALLOW) and data == 0


def numbers(arch: Arch) -> list[int]:
    base = list(range(0, 560)) + [1000, 0x3FFFFFFF, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF]
    if arch.audit == ARCHES["x86_64"].audit:
        base += [X32_SYSCALL_BIT + n for n in range(0, 560)]
    return base


def interesting_values(profile: rules.Profile) -> list[int]:
    vals = {0, 1, 0xFFFFFFFF, 1 << 32, (1 << 32) + 1, 0xFFFFFFFFFFFFFFFF, 0x80000000}
    for rule in profile.rules:
        for a in rule.args:
            for v in (a.datum, a.mask, a.datum | ~a.mask & 0xFFFFFFFFFFFFFFFF):
                for d in (-1, 0, 1):
                    vals.add((v + d) & 0xFFFFFFFFFFFFFFFF)
                vals.add(v ^ (1 << 32))
    return sorted(vals)


def disagreements(profile: rules.Profile, mine: list[bpf.Insn], theirs: list[bpf.Insn],
                  arg_sets: list[tuple[int, ...]], nrs_by_arch: dict[str, list[int]] | None = None,
                  foreign: tuple[int, ...] = (0x40000003, 0xC00000B7, 0x12345678)) -> list[str]:
    bad = []
    for arch in profile.arches:
        be = arch.big_endian
        for nr in (nrs_by_arch or {}).get(arch.name, numbers(arch)):
            for args in arg_sets:
                data = bpf.seccomp_data(nr, arch.audit, args, big_endian=be)
                x, y = bpf.run(mine, data, big_endian=be)[0], bpf.run(theirs, data, big_endian=be)[0]
                if x != y:
                    bad.append(f"{arch.name} nr={nr:#x} args={[hex(a) for a in args]}: "
                               f"pyrunc {bpf.action_name(x)} libseccomp {bpf.action_name(y)}")
    for audit in foreign:  # arches not in the filter: both must use the bad-arch action
        if any(a.audit == audit for a in profile.arches):
            continue
        data = bpf.seccomp_data(0, audit)
        x, y = bpf.run(mine, data)[0], bpf.run(theirs, data)[0]
        if x != y:
            bad.append(f"audit {audit:#x}: pyrunc {bpf.action_name(x)} libseccomp {bpf.action_name(y)}")
    return bad
