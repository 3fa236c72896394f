"""libseccomp 2.5's rule database, modelled so pyrunc decides exactly as it does.

libseccomp does not simply OR the rules of a syscall: each rule becomes a chain
of 32-bit comparisons (three nodes for LT/LE/GT/GE on a 64-bit ABI, two for
EQ/NE/MASKED_EQ, one on a 32-bit ABI), and adding a chain merges it into the
syscall's tree, pruning sub-trees the new chain makes redundant and refusing
(EEXIST) when two identical chains want different actions. Which rule wins for
which argument values is a property of that merge, quirks included (for
example an unconditional rule replaces every conditional one, and the first
unconditional rule for a syscall is kept). The only way to take the same
decisions is to build the same trees, so this module re-implements the merge
(reference counts and all, since freeing a node re-links its level) and
`evaluate` gives the decision a tree takes for given argument words.

A tree is made of levels: siblings linked by lvl_prv/lvl_nxt, tried in order.
A node compares one 32-bit word of one argument; on true it goes to its true
sub-level or true action, on false likewise; with neither it moves on to the
next sibling, and past the last sibling to whatever follows the parent.
"""

from __future__ import annotations

import errno
import sys
from dataclasses import dataclass, field

# scmp_compare
NE, LT, LE, EQ, GE, GT, MASKED_EQ = 1, 2, 3, 4, 5, 6, 7
DATUM_MAX = 0xFFFFFFFFFFFFFFFF

# iterator state flags of the prune walk
_MATCH, _MATCH_ONCE = 0x1, 0x2
_X_FINISHED, _N_FINISHED = 0x10, 0x20
_X_PREFIX, _N_PREFIX = 0x100, 0x200
_M_MATCHSET = _MATCH | _MATCH_ONCE
_M_REDUNDANT = _MATCH | _X_FINISHED | _N_PREFIX


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


@dataclass(slots=True)
class _State:
    sx: SysEntry
    action: int = 0
    flags: int = 0

    def copy(self) -> _State:
        return _State(self.sx, self.action, self.flags)


class _Slot:
    """A C pointer-to-pointer: one attribute of one object."""
    __slots__ = ("obj", "attr")

    def __init__(self, obj: object, attr: str) -> None:
        self.obj, self.attr = obj, attr

    def get(self) -> Node | None:
        return getattr(self.obj, self.attr)

    def set(self, value: Node | None) -> None:
        setattr(self.obj, self.attr, value)


# --- node ordering -------------------------------------------------------------------
def _arg_prio(n: Node) -> int:
    return (n.arg << 1) + (1 if n.hi else 0)


def _op_prio(op: int) -> int:
    return {MASKED_EQ: 3, EQ: 3, NE: 3, LE: 2, LT: 2, GE: 1, GT: 1}.get(op, 0)


def _lt(a: Node, b: Node) -> bool:
    pa, pb = _arg_prio(a), _arg_prio(b)
    if pa != pb:
        return pa < pb
    oa, ob = _op_prio(a.op_orig), _op_prio(b.op_orig)
    if oa != ob:
        return oa < ob
    if a.op_orig in (LE, LT):
        return a.datum > b.datum
    return a.datum < b.datum


def _eq(a: Node, b: Node) -> bool:
    return (_arg_prio(a) == _arg_prio(b) and a.op == b.op and a.datum == b.datum
            and a.mask == b.mask)


def _leaf(n: Node) -> bool:
    return n.nxt_t is None and n.nxt_f is None


def _zombie(n: Node) -> bool:
    return _leaf(n) and not n.act_t_flg and not n.act_f_flg


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


# --- reference counting (freeing a node re-links its level) ------------------------------
def _get(n: Node | None) -> Node | None:
    if n is not None:
        n.refcnt += 1
    return n


