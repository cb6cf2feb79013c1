"""Which ATen op launched each CPU call (the innermost op on the call's thread
whose interval contains the call's begin, and that op's top-level op), and a
timing pass's kernels attributed to ops through an aligned attribution pass."""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from skipnative.analysis.alignment import Alignment, align
from skipnative.analysis.kernels import in_regions, join_kernels
from skipnative.trace import Trace

MATCH_WARN = 0.95
SUMMARY_KEYS = (
    "tklqt_us",
    "launch_api_us",
    "launch_wait_us",
    "il_us",
    "akd_us",
    "n_kernels",
    "queued_fraction",
)


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


def kernel_ops(native: Trace, kineto: Trace, alignment: Alignment):
    """(op name, top-level op name) per native GPU row ('' where unknown)."""
    inner, top = launch_ops(kineto)
    lc = kineto.launches["correlation"]
    order = np.argsort(lc, kind="stable")
    names = np.asarray(kineto.strings, dtype=object)
    op_name = np.full(len(native.gpu), "", dtype=object)
    top_name = np.full(len(native.gpu), "", dtype=object)
    has = np.flatnonzero(alignment.native_to_kineto >= 0)
    if len(has) == 0 or len(lc) == 0:
        return op_name, top_name
    kc = kineto.gpu["correlation"][alignment.native_to_kineto[has]]
    pos = np.minimum(np.searchsorted(lc[order], kc), len(order) - 1)
    ok = lc[order][pos] == kc
    li = order[pos]
    ii, tt = inner[li], top[li]
    sel = ok & (ii >= 0)
    op_name[has[sel]] = names[kineto.ops["name_id"][ii[sel]]]
    sel = ok & (tt >= 0)
    top_name[has[sel]] = names[kineto.ops["name_id"][tt[sel]]]
    return op_name, top_name


@dataclass
class Profile:
    native: Trace
    kineto: Trace | None
    alignment: Alignment | None
    kernel_op: np.ndarray | None = None
    kernel_top_op: np.ndarray | None = None
    # the timing pass's perturbation of this workload (measure_fidelity), if measured
    fidelity: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        from skipnative.analysis.sweep import run_summary

        out: dict[str, Any] = {"native": run_summary(self.native)}
        if self.fidelity is not None:
            out["fidelity"] = self.fidelity
        if self.kineto is not None:
            out["kineto"] = run_summary(self.kineto)
            out["kineto_over_native"] = {
                k: (out["kineto"][k] / out["native"][k]) if out["native"][k] else None
                for k in SUMMARY_KEYS
            }
            out["match_rate"] = self.alignment.match_rate if self.alignment else None
        return out

    def op_breakdown(self, top: int = 15) -> list[dict[str, Any]]:
        """Per top-level ATen op: kernels, kernel time and launch-and-queue time of the
        timing pass, per timed iteration (the untimed first one left out)."""
        if self.kernel_top_op is None:
            return []
        kt = join_kernels(self.native)
        timed = in_regions(self.native, kt)
        krows = np.flatnonzero(self.native.gpu["kind"] == 0)[timed]
        names = self.kernel_top_op[krows]
        dur = (kt.t_end - kt.t_start)[timed]
        lq = np.where(kt.counted, np.maximum(kt.t_start - kt.l_begin, 0), 0)[timed]
        agg: dict[str, list] = defaultdict(lambda: [0, 0, 0])
        for n, d, q in zip(names.tolist(), dur.tolist(), lq.tolist()):
            a = agg[n or "(no ATen op)"]
            a[0] += 1
            a[1] += d
            a[2] += q
        n_iter = max(len(self.native.regions), 1)
        rows = [
            {
                "op": k,
                "kernels": v[0] / n_iter,
                "kernel_us": v[1] / 1e3 / n_iter,
                "lq_us": v[2] / 1e3 / n_iter,
                "per_iteration": True,
            }
            for k, v in agg.items()
        ]
        rows.sort(key=lambda r: -r["kernel_us"])
        return rows[:top]


def attribute(native: Trace, kineto: Trace) -> Profile:
    """Aligns a timing pass with an attribution pass (the latter's last ProfilerStep)."""
    steps = [(int(r["t_begin"]), int(r["t_end"])) for r in kineto.iterations]
    al = align(native, kineto, kineto_region=steps[-1] if steps else None)
    if al.match_rate < MATCH_WARN:
        warnings.warn(
            f"attribution matched {al.match_rate:.1%} of the timed kernels "
            f"(below {MATCH_WARN:.0%}): the two passes ran different kernels",
            RuntimeWarning,
            stacklevel=2,
        )
    op, top = kernel_ops(native, kineto, al)
    return Profile(native, kineto, al, op, top)
