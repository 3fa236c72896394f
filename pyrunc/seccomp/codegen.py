"""Rule databases → classic BPF, dispatching on the syscall number by an
optimal binary search tree.

Layout of the program:

    ld arch; jeq AUDIT_native → N; jeq AUDIT_other → O; ...; ret bad-arch
    N: ld nr; <search tree over number ranges> → ret ACTION | argument checks

The number line [0, 2^32) of each arch is cut into ranges that get one
decision (a RET action, or the argument-check code of one syscall); adjacent
ranges with the same decision are merged, so e.g. all allowed syscalls
233–290 cost one leaf. The search tree over those ranges is the optimal
alphabetic tree (Knuth's O(n^2) dynamic program) for range weights equal to
the number of syscall numbers of the arch's table they hold (every real
syscall equally likely), plus a small weight for the rest so that no range
sinks deep. On x86_64 the x32 numbers (bit 30) and `nr == -1` are ranges like
the others, which folds libseccomp's two extra ABI checks into the tree.

Argument checks are libseccomp's own blocks (`chains`), rebuilt with the same
accumulator loads, so they decide exactly as libseccomp's filter does. All jumps point forward; a jump
that would exceed the 8-bit offset gets a copy of its RET (free at run time)
or a `ja` trampoline placed right after it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from pyrunc.seccomp import bpf
from pyrunc.seccomp.arches import OFFSET_ARCH, OFFSET_NR, X32_SYSCALL_BIT, Arch
from pyrunc.seccomp.ruledb import ArchDB
from pyrunc.seccomp.chains import JEQ, JGE, JGT, ChainBuilder, LBlock, place
from pyrunc.seccomp.tables.syscalls import ARCHES as COLUMNS
from pyrunc.seccomp.tables.syscalls import SYSCALLS

U32 = 0xFFFFFFFF
_OPS = {JEQ: bpf.BPF_JEQ, JGT: bpf.BPF_JGT, JGE: bpf.BPF_JGE}
_REST_WEIGHT = 0.25  # weight of a range holding no syscall of the table
_CHAIN_BOOST = 16.0  # argument checks cost more, so their ranges sit higher in the tree


@dataclass(eq=False, slots=True)
class Block:
    """Straight-line loads, then a RET, a conditional jump or a `ja`."""
    pre: list[bpf.Insn] = field(default_factory=list)
    ret: int | None = None             # RET k
    op: int = 0                        # BPF_JEQ/JGT/JGE, or BPF_JA with jt as target
    k: int = 0
    jt: Block | None = None
    jf: Block | None = None

    def size(self) -> int:
        return len(self.pre) + 1


class _Gen:
    def __init__(self, default: int) -> None:
        self.default = default
        self.rets: dict[int, Block] = {}
        self.converted: dict[int, Block] = {}

    def ret(self, action: int) -> Block:
        if action not in self.rets:
            self.rets[action] = Block(ret=action)
        return self.rets[action]

    # --- argument checks (libseccomp's blocks, see chains.py) --------------------------
    def convert(self, lb: LBlock) -> Block:
        if id(lb) in self.converted:
            return self.converted[id(lb)]
        if lb.ret is not None:
            return self.ret(lb.ret)
        blk = Block(op=_OPS[lb.op], k=lb.k)
        for kind, value in lb.loads:
            code = (bpf.BPF_LD | bpf.BPF_W | bpf.BPF_ABS) if kind == "ld" else (bpf.BPF_ALU | bpf.BPF_AND | bpf.BPF_K)
            blk.pre.append(bpf.Insn(code, k=value))
        self.converted[id(lb)] = blk
        blk.jt, blk.jf = self.convert(lb.jt), self.convert(lb.jf)
        return blk

    # --- syscall number dispatch --------------------------------------------------------
    def dispatch(self, ranges: list[tuple[int, int, Block]], weights: list[float],
                 optimal: bool = True) -> Block:
        """The search tree: optimal for the native arch, weight-balanced (cheaper to
        compute, nearly as good) for the others."""
        root = _optimal_splits(weights) if optimal else None
        prefix = [0.0]
        for w in weights:
            prefix.append(prefix[-1] + w)

        def split(i: int, j: int) -> int:
            if root is not None:
                return root[i][j]
            half = (prefix[i] + prefix[j + 1]) / 2
            r = bisect.bisect_left(prefix, half, i + 1, j + 1)
            return min(max(r, i + 1), j)

        def build(i: int, j: int) -> Block:
            if i == j:
                return ranges[i][2]
            r = split(i, j)
            return Block(op=bpf.BPF_JGE, k=ranges[r][0], jt=build(r, j), jf=build(i, r - 1))

        head = build(0, len(ranges) - 1)
        load = Block(pre=[bpf.Insn(bpf.BPF_LD | bpf.BPF_W | bpf.BPF_ABS, k=OFFSET_NR)],
                     op=bpf.BPF_JA, jt=head)
        return _fold_load(load)


def _fold_load(load: Block) -> Block:
    """Put the `ld nr` in front of the first tree node instead of a `ja`."""
    head = load.jt
    assert head is not None
    if head.ret is not None:
        return head
    return Block(pre=load.pre + head.pre, op=head.op, k=head.k, jt=head.jt, jf=head.jf)


def _optimal_splits(w: list[float]) -> list[list[int]]:
    """root[i][j]: first range of the right subtree in the optimal alphabetic tree
    of ranges i..j (cost = sum of weight x depth), by Knuth's monotone-root DP."""
    n = len(w)
    prefix = [0.0]
    for x in w:
        prefix.append(prefix[-1] + x)
    cost = [[0.0] * n for _ in range(n)]
    root = [[0] * n for _ in range(n)]
    for i in range(n - 1):
        root[i][i + 1] = i + 1
        cost[i][i + 1] = w[i] + w[i + 1]
    for span in range(2, n):
        for i in range(n - span):
            j = i + span
            row_cost, row_root = cost[i], root[i]
            lo, hi = row_root[j - 1], root[i + 1][j]
            if lo < i + 1:
                lo = i + 1
            if hi > j:
                hi = j
            best, best_r = float("inf"), lo
            for r in range(lo, hi + 1):
                c = row_cost[r - 1] + cost[r][j]
                if c < best:
                    best, best_r = c, r
            row_cost[j] = best + prefix[j + 1] - prefix[i]
            row_root[j] = best_r
    return root