def _put(n: Node | None) -> tuple[int, Node | None]:
    """Drop a reference; returns (nodes freed, what the caller's pointer becomes)."""
    if n is None:
        return 0, None
    n.refcnt -= 1
    if n.refcnt != 0:
        return 0, n
    cnt = 0
    lvl_p, lvl_n, nxt_t, nxt_f = n.lvl_prv, n.lvl_nxt, n.nxt_t, n.nxt_f
    if lvl_p is not None:
        lvl_p.lvl_nxt = None
    if lvl_n is not None:
        lvl_n.lvl_prv = None
    if lvl_p is not None:
        c, lvl_p = _put(lvl_p)
        cnt += c
    if lvl_n is not None:
        c, lvl_n = _put(lvl_n)
        cnt += c
    if lvl_p is not None:
        lvl_p.lvl_nxt = _get(lvl_n)
    if lvl_n is not None:
        lvl_n.lvl_prv = _get(lvl_p)
    new = lvl_p if lvl_p is not None else lvl_n
    cnt += _tree_put(nxt_t)[0]
    cnt += _tree_put(nxt_f)[0]
    return cnt + 1, new


def _level_clean(node: Node) -> int:
    start = n = level_start(node)
    it: Node | None = n
    while it is not None:
        _step()
        links = (it.lvl_prv is not None) + (it.lvl_nxt is not None)
        if it.refcnt > links:
            return 0
        it = it.lvl_nxt
    cnt = 0
    cur: Node | None = start
    while cur is not None:
        _step()
        c, cur = _put(cur)
        cnt += c
    return cnt


def _tree_put(tree: Node | None) -> tuple[int, Node | None]:
    cnt, tree = _put(tree)
    if tree is not None:
        cnt += _level_clean(tree)
    return cnt, tree


def _tree_remove(slot: _Slot, node: Node | None) -> int:
    tree = slot.get()
    if tree is None or node is None:
        return 0
    it: Node | None = level_start(tree)
    cnt = 0
    while True:
        _step()
        assert it is not None
        if it is node:
            break
        cnt += _tree_remove(_Slot(it, "nxt_t"), node)
        cnt += _tree_remove(_Slot(it, "nxt_f"), node)
        if _zombie(it):
            break
        it = it.lvl_nxt
        if it is None or cnt != 0:
            return cnt
    if it is slot.get():
        slot.set(it.lvl_prv if it.lvl_prv is not None else it.lvl_nxt)
    if it.lvl_prv is not None:
        it.lvl_prv.lvl_nxt = it.lvl_nxt
    if it.lvl_nxt is not None:
        it.lvl_nxt.lvl_prv = it.lvl_prv
    it.lvl_prv = it.lvl_nxt = None
    return cnt + _put(it)[0]


def _act_check(tree: Node | None, action: int) -> int:
    """0 when every action in the tree (from the start of its level) is `action`."""
    if tree is None:
        return 0
    for n in level(tree):
        if (n.act_t_flg and n.act_t != action) or (n.act_f_flg and n.act_f != action):
            return -errno.EEXIST
        if _act_check(n.nxt_t, action) or _act_check(n.nxt_f, action):
            return -errno.EEXIST
    return 0


# --- prune: drop existing sub-trees the new chain makes redundant ---------------------------
class _Return(Exception):
    pass


def _prune(existing: Node | None, new: Node | None, state: _State) -> int:
    cnt = 0
    st_new = state.copy()
    try:
        if new is None or existing is None:
            raise _Return
        if state.flags & _M_MATCHSET == _MATCH_ONCE:
            raise _Return
        x: Node | None = level_start(existing)
        n = new
        while x is not None:
            _step()
            x_next = x.lvl_nxt
            x, c = _prune_one(x, n, state, st_new)
            cnt += c
            x = x_next
        st_new.flags &= ~_MATCH
    except _Return as ret:
        cnt += ret.args[0] if ret.args else 0
    if st_new.flags & _MATCH:
        state.flags |= st_new.flags
    else:
        state.flags &= ~_MATCH
    return cnt


def _descend(x: Node, sub_x: Node | None, sub_n: Node | None, state: _State, st_new: _State,
             set_flags: int, clear_match: bool) -> tuple[Node | None, int, bool]:
    """Prune one level down with a reference held on x; returns (x after the put,
    count, matched-below)."""
    _get(x)
    st_nxt = state.copy()
    if clear_match:
        st_nxt.flags &= ~_MATCH
    st_nxt.flags |= set_flags
    cnt = _prune(sub_x, sub_n, st_nxt)
    c, x2 = _put(x)
    cnt += c
    matched = bool(st_nxt.flags & _MATCH)
    if matched:
        st_new.flags |= st_nxt.flags
    return x2, cnt, matched


