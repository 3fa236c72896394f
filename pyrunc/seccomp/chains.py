"""Argument-check code laid out the way libseccomp 2.5 lays it out, so that
its accumulator quirk gives the same decisions.

libseccomp emits the nodes of one tree level one after another and tracks
which argument word the accumulator holds *as if control only flowed from
one sibling to the next*: a sibling that compares the same word as the one
before it does not reload it. But control also reaches a sibling by falling
through from the previous sibling's sub-levels, which may have loaded another
word; the sibling then compares a stale accumulator. libseccomp repairs this
only when it lays the block out (`_gen_bpf_build_bpf`): the block gets a
reload if the block that first pulls it into the program (a depth-first walk,
true branch first, syscalls in layout order from the end, identical blocks
shared program-wide) left a different word behind. The filter's decisions
depend on exactly that, so this module rebuilds the same blocks (same loads,
same sharing, same walk) and `codegen` emits them; only the syscall dispatch
around them is pyrunc's own.
"""

from __future__ import annotations

from typing import Any

from pyrunc.seccomp.ruletree import EQ, GT, MASKED_EQ, Node, SysEntry, level

FULL = 0xFFFFFFFF
UNDEF = (-1, FULL)
SYSCALL_LOADED = (0, FULL)
JEQ, JGT, JGE = "jeq", "jgt", "jge"


class LBlock:
    """One libseccomp instruction block: loads, then one jump (or a RET)."""
    __slots__ = ("loads", "op", "k", "jt", "jf", "ret", "acc_start", "acc_end", "placed", "final")

    def __init__(self) -> None:
        self.loads: list[tuple[str, int]] = []     # ("ld", offset) | ("and", mask)
        self.op = ""
        self.k = 0
        self.jt: Any = None
        self.jf: Any = None
        self.ret: int | None = None
        self.acc_start = UNDEF
        self.acc_end = UNDEF
        self.placed = False
        self.final = False

    def key(self) -> tuple[Any, ...]:
        return (tuple(self.loads), self.op, self.k, id(self.jt), id(self.jf), self.ret,
                self.acc_start, self.acc_end)


_NXT = object()  # "next sibling", resolved once the level is built


class ChainBuilder:
    """Builds shared, de-duplicated blocks for every syscall of a filter."""

    def __init__(self) -> None:
        self.table: dict[tuple[Any, ...], LBlock] = {}

    def _canon(self, blk: LBlock) -> LBlock:
        blk.final = True
        return self.table.setdefault(blk.key(), blk)

    def ret(self, action: int) -> LBlock:
        blk = LBlock()
        blk.ret = action
        return self._canon(blk)

    def syscall(self, entry: SysEntry, default: int) -> LBlock:
        """The head block of a syscall's argument checks (fallthrough: `default`)."""
        assert entry.chains is not None
        return self._chain(entry.chains, self.ret(default), UNDEF)

    def _node(self, n: Node, acc: tuple[int, int]) -> tuple[LBlock, tuple[int, int]]:
        blk = LBlock()
        blk.acc_start = acc
        if n.offset != acc[0] or (n.mask & acc[1]) != n.mask:
            acc = (n.offset, FULL)
            blk.loads.append(("ld", n.offset))
            blk.acc_start = UNDEF
        if n.mask != acc[1]:
            acc = (acc[0], n.mask)
            blk.loads.append(("and", n.mask))
        blk.acc_end = acc
        blk.op = {EQ: JEQ, MASKED_EQ: JEQ, GT: JGT}.get(n.op, JGE)
        blk.k = n.datum
        blk.jt = n.nxt_t if n.nxt_t is not None else (self.ret(n.act_t) if n.act_t_flg else _NXT)
        blk.jf = n.nxt_f if n.nxt_f is not None else (self.ret(n.act_f) if n.act_f_flg else _NXT)
        return blk, acc

    def _chain(self, head: Node, nxt_jump: LBlock, acc: tuple[int, int]) -> LBlock:
        blocks = []
        for n in level(head):
            blk, acc = self._node(n, acc)
            blocks.append(blk)
        # resolve from the last sibling back: each block's sub-levels fall through to
        # the (already de-duplicated) next sibling
        following = nxt_jump
        for i in range(len(blocks) - 1, -1, -1):
            blk = blocks[i]
            for side in ("jt", "jf"):
                tgt = getattr(blk, side)
                if tgt is _NXT:
                    setattr(blk, side, following)
                elif isinstance(tgt, Node):
                    setattr(blk, side, self._chain(tgt, following, blk.acc_end))
            blocks[i] = following = self._canon(blk)
        return blocks[0]


def place(heads: list[LBlock]) -> None:
    """libseccomp's layout walk over the syscall blocks (given in the order the
    walk meets them): a block not yet placed is placed by the first block that
    reaches it, true branch first, depth first, and gets a reload if that block
    leaves another accumulator state than it expects."""
    for head in heads:
        if not head.placed:
            head.placed = True
            _fixup(SYSCALL_LOADED, head)
            _walk(head)


def _walk(blk: LBlock) -> None:
    stack = [blk]
    while stack:
        cur = stack[-1]
        for side in ("jt", "jf"):
            tgt = getattr(cur, side)
            if isinstance(tgt, LBlock) and not tgt.placed:
                tgt.placed = True
                _fixup(cur.acc_end, tgt)
                stack.append(tgt)
                break
        else:
            stack.pop()


def _fixup(pred_end: tuple[int, int], blk: LBlock) -> None:
    if blk.acc_start[0] != -1 and pred_end != blk.acc_start:
        offset, mask = blk.acc_start
        blk.loads[:0] = [("ld", offset)] + ([("and", mask)] if mask != FULL else [])
        blk.acc_start = UNDEF