def _table_numbers(arch: Arch) -> list[int]:
    col = COLUMNS.index(arch.column)
    return sorted(row[col] for row in SYSCALLS.values() if row[col] is not None)


def _ranges(gen: _Gen, groups: list[ArchDB], badarch: int,
            chain_heads: dict[int, LBlock]) -> tuple[list[tuple[int, int, Block]], list[float]]:
    """Cut [0, 2^32) into decision ranges for one audit token (x86_64 + x32 share one)."""
    default = gen.ret(gen.default)
    points: dict[int, Block] = {}
    numbers: list[int] = []
    names = {g.arch.name for g in groups}
    for g in groups:
        numbers += _table_numbers(g.arch)
        for num, entry in g.db.syscalls.items():
            if num < 0 or not entry.valid:
                continue
            points[num] = (gen.convert(chain_heads[id(entry)]) if entry.chains is not None
                           else gen.ret(entry.action))
    # the background decision of each region of the number line
    if names == {"x86_64"}:
        regions = [(0, X32_SYSCALL_BIT - 1, default), (X32_SYSCALL_BIT, U32 - 1, gen.ret(badarch)),
                   (U32, U32, default)]
    elif names == {"x32"}:
        regions = [(0, X32_SYSCALL_BIT - 1, gen.ret(badarch)), (X32_SYSCALL_BIT, U32, default)]
    else:
        regions = [(0, U32, default)]
    def background(num: int) -> Block:
        return next(b for lo, hi, b in regions if lo <= num <= hi)

    starts = {lo for lo, _, _ in regions}
    for num in points:
        starts.add(num)
        if num < U32:
            starts.add(num + 1)
    merged: list[tuple[int, Block]] = []
    for start in sorted(starts):
        blk = points.get(start) or background(start)
        if not merged or merged[-1][1] is not blk:
            merged.append((start, blk))
    ranges = [(s, (merged[i + 1][0] - 1) if i + 1 < len(merged) else U32, b)
              for i, (s, b) in enumerate(merged)]
    numbers.sort()
    weights = [_weight(numbers, lo, hi) * (_CHAIN_BOOST if blk.ret is None else 1)
               for lo, hi, blk in ranges]
    return ranges, weights