def _prune_one(x: Node, n: Node, state: _State, st_new: _State) -> tuple[Node | None, int]:
    cnt = 0
    if _eq(x, n):
        st_new.flags |= _M_MATCHSET
        if _leaf(n):
            st_new.flags |= _N_FINISHED
        if _leaf(x):
            st_new.flags |= _X_FINISHED
        if (x.act_t_flg or x.nxt_t) and not (n.act_t_flg or n.nxt_t):
            raise _Return(cnt)
        if (x.act_f_flg or x.nxt_f) and not (n.act_f_flg or n.nxt_f):
            raise _Return(cnt)
        if st_new.flags & _N_FINISHED and st_new.flags & _X_FINISHED:
            if (n.act_t_flg != x.act_t_flg or n.act_t != x.act_t or n.act_f_flg != x.act_f_flg
                    or n.act_f != x.act_f):
                raise _Return(cnt)
        xx: Node | None = x
        for attr in ("nxt_t", "nxt_f"):
            if getattr(n, attr) is not None:
                assert xx is not None
                xx, c, _ = _descend(xx, getattr(xx, attr), getattr(n, attr), state, st_new,
                                    _M_MATCHSET, False)
                cnt += c
                if xx is None:
                    return None, cnt
        assert xx is not None
        same = not _act_check(xx, st_new.action)
        if (same and st_new.flags & _MATCH and st_new.flags & _N_FINISHED
                and st_new.flags & _X_PREFIX):
            cnt += _tree_remove(_Slot(state.sx, "chains"), xx)
            if state.sx.chains is None:
                raise _Return(cnt)
        elif (same and st_new.flags & _MATCH and st_new.flags & _X_FINISHED
              and st_new.flags & _N_PREFIX):
            raise _Return(cnt)
        return xx, cnt
    if _lt(x, n):
        if state.flags & _N_PREFIX:
            raise _Return(cnt)
        xx = x
        for attr in ("nxt_t", "nxt_f"):
            if getattr(xx, attr) is not None:
                xx, c, matched = _descend(xx, getattr(xx, attr), n, state, st_new, _X_PREFIX, True)
                cnt += c
                if matched:
                    raise _Return(cnt)
                if xx is None:
                    return None, cnt
        return xx, cnt
    if state.flags & _X_PREFIX:
        raise _Return(cnt)
    xx = x
    for attr in ("nxt_t", "nxt_f"):
        if getattr(n, attr) is not None:
            xx, c, matched = _descend(xx, xx, getattr(n, attr), state, st_new, _N_PREFIX, True)
            cnt += c
            if matched:
                raise _Return(cnt)
            if xx is None:
                return None, cnt
    return xx, cnt


# --- add: merge the new chain into the existing tree ---------------------------------------
def _add(slot: _Slot, new: Node, sx: SysEntry) -> int:
    x = slot.get()
    n = new
    while x is not None:
        _step()
        if _eq(x, n):
            for side in ("t", "f"):
                if getattr(n, f"act_{side}_flg"):
                    rc = _merge_action(x, n, side, sx)
                    if rc:
                        return rc
            for attr, flg in (("nxt_t", "act_t_flg"), ("nxt_f", "act_f_flg")):
                if getattr(n, attr) is not None:
                    if getattr(x, attr) is not None:
                        rc = _add(_Slot(x, attr), getattr(n, attr), sx)
                        if rc:
                            return rc
                    elif not getattr(x, flg):
                        setattr(x, attr, _get(getattr(n, attr)))
                    else:
                        return 0
            return 0
        if not _lt(x, n):
            if x.lvl_nxt is None:
                n.lvl_prv = _get(x)
                x.lvl_nxt = _get(n)
                return 0
            x = x.lvl_nxt
        else:
            if x.lvl_prv is not None:
                x.lvl_prv.lvl_nxt = _get(n)
                n.lvl_prv = x.lvl_prv
                x.lvl_prv = _get(n)
                n.lvl_nxt = x
            else:
                x.lvl_prv = _get(n)
                n.lvl_nxt = _get(x)
            if slot.get() is x:
                slot.set(_get(n))
                _put(x)
            return 0
    return 0


