"""A tiny eBPF interpreter for the opcodes the device filter uses, so the
program's decisions can be checked without loading it into a kernel."""

import struct

from pyrunc.cgroups import devices as d


def run(prog: bytes, dev_type: int, access: int, major: int, minor: int) -> int:
    ctx = struct.pack("<III", (access << 16) | dev_type, major, minor)
    regs = [0] * 11
    pc = 0
    steps = 0
    n = len(prog) // 8
    while True:
        assert 0 <= pc < n, f"pc {pc} out of program"
        steps += 1
        assert steps <= n, "backward jump or loop"
        code, r, off, imm = struct.unpack("<BBhi", prog[pc * 8:pc * 8 + 8])
        dst, src = r & 0xF, r >> 4
        imm32 = imm & 0xFFFFFFFF
        if code == d.LDX_MEM_W:
            assert src == 1 and off in (0, 4, 8)
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == d.ALU32_AND_K:
            regs[dst] = (regs[dst] & imm32) & 0xFFFFFFFF
        elif code == d.ALU32_RSH_K:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == d.ALU32_MOV_K:
            regs[dst] = imm32
        elif code == d.ALU32_MOV_X:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == d.JMP_JNE_K:
            if regs[dst] != (imm & 0xFFFFFFFFFFFFFFFF if imm >= 0 else imm32 | 0xFFFFFFFF00000000):
                pc += off
        elif code == d.JMP_JEQ_K:
            if regs[dst] == imm32:
                pc += off
        elif code == d.JMP_JNE_X:
            if regs[dst] != regs[src]:
                pc += off
        elif code == d.JMP_EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
        pc += 1