def _weight(numbers: list[int], lo: int, hi: int) -> float:
    count = bisect.bisect_right(numbers, hi) - bisect.bisect_left(numbers, lo)
    return count + _REST_WEIGHT


def generate(dbs: list[ArchDB], default: int, badarch: int = bpf.RET_KILL_THREAD, *,
             libseccomp_tree: bool = True) -> list[bpf.Insn]:
    """The whole filter for these architectures (native first). `libseccomp_tree`
    says which layout libseccomp would use (runc asks for its binary tree above 32
    syscall entries): it decides the order of the walk that repairs accumulator
    loads, hence some decisions (see chains.py)."""
    gen = _Gen(default)
    groups: dict[int, list[ArchDB]] = {}
    for adb in dbs:
        groups.setdefault(adb.arch.audit, []).append(adb)
    heads = _chain_heads(list(groups.values()), default, libseccomp_tree)
    checks: list[Block] = []
    for audit, members in groups.items():
        if not libseccomp_tree and _loses_syscall_load(members):
            ranges, weights = [(0, U32, gen.ret(default))], [1.0]
        else:
            ranges, weights = _ranges(gen, members, badarch, heads)
        section = gen.dispatch(ranges, weights, optimal=not checks)
        checks.append(Block(op=bpf.BPF_JEQ, k=audit, jt=section))
    for i, blk in enumerate(checks):
        blk.jf = checks[i + 1] if i + 1 < len(checks) else gen.ret(badarch)
    checks[0].pre.insert(0, bpf.Insn(bpf.BPF_LD | bpf.BPF_W | bpf.BPF_ABS, k=OFFSET_ARCH))
    return assemble(checks[0])


def _loses_syscall_load(members: list[ArchDB]) -> bool:
    """libseccomp's linear filter loads the syscall number only in the block of the
    first syscall of its priority order, and that order includes pseudo syscalls
    (rules on names the arch lacks), which get no block. When one of them comes
    first, every syscall check of the section compares the architecture token
    instead, so every call gets the default action. (x86_64 without x32 loads the
    number for its x32 check, so it is immune.)"""
    if len(members) == 1 and members[0].arch.name == "x86_64":
        return False
    # libseccomp keeps syscall numbers unsigned: pseudo syscalls sort after real ones
    entries = [e for adb in members
               for e in sorted(adb.db.syscalls.values(), key=lambda e: e.num & 0xFFFFFFFF)]
    if not entries:
        return False
    head = sorted(entries, key=lambda e: -e.priority)[0]  # stable, as libseccomp's insertion sort
    return head.num < 0 or not head.valid


def _chain_heads(sections: list[list[ArchDB]], default: int, tree: bool) -> dict[int, LBlock]:
    """Build every syscall's argument checks as libseccomp does, then run its layout
    walk: sections from the last, syscalls in the order its layout ends with."""
    builder = ChainBuilder()
    heads: dict[int, LBlock] = {}
    walk: list[LBlock] = []
    for members in reversed(sections):
        entries = [e for adb in members for e in sorted(adb.db.syscalls.values(), key=lambda e: e.num)
                   if e.num >= 0 and e.valid]
        if tree:
            entries.sort(key=lambda e: e.num)
        else:
            entries.sort(key=lambda e: -e.priority)  # stable: libseccomp's insertion sort
            entries.reverse()
        for entry in entries:
            if entry.chains is not None:
                heads[id(entry)] = builder.syscall(entry, default)
                walk.append(heads[id(entry)])
    place(walk)
    return heads


