"""Aligning the kernels of two passes over the same work (a native timing pass and
a torch.profiler attribution pass): per stream, by order and name, with a
longest-common-subsequence alignment where the sequences differ."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from skipnative.analysis.kernels import KernelTable, join_kernels, select_kernels
from skipnative.trace import Trace


@dataclass
class Alignment:
    """native kernel row (in trace.gpu) -> kineto kernel row (in kineto.gpu), -1 unmatched."""

    native_to_kineto: np.ndarray
    match_rate: float
    per_region: dict[str, float] = field(default_factory=dict)


def lcs_pairs(a: list, b: list, max_d: int = 400) -> list[tuple[int, int]] | None:
    """Index pairs of a longest common subsequence of a and b (Myers' O((N+M)D)
    diff), or None when more than max_d insertions and deletions separate them."""
    n, m = len(a), len(b)
    v: dict[int, int] = {1: 0}
    trace: list[dict[int, int]] = []
    for d in range(min(max_d, n + m) + 1):
        vd: dict[int, int] = {}
        for k in range(-d, d + 1, 2):
            if k == -d or (k != d and v.get(k - 1, -1) < v.get(k + 1, -1)):
                x = v.get(k + 1, 0)  # a step down: b[y] inserted
            else:
                x = v.get(k - 1, 0) + 1  # a step right: a[x] deleted
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x += 1
                y += 1
            vd[k] = x
            if x >= n and y >= m:
                trace.append(vd)
                return _backtrack(trace, n, m)
        trace.append(vd)
        v = vd
    return None


def _backtrack(trace: list[dict[int, int]], n: int, m: int) -> list[tuple[int, int]]:
    pairs = []
    x, y = n, m
    for d in range(len(trace) - 1, 0, -1):
        prev = trace[d - 1]
        k = x - y
        down = k == -d or (k != d and prev.get(k - 1, -1) < prev.get(k + 1, -1))
        pk = k + 1 if down else k - 1
        px = prev[pk]
        py = px - pk
        while x > px and y > py:  # the diagonal run after the edit
            x -= 1
            y -= 1
            pairs.append((x, y))
        x, y = px, py
    while x > 0 and y > 0:
        x -= 1
        y -= 1
        pairs.append((x, y))
    pairs.reverse()
    return pairs


def align_sequences(a: list, b: list, window: int = 48, confirm: int = 3):
    """Matched index pairs of two name sequences: a longest common subsequence where
    they differ in at most a few hundred places; beyond that, walk both and at a
    mismatch, resynchronise at the nearest (fewest skipped) pair of positions
    where `confirm` names agree, looking at most `window` ahead in each; with no
    such pair, treat the two as a substitution. Linear for sequences that differ
    in a few places (the usual case: an extra or missing kernel, a different
    algorithm picked), unlike a general LCS."""
    exact = lcs_pairs(a, b)
    if exact is not None:
        return exact
    pairs = []
    i = j = 0
    na, nb = len(a), len(b)
    while i < na and j < nb:
        if a[i] == b[j]:
            pairs.append((i, j))
            i += 1
            j += 1
            continue
        found = None
        for step in range(1, 2 * window + 1):
            for di in range(max(0, step - window), min(step, window) + 1):
                ii, jj = i + di, j + step - di
                if ii < na and jj < nb and a[ii : ii + confirm] == b[jj : jj + confirm]:
                    found = (ii, jj)
                    break
            if found:
                break
        if found is None:
            i += 1
            j += 1
        else:
            i, j = found
    return pairs


def _kernels_by_stream(trace: Trace, kt: KernelTable, window: tuple[int, int] | None = None):
    """GPU rows of the kernels per (device, stream) in start order; with `window`,
    only the kernels placed in it (select_kernels)."""
    g = trace.gpu
    rows = np.flatnonzero(g["kind"] == 0)[select_kernels(trace, kt, window=window)]
    out = defaultdict(list)
    for r in rows[np.argsort(g["t_start"][rows], kind="stable")].tolist():
        out[(int(g["device"][r]), int(g["stream"][r]))].append(r)
    return out


def align(
    native: Trace,
    kineto: Trace,
    native_regions: list[tuple[str, int | None, int | None]] | None = None,
    kineto_region: tuple[int, int] | None = None,
) -> Alignment:
    """Aligns each native region's kernels to the kineto region's, per stream."""
    if native_regions is None:
        native_regions = [
            (native.strings[r["name_id"]], int(r["t_begin"]), int(r["t_end"]))
            for r in native.iterations
        ] or [("all", None, None)]
    kb = _kernels_by_stream(kineto, join_kernels(kineto), kineto_region)
    k_names = {
        s: [kineto.strings[kineto.gpu["name_id"][r]] for r in rows] for s, rows in kb.items()
    }
    kt = join_kernels(native)  # once, for every region
    mapping = np.full(len(native.gpu), -1, dtype=np.int64)
    total = matched = 0
    per_region = {}
    for name, t0, t1 in native_regions:
        nb = _kernels_by_stream(native, kt, None if t0 is None or t1 is None else (t0, t1))
        r_total = r_matched = 0
        for s in set(nb) | set(kb):
            n_rows, k_rows = nb.get(s, []), kb.get(s, [])
            n_names = [native.strings[native.gpu["name_id"][r]] for r in n_rows]
            r_total += max(len(n_rows), len(k_rows))
            if n_names == k_names.get(s, []):
                pairs = zip(range(len(n_rows)), range(len(n_rows)))
            else:
                pairs = align_sequences(n_names, k_names.get(s, []))
            for i, j in pairs:
                mapping[n_rows[i]] = k_rows[j]
                r_matched += 1
        per_region[name] = r_matched / r_total if r_total else 1.0
        total += r_total
        matched += r_matched
    return Alignment(mapping, matched / total if total else 1.0, per_region)
