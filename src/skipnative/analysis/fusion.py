"""Kernel-fusion candidates by proximity score (SPEC.md §5).

Each stream's kernels, in GPU start order, are cut into segments at host
synchronisations; chains of L consecutive kernel names are read within the
segments with a window sliding one kernel at a time. Over the region and device,
all streams together:

    PS(c) = count(c) / count(k1)

A chain is a candidate when PS >= threshold; candidates are ranked by the
estimated saving (L - 1) * count(c) * median api(k) over the chain's kernels,
the launch-call time fusion removes while the run is CPU-bound.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skipnative.analysis.kernels import WHOLE_TRACE, join_kernels, select_kernels
from skipnative.trace import KIND_SYNC, Trace


@dataclass
class Candidate:
    chain: tuple[str, ...]
    count: int
    ps: float
    saving_us: float
    ops: list[str] = field(default_factory=list)
    occurrences: list[tuple[int, ...]] = field(default_factory=list)  # kernel rows (join order)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chain": list(self.chain),
            "count": self.count,
            "ps": self.ps,
            "saving_us": self.saving_us,
            "ops": self.ops,
        }


def sync_times(trace: Trace) -> np.ndarray:
    """Begins of the synchronising calls (kind "sync" of trace.CALL_KINDS), sorted."""
    ln = trace.launches
    return np.sort(ln["t_begin"][ln["kind"] == KIND_SYNC])


def find_candidates(
    trace: Trace,
    *,
    lengths=(2, 3),
    threshold: float = 1.0,
    region: str = WHOLE_TRACE,
    device: int | None = None,
    top: int | None = None,
) -> list[Candidate]:
    """Chains of kernel names that follow each other on a stream (no sync between
    them) in the kernels of every region named `region`, on `device`."""
    kt = join_kernels(trace)
    idx = np.flatnonzero(select_kernels(trace, kt, region=region, device=device))
    if len(idx) == 0:
        return []
    syncs = sync_times(trace)
    names = kt.name_id
    api = np.where(kt.launch >= 0, kt.l_end - kt.l_begin, 0)
    has_launch = kt.launch >= 0

    first_count = Counter(names[idx].tolist())
    chain_count: dict[int, Counter] = {L: Counter() for L in lengths}
    occ: dict[tuple, list] = defaultdict(list)
    # per (device, stream), in start order
    order = idx[np.lexsort((kt.t_start[idx], kt.stream[idx], kt.device[idx]))]
    dev_s, str_s = kt.device[order], kt.stream[order]
    cut = np.ones(len(order), dtype=bool)
    cut[1:] = (dev_s[1:] != dev_s[:-1]) | (str_s[1:] != str_s[:-1])
    # a sync that began in [anchor(prev), anchor(next)) separates the two kernels
    a = kt.anchor[order]
    if len(syncs) and len(order) > 1:
        n_before = np.searchsorted(syncs, a, side="left")
        cut[1:] |= n_before[1:] > n_before[:-1]
    seg_starts = np.flatnonzero(cut)
    seg_ends = np.append(seg_starts[1:], len(order))
    for s, e in zip(seg_starts, seg_ends):
        seg = order[s:e]
        seg_names = names[seg].tolist()
        for L in lengths:
            for i in range(len(seg) - L + 1):
                key = tuple(seg_names[i : i + L])
                chain_count[L][key] += 1
                occ[key].append(tuple(seg[i : i + L].tolist()))

    out = []
    for L in lengths:
        for key, c in chain_count[L].items():
            ps = c / first_count[key[0]]
            if ps < threshold:
                continue
            rows = np.array(occ[key]).ravel()
            matched = rows[has_launch[rows]]
            med = float(np.median(api[matched])) if len(matched) else 0.0
            out.append(
                Candidate(
                    chain=tuple(trace.strings[k] for k in key),
                    count=c,
                    ps=ps,
                    saving_us=(L - 1) * c * med / 1e3,
                    occurrences=occ[key],
                )
            )
    out.sort(key=lambda c: (-c.saving_us, -c.count, c.chain))
    if top is not None:
        out = out[:top]
    _attach_ops(trace, kt, out)
    return out


def _attach_ops(trace: Trace, kt, cands: list[Candidate]) -> None:
    if len(trace.ops) == 0 or not cands:
        return
    from skipnative.analysis.attribution import launch_ops

    _inner, top = launch_ops(trace)
    for c in cands:
        rows = np.array(c.occurrences).ravel()
        launches = kt.launch[rows]
        tops = top[launches[launches >= 0]]
        tops = tops[tops >= 0]
        names = Counter(trace.strings[trace.ops["name_id"][t]] for t in tops.tolist())
        c.ops = [n for n, _ in names.most_common()]


__all__ = ["Candidate", "find_candidates"]