# --- layout ------------------------------------------------------------------------------
def _order(entry: Block) -> list[Block]:
    """Reverse post-order: every block after all blocks that jump to it."""
    seen: set[int] = set()
    post: list[Block] = []
    stack: list[tuple[Block, int]] = [(entry, 0)]
    while stack:
        blk, state = stack.pop()
        if state == 0:
            if id(blk) in seen:
                continue
            seen.add(id(blk))
            stack.append((blk, 1))
            for child in (blk.jt, blk.jf):  # jf ends up laid out first, right after blk
                if child is not None and id(child) not in seen:
                    stack.append((child, 0))
        else:
            post.append(blk)
    post.reverse()
    return post


def assemble(entry: Block) -> list[bpf.Insn]:
    order = _order(entry)
    while True:
        addr = _addresses(order)
        # every jump out of 8-bit reach gets a trampoline right after its block;
        # insert from the back so earlier positions stay valid, then re-measure
        todo: list[tuple[int, Block, str]] = []
        for pos, blk in enumerate(order):
            if blk.ret is not None or blk.op == bpf.BPF_JA:
                continue
            src = addr[id(blk)] + len(blk.pre)
            for side in ("jt", "jf"):
                if addr[id(getattr(blk, side))] - src - 1 > 255:
                    todo.append((pos, blk, side))
        if not todo:
            break
        for pos, blk, side in reversed(todo):
            src = addr[id(blk)] + len(blk.pre)
            setattr(blk, side, _trampoline(order, pos, getattr(blk, side), addr, src))
    out: list[bpf.Insn] = []
    for blk in order:
        out += blk.pre
        pc = len(out)
        if blk.ret is not None:
            out.append(bpf.Insn(bpf.BPF_RET | bpf.BPF_K, k=blk.ret))
        elif blk.op == bpf.BPF_JA:
            assert blk.jt is not None
            out.append(bpf.Insn(bpf.BPF_JMP | bpf.BPF_JA, k=addr[id(blk.jt)] - pc - 1))
        else:
            assert blk.jt is not None and blk.jf is not None
            out.append(bpf.Insn(bpf.BPF_JMP | blk.op | bpf.BPF_K, addr[id(blk.jt)] - pc - 1,
                                addr[id(blk.jf)] - pc - 1, blk.k))
    if len(out) > bpf.BPF_MAXINSNS:
        raise bpf.BPFError(f"filter has {len(out)} instructions, the kernel allows {bpf.BPF_MAXINSNS}")
    return out


def _addresses(order: list[Block]) -> dict[int, int]:
    addr: dict[int, int] = {}
    pc = 0
    for blk in order:
        addr[id(blk)] = pc
        pc += len(blk.pre) + 1
    return addr


def _trampoline(order: list[Block], pos: int, tgt: Block, addr: dict[int, int], src: int) -> Block:
    """A block equivalent to `tgt` within reach of `src`: an existing copy or a new one
    inserted right after order[pos]."""
    for blk in order[pos + 1:]:
        at = addr.get(id(blk))
        if at is None:
            continue  # inserted in this round; measured in the next
        if at - src - 1 > 255:
            break
        if blk is tgt:
            return blk
        if tgt.ret is not None and blk.ret == tgt.ret and not blk.pre:
            return blk
        if blk.op == bpf.BPF_JA and blk.ret is None and blk.jt is tgt and not blk.pre:
            return blk
    new = Block(ret=tgt.ret) if tgt.ret is not None and not tgt.pre else Block(op=bpf.BPF_JA, jt=tgt)
    order.insert(pos + 1, new)
    return new