def _merge_action(x: Node, n: Node, side: str, sx: SysEntry) -> int:
    flg, act, nxt = f"act_{side}_flg", f"act_{side}", f"nxt_{side}"
    if not getattr(x, flg):
        rc = _act_check(getattr(x, nxt), getattr(n, act))
        if rc:
            return rc
        sx.node_cnt -= _put(getattr(x, nxt))[0]
        setattr(x, nxt, None)
        setattr(x, act, getattr(n, act))
        setattr(x, flg, True)
    elif getattr(n, act) != getattr(x, act):
        # libseccomp 2.5 picks by the full 64-bit datum here; on the false side it
        # updates the *true* action (sic), which decisions must follow too.
        if side == "t" and n.hi and n.datum_full > x.datum_full:
            x.act_t = n.act_t
        if side == "f" and n.hi and n.datum_full < x.datum_full:
            x.act_t = n.act_t
        if _leaf(x) or _leaf(n):
            return -errno.EEXIST
    return 0


# --- chain generation ----------------------------------------------------------------------
def _gen_64(conds: list[Cond], action: int, offsets) -> tuple[Node | None, int]:  # type: ignore[no-untyped-def]
    head: Node | None = None
    count = 0
    prev: list[Node | None] = [None, None, None]
    op_prev = 0
    cur: list[Node | None] = [None, None, None]
    for c in sorted(conds, key=lambda c: c.arg):
        if c.op == MASKED_EQ and c.mask == 0:
            continue  # neither word needs a comparison
        hi_off, lo_off = offsets(c.arg)
        hi_m, lo_m = c.mask >> 32, c.mask & 0xFFFFFFFF
        hi_d, lo_d = c.datum >> 32, c.datum & 0xFFFFFFFF
        if c.op in (GT, GE, LE, LT):
            lo_op = GT if c.op in (GT, LE) else GE
            cur = [Node(c.arg, True, hi_off, GT, c.op, hi_m, hi_d, c.datum),
                   Node(c.arg, True, hi_off, EQ, c.op, hi_m, hi_d, c.datum),
                   Node(c.arg, False, lo_off, lo_op, c.op, lo_m, lo_d, c.datum)]
            cur[0].nxt_f = _get(cur[1])  # type: ignore[union-attr]
            cur[1].nxt_t = _get(cur[2])  # type: ignore[union-attr]
        else:
            op = MASKED_EQ if c.op == MASKED_EQ else EQ
            cur = [Node(c.arg, True, hi_off, op, c.op, hi_m, hi_d, c.datum),
                   Node(c.arg, False, lo_off, op, c.op, lo_m, lo_d, c.datum), None]
            cur[0].nxt_t = _get(cur[1])  # type: ignore[union-attr]
        if prev[0] is not None:
            _link(prev, op_prev, cur[0])  # type: ignore[arg-type]
        else:
            head = _get(cur[0])
        count += 3 if cur[2] is not None else 2
        prev, op_prev = cur, c.op
    if cur[0] is None:
        return None, 0
    a, b, c2 = cur
    if op_prev in (GT, GE):
        _set_act(a, "t", action), _set_act(c2, "t", action)
    elif op_prev in (LE, LT):
        _set_act(b, "f", action), _set_act(c2, "f", action)
    elif op_prev in (EQ, MASKED_EQ):
        _set_act(b, "t", action)
    else:  # NE
        _set_act(a, "f", action), _set_act(b, "f", action)
    return head, count


def _link(prev: list[Node], op_prev: int, nxt: Node) -> None:
    if op_prev in (GT, GE):
        prev[0].nxt_t = _get(nxt)
        prev[2].nxt_t = _get(nxt)
    elif op_prev in (EQ, MASKED_EQ):
        prev[1].nxt_t = _get(nxt)
    elif op_prev in (LE, LT):
        prev[1].nxt_f = _get(nxt)
        prev[2].nxt_f = _get(nxt)
    else:  # NE
        prev[0].nxt_f = _get(nxt)
        prev[1].nxt_f = _get(nxt)


