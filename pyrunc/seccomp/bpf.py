"""Classic BPF as seccomp uses it: instructions, encoding, a reference
interpreter and a disassembler.

The interpreter is the oracle of `pyrunc seccomp check` and of the
differential tests: it runs any filter (pyrunc's or libseccomp's) on a
seccomp_data built for one architecture and returns the 32-bit action the
kernel would act on. It implements the instruction subset the kernel's seccomp
verifier accepts (loads from seccomp_data, ALU, jumps, RET, scratch memory).
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

# instruction classes and fields (linux/filter.h)
BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_ALU, BPF_JMP, BPF_RET, BPF_MISC = range(8)
BPF_W, BPF_H, BPF_B = 0x00, 0x08, 0x10
BPF_IMM, BPF_ABS, BPF_IND, BPF_MEM, BPF_LEN = 0x00, 0x20, 0x40, 0x60, 0x80
BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50
BPF_LSH, BPF_RSH, BPF_NEG, BPF_MOD, BPF_XOR = 0x60, 0x70, 0x80, 0x90, 0xA0
BPF_JA, BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET = 0x00, 0x10, 0x20, 0x30, 0x40
BPF_K, BPF_X, BPF_A = 0x00, 0x08, 0x10
BPF_TAX, BPF_TXA = 0x00, 0x80
BPF_MAXINSNS = 4096

# seccomp return values (linux/seccomp.h)
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000
RET_ACTION_FULL = 0xFFFF0000
RET_DATA = 0x0000FFFF

_INSN = struct.Struct("=HBBI")  # struct sock_filter in native byte order


@dataclass(frozen=True, slots=True)
class Insn:
    code: int
    jt: int = 0
    jf: int = 0
    k: int = 0


class BPFError(Exception):
    """A program the kernel would reject, or one that misbehaves when run."""


def encode(program: list[Insn]) -> bytes:
    """struct sock_filter[] in native byte order, as seccomp(2) takes it."""
    return b"".join(_INSN.pack(i.code, i.jt, i.jf, i.k & 0xFFFFFFFF) for i in program)


def decode(data: bytes, order: str = "=") -> list[Insn]:
    """struct sock_filter[] → instructions; order "<" or ">" reads a foreign filter
    (libseccomp writes a filter in its target architecture's byte order)."""
    if len(data) % 8:
        raise BPFError(f"filter length {len(data)} is not a multiple of 8")
    insn = struct.Struct(order + "HBBI")
    return [Insn(*insn.unpack_from(data, off)) for off in range(0, len(data), 8)]


def action_name(ret: int) -> str:
    """`ALLOW`, `ERRNO(13)`, `TRACE(1)`, `KILL_THREAD`, ... for a RET value."""
    action, data = ret & RET_ACTION_FULL, ret & RET_DATA
    if action == RET_KILL_PROCESS:
        return "KILL_PROCESS"
    names = {RET_KILL_THREAD: "KILL_THREAD", RET_TRAP: "TRAP", RET_USER_NOTIF: "NOTIFY",
             RET_LOG: "LOG", RET_ALLOW: "ALLOW"}
    if action == RET_ERRNO:
        return f"ERRNO({data})"
    if action == RET_TRACE:
        return f"TRACE({data})"
    if action in names:
        return names[action]
    return f"0x{ret:08x}"


def seccomp_data(nr: int, audit_arch: int, args: tuple[int, ...] = (), *, big_endian: bool = False,
                 ip: int = 0) -> bytes:
    """struct seccomp_data as the kernel lays it out for a task of that arch."""
    full = list(args) + [0] * (6 - len(args))
    order = ">" if big_endian else "<"
    return struct.pack(order + "IIQ6Q", nr & 0xFFFFFFFF, audit_arch, ip,
                       *(a & 0xFFFFFFFFFFFFFFFF for a in full))


def run(program: list[Insn], data: bytes, *, big_endian: bool = False) -> tuple[int, int]:
    """Run `program` on `data` (a seccomp_data). Returns (return value, number of
    instructions executed). Raises BPFError where the kernel would refuse."""
    order = ">I" if big_endian else "<I"
    a = x = 0
    mem = [0] * 16
    pc = steps = 0
    n = len(program)
    while True:
        if pc >= n:
            raise BPFError(f"fell off the end of the program at {pc}")
        ins = program[pc]
        steps += 1
        code, k = ins.code, ins.k
        cls = code & 0x07
        if cls == BPF_RET:
            src = code & 0x18
            return (a if src == BPF_A else k) & 0xFFFFFFFF, steps
        if cls == BPF_LD:
            mode = code & 0xE0
            if mode == BPF_ABS and code & 0x18 == BPF_W:
                if k % 4 or k + 4 > len(data):
                    raise BPFError(f"load of seccomp_data offset {k} at {pc}")
                a = struct.unpack_from(order, data, k)[0]
            elif mode == BPF_IMM:
                a = k
            elif mode == BPF_MEM:
                a = mem[k]
            elif mode == BPF_LEN:
                a = len(data)
            else:
                raise BPFError(f"unsupported load 0x{code:02x} at {pc}")
        elif cls == BPF_LDX:
            mode = code & 0xE0
            x = {BPF_IMM: k, BPF_MEM: mem[k & 15], BPF_LEN: len(data)}.get(mode, None)  # type: ignore[assignment]
            if x is None:
                raise BPFError(f"unsupported ldx 0x{code:02x} at {pc}")
        elif cls == BPF_ST:
            mem[k & 15] = a
        elif cls == BPF_STX:
            mem[k & 15] = x
        elif cls == BPF_ALU:
            a = _alu(code, a, x if code & BPF_X else k, pc)
        elif cls == BPF_JMP:
            op = code & 0xF0
            if op == BPF_JA:
                pc += 1 + k
                continue
            operand = x if code & BPF_X else k
            if op == BPF_JEQ:
                taken = a == operand
            elif op == BPF_JGT:
                taken = a > operand
            elif op == BPF_JGE:
                taken = a >= operand
            elif op == BPF_JSET:
                taken = bool(a & operand)
            else:
                raise BPFError(f"unsupported jump 0x{code:02x} at {pc}")
            pc += 1 + (ins.jt if taken else ins.jf)
            continue
        elif cls == BPF_MISC:
            if code & 0xF8 == BPF_TAX:
                x = a
            else:
                a = x
        pc += 1


def _alu(code: int, a: int, operand: int, pc: int) -> int:
    op = code & 0xF0
    if op in (BPF_DIV, BPF_MOD) and operand == 0:
        raise BPFError(f"division by zero at {pc}")
    result = {
        BPF_ADD: lambda: a + operand, BPF_SUB: lambda: a - operand, BPF_MUL: lambda: a * operand,
        BPF_DIV: lambda: a // operand, BPF_MOD: lambda: a % operand, BPF_OR: lambda: a | operand,
        BPF_AND: lambda: a & operand, BPF_XOR: lambda: a ^ operand,
        BPF_LSH: lambda: a << (operand & 31), BPF_RSH: lambda: a >> (operand & 31),
        BPF_NEG: lambda: -a,
    }.get(op)
    if result is None:
        raise BPFError(f"unsupported alu 0x{code:02x} at {pc}")
    return result() & 0xFFFFFFFF


_JMP_NAMES = {BPF_JEQ: "jeq", BPF_JGT: "jgt", BPF_JGE: "jge", BPF_JSET: "jset"}
_ALU_NAMES = {BPF_ADD: "add", BPF_SUB: "sub", BPF_MUL: "mul", BPF_DIV: "div", BPF_OR: "or",
              BPF_AND: "and", BPF_LSH: "lsh", BPF_RSH: "rsh", BPF_NEG: "neg", BPF_MOD: "mod",
              BPF_XOR: "xor"}
_FIELDS = {0: "nr", 4: "arch", 8: "ip_lo", 12: "ip_hi"}


def _field(k: int, big_endian: bool) -> str:
    if k in _FIELDS:
        return _FIELDS[k] if not big_endian or k < 8 else {8: "ip_hi", 12: "ip_lo"}[k]
    index, word = divmod(k - 16, 8)
    high = (word == 0) if big_endian else (word == 4)
    return f"args[{index}].{'hi' if high else 'lo'}"


def disassemble(program: list[Insn], *, big_endian: bool = sys.byteorder == "big") -> str:
    """One line per instruction: index, mnemonic, operands and jump targets."""
    from pyrunc.seccomp.arches import ARCHES

    audits = {a.audit: a.name for a in reversed(list(ARCHES.values()))}
    lines = []
    for pc, ins in enumerate(program):
        cls, k = ins.code & 0x07, ins.k
        if cls == BPF_LD and ins.code & 0xE0 == BPF_ABS:
            text = f"ld  [{k}]  ; {_field(k, big_endian)}"
        elif cls == BPF_LD:
            text = f"ld  #{k:#x}"
        elif cls == BPF_RET:
            text = "ret a" if ins.code & 0x18 == BPF_A else f"ret {action_name(k)}  ; {k:#010x}"
        elif cls == BPF_JMP and ins.code & 0xF0 == BPF_JA:
            text = f"ja  {pc + 1 + k}"
        elif cls == BPF_JMP:
            name = _JMP_NAMES.get(ins.code & 0xF0, f"j?{ins.code:#x}")
            note = f"  ; {audits[k]}" if k in audits and name == "jeq" and k > 0xFFFF else ""
            text = f"{name} #{k:#x}  true:{pc + 1 + ins.jt} false:{pc + 1 + ins.jf}{note}"
        elif cls == BPF_ALU:
            text = f"{_ALU_NAMES.get(ins.code & 0xF0, '?')} #{k:#x}"
        elif cls == BPF_MISC:
            text = "tax" if ins.code & 0xF8 == BPF_TAX else "txa"
        elif cls in (BPF_ST, BPF_STX):
            text = f"{'st' if cls == BPF_ST else 'stx'} M[{k}]"
        else:
            text = f"ldx {ins.code:#x} {k:#x}"
        lines.append(f"{pc:4d}: {text}")
    return "\n".join(lines)
