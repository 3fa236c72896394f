"""The nodes of libseccomp 2.5's per-syscall argument trees (see ruletree).

A tree is made of levels: siblings linked by lvl_prv/lvl_nxt, tried in order.
A node compares one 32-bit word of one argument; on true it goes to its true
sub-level or true action, on false likewise; with neither it moves on to the
next sibling, and past the last sibling to whatever follows the parent.
Reference counts are kept as libseccomp keeps them, because freeing a node
re-links its level and so changes the tree.
"""

from __future__ import annotations

from dataclasses import dataclass

# scmp_compare
NE, LT, LE, EQ, GE, GT, MASKED_EQ = 1, 2, 3, 4, 5, 6, 7
DATUM_MAX = 0xFFFFFFFFFFFFFFFF


class TreeLoop(Exception):
    """libseccomp 2.5 corrupts its tree for some rule sets (a level list becomes a
    cycle) and then loops forever inside seccomp_rule_add; runc hangs with it.
    The model notices the same cycle and stops instead."""


_budget = [0]
_BUDGET = 2_000_000  # loop steps one rule may take; real rules take a few hundred


def _step() -> None:
    _budget[0] += 1
    if _budget[0] > _BUDGET:
        raise TreeLoop


class Node:
    __slots__ = ("arg", "hi", "offset", "op", "op_orig", "mask", "datum", "datum_full",
                 "nxt_t", "nxt_f", "act_t", "act_t_flg", "act_f", "act_f_flg",
                 "lvl_prv", "lvl_nxt", "refcnt")

    def __init__(self, arg: int, hi: bool, offset: int, op: int, op_orig: int, mask: int,
                 datum: int, datum_full: int) -> None:
        self.arg, self.hi, self.offset = arg, hi, offset
        self.op, self.op_orig = op, op_orig
        self.mask = mask & 0xFFFFFFFF
        self.datum = datum & self.mask
        self.datum_full = datum_full
        self.nxt_t: Node | None = None
        self.nxt_f: Node | None = None
        self.act_t = self.act_f = 0
        self.act_t_flg = self.act_f_flg = False
        self.lvl_prv: Node | None = None
        self.lvl_nxt: Node | None = None
        self.refcnt = 0


@dataclass(slots=True)
class Cond:
    """One argument comparison of a rule, as seccomp_rule_add takes it."""
    arg: int
    op: int
    mask: int
    datum: int


@dataclass(slots=True)
class SysEntry:
    """One syscall of one architecture's database: an action or a tree."""
    num: int
    action: int
    chains: Node | None = None
    valid: bool = True
    node_cnt: int = 0     # libseccomp's node count: orders syscalls in a linear filter

    @property
    def priority(self) -> int:
        return (0xFFFF - self.node_cnt) & 0xFFFF


def level_start(n: Node) -> Node:
    while n.lvl_prv is not None:
        _step()
        n = n.lvl_prv
    return n


def level(n: Node | None) -> list[Node]:
    """The siblings of `n`'s level, first to last."""
    out: list[Node] = []
    it = None if n is None else level_start(n)
    while it is not None:
        _step()
        out.append(it)
        it = it.lvl_nxt
    return out


def _get(n: Node | None) -> Node | None:
    if n is not None:
        n.refcnt += 1
    return n