def _set_act(n: Node | None, side: str, action: int) -> None:
    assert n is not None
    setattr(n, f"act_{side}_flg", True)
    setattr(n, f"act_{side}", action)


def _gen_32(conds: list[Cond], action: int, offsets) -> tuple[Node | None, int]:  # type: ignore[no-untyped-def]
    head: Node | None = None
    count = 0
    prev: Node | None = None
    tf = True
    for c in sorted(conds, key=lambda c: c.arg):
        if c.op == MASKED_EQ and c.mask & 0xFFFFFFFF == 0:
            continue
        op, tf_now = {NE: (EQ, False), LT: (GE, False), LE: (GT, False)}.get(c.op, (c.op, True))
        node = Node(c.arg, False, offsets(c.arg)[1], op, c.op, c.mask, c.datum, c.datum)
        if prev is not None:
            setattr(prev, "nxt_t" if tf else "nxt_f", _get(node))
        else:
            head = _get(node)
        prev, tf = node, tf_now
        count += 1
    if prev is None:
        return None, 0
    _set_act(prev, "t" if tf else "f", action)
    return head, count


# --- the database of one architecture ------------------------------------------------------
@dataclass
class RuleDB:
    """The syscalls of one architecture's filter, as libseccomp's db_filter."""
    bits: int
    offsets: object  # callable: arg index -> (hi offset | None, lo offset)
    syscalls: dict[int, SysEntry] = field(default_factory=dict)

    def add(self, num: int, action: int, conds: list[Cond]) -> int:
        """db_rule_add: 0, or -EEXIST when the rule conflicts with the tree.
        Raises TreeLoop where libseccomp would never return."""
        _budget[0] = 0
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20000))  # freeing a long level recurses along it
        try:
            return self._add(num, action, conds)
        except RecursionError:
            raise TreeLoop from None
        finally:
            sys.setrecursionlimit(limit)

    def _add(self, num: int, action: int, conds: list[Cond]) -> int:
        gen = _gen_64 if self.bits == 64 else _gen_32
        new_chains, new_cnt = gen(conds, action, self.offsets)
        sx = self.syscalls.get(num)
        rm_flag = False
        while True:
            if sx is None:
                self.syscalls[num] = SysEntry(num, action, new_chains, True, new_cnt)
                return 0
            if sx.chains is None:
                if rm_flag or not sx.valid:
                    sx.chains, sx.action, sx.valid = new_chains, action, True
                    sx.node_cnt = new_cnt
                return 0
            if new_chains is None:
                _tree_put(sx.chains)
                sx.chains, sx.action, sx.node_cnt = None, action, 0
                return 0
            state = _State(sx, action)
            removed = _prune(sx.chains, new_chains, state)
            if removed > 0:
                rm_flag = True
                sx.node_cnt -= removed
                if sx.chains is None:
                    continue
            elif state.flags & _M_REDUNDANT == _M_REDUNDANT:
                _tree_put(new_chains)
                return 0
            rc = _add(_Slot(sx, "chains"), new_chains, sx)
            if rc < 0:
                return rc
            sx.node_cnt += new_cnt
            sx.node_cnt -= _tree_put(new_chains)[0]
            return 0

    def copy_state(self) -> dict[int, SysEntry]:
        return dict(self.syscalls)


def evaluate(entry: SysEntry, word, default: int) -> int:  # type: ignore[no-untyped-def]
    """The action `entry` gives a call; word(offset) reads a 32-bit seccomp_data word."""
    if entry.chains is None:
        return entry.action
    result = _eval_level(entry.chains, word)
    return default if result is None else result


def _eval_level(head: Node, word) -> int | None:  # type: ignore[no-untyped-def]
    for n in level(head):
        value = word(n.offset) & n.mask
        taken = value == n.datum if n.op in (EQ, MASKED_EQ) else (
            value > n.datum if n.op == GT else value >= n.datum)
        nxt, flg, act = (n.nxt_t, n.act_t_flg, n.act_t) if taken else (n.nxt_f, n.act_f_flg, n.act_f)
        if nxt is not None:
            r = _eval_level(nxt, word)
            if r is not None:
                return r
        elif flg:
            return act
    return None
