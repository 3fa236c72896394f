"""One rule → a chain of 32-bit comparison nodes, as libseccomp 2.5 builds it.

On a 64-bit ABI, LT/LE/GT/GE become three nodes (high word greater, high word
equal, low word compare) and EQ/NE/MASKED_EQ two (high then low word); on a
32-bit ABI one node compares the low word and NE/LT/LE are turned into
EQ/GE/GT with the branches swapped. The checks are chained in argument order.
"""

from __future__ import annotations

from pyrunc.seccomp.nodes import EQ, GE, GT, LE, LT, MASKED_EQ, NE, Cond, Node, _get

def gen_64(conds: list[Cond], action: int, offsets) -> tuple[Node | None, int]:  # type: ignore[no-untyped-def]
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


def gen_32(conds: list[Cond], action: int, offsets) -> tuple[Node | None, int]:  # type: ignore[no-untyped-def]
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


