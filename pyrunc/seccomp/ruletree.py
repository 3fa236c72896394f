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

The nodes live in `nodes`, the chain of one rule is built by `rulegen`.
"""

from __future__ import annotations

import errno
import sys
from dataclasses import dataclass, field

from pyrunc.seccomp.nodes import (  # noqa: F401 - re-exported for the other modules
    DATUM_MAX, EQ, GE, GT, LE, LT, MASKED_EQ, NE, Cond, Node, SysEntry, TreeLoop, _budget, _get,
    _step, level, level_start,
)
from pyrunc.seccomp.rulegen import gen_32, gen_64

# iterator state flags of the prune walk
_MATCH, _MATCH_ONCE = 0x1, 0x2
_X_FINISHED, _N_FINISHED = 0x10, 0x20
_X_PREFIX, _N_PREFIX = 0x100, 0x200
_M_MATCHSET = _MATCH | _MATCH_ONCE
_M_REDUNDANT = _MATCH | _X_FINISHED | _N_PREFIX


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


# --- reference counting (freeing a node re-links its level) ------------------------------
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
        gen = gen_64 if self.bits == 64 else gen_32
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
