"""Which ATen op launched each CPU call: the innermost op on the call's thread
whose interval contains the call's begin, and that op's top-level op."""

from __future__ import annotations

import numpy as np

from skipnative.trace import Trace


def enclosing_ops(trace: Trace, pid: np.ndarray, tid: np.ndarray, t: np.ndarray):
    """(innermost op row, top-level op row) for each (pid, tid, t); -1 where none."""
    ops = trace.ops
    n = len(t)
    inner = np.full(n, -1, dtype=np.int64)
    if len(ops) == 0 or n == 0:
        return inner, inner.copy()
    # sort ops by (pid, tid, begin) and find, per query, the last op that began at or before t
    key_ops = np.lexsort((ops["t_begin"], ops["tid"], ops["pid"]))
    op_pid, op_tid = ops["pid"][key_ops], ops["tid"][key_ops]
    op_begin = ops["t_begin"][key_ops]
    # a composite search: (pid, tid) groups, then time within the group
    group_keys = np.stack([op_pid, op_tid], axis=1)
    uniq, first = np.unique(group_keys, axis=0, return_index=True)
    last = np.append(first[1:], len(key_ops))
    q = np.stack([pid, tid], axis=1)
    for (gp, gt), a, b in zip(uniq, first, last):
        sel = np.flatnonzero((q[:, 0] == gp) & (q[:, 1] == gt))
        if len(sel) == 0:
            continue
        pos = np.searchsorted(op_begin[a:b], t[sel], side="right") - 1
        ok = pos >= 0
        inner[sel[ok]] = key_ops[a + pos[ok]]
    # walk up the parents until the op contains t (siblings that ended before t are skipped)
    idx = inner.copy()
    for _ in range(int(ops["depth"].max()) + 2):
        has = idx >= 0
        if not has.any():
            break
        safe = np.where(has, idx, 0)
        contains = has & (ops["t_end"][safe] >= t)
        move = has & ~contains
        if not move.any():
            break
        idx = np.where(move, ops["parent"][safe], idx)
    top = np.where(idx >= 0, ops["top"][np.where(idx >= 0, idx, 0)], -1)
    return idx, top


def launch_ops(trace: Trace):
    """(innermost op, top-level op) rows for every launch of the trace."""
    ln = trace.launches
    return enclosing_ops(trace, ln["pid"], ln["tid"], ln["t_begin"])
