"""Profiling a PyTorch workload: a timing pass and an attribution pass (DESIGN.md).

1. Timing pass: skipnative's own CUPTI session and nothing else, ``iters``
   iterations, one region each. These are the numbers reported.
2. Attribution pass: one more iteration under torch.profiler. Its kernels are
   aligned to each timing-pass iteration per stream by order and name (a
   longest-matching-blocks alignment where the sequences differ), which gives
   every timed kernel its ATen op and top-level op. The same pass is Kineto's
   measurement of the work, reported beside the native one.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

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


def _kernels_by_stream(trace: Trace, t0=None, t1=None, anchor=None):
    """GPU rows of the kernels per (device, stream) in start order; with t0, only the
    kernels whose anchor (join_kernels' anchor, one per kernel) lies in [t0, t1)."""
    g = trace.gpu
    rows = np.flatnonzero(g["kind"] == 0)
    if t0 is not None:
        if anchor is None:
            from skipnative.analysis.metrics import join_kernels

            anchor = join_kernels(trace).anchor
        rows = rows[(anchor >= t0) & (anchor < t1)]
    out = defaultdict(list)
    for r in rows[np.argsort(g["t_start"][rows], kind="stable")].tolist():
        out[(int(g["device"][r]), int(g["stream"][r]))].append(r)
    return out


def align(
    native: Trace,
    kineto: Trace,
    native_regions: list[tuple[str, int, int]] | None = None,
    kineto_region: tuple[int, int] | None = None,
) -> Alignment:
    """Aligns each native region's kernels to the kineto region's, per stream."""
    if native_regions is None:
        native_regions = [
            (native.strings[r["name_id"]], int(r["t_begin"]), int(r["t_end"]))
            for r in native.regions
        ] or [("all", None, None)]
    kb = _kernels_by_stream(kineto, *(kineto_region or (None, None)))
    k_names = {
        s: [kineto.strings[kineto.gpu["name_id"][r]] for r in rows] for s, rows in kb.items()
    }
    from skipnative.analysis.metrics import join_kernels

    anchor = join_kernels(native).anchor  # once, for every region
    mapping = np.full(len(native.gpu), -1, dtype=np.int64)
    total = matched = 0
    per_region = {}
    for name, t0, t1 in native_regions:
        nb = _kernels_by_stream(native, t0, t1, anchor)
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


def kernel_ops(native: Trace, kineto: Trace, alignment: Alignment):
    """(op name, top-level op name) per native GPU row ('' where unknown)."""
    from skipnative.analysis.attribution import launch_ops

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
        from skipnative.analysis.metrics import in_regions, join_kernels

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


FIDELITY_BLOCKS = 2  # alternating unprofiled / captured blocks of measure_fidelity


def cuda_event_ms(fn: Callable[[], Any]) -> float:
    """One run of `fn`, timed on the GPU by CUDA events around it (ms)."""
    import torch

    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b)


def measure_fidelity(
    fn: Callable[[], Any],
    reps: int,
    capture_options: dict[str, Any],
    *,
    timer: Callable[[Callable[[], Any]], float] = cuda_event_ms,
) -> dict[str, Any]:
    """SPEC.md section 6's perturbation of a capture with `capture_options` on `fn`:
    inference latency timed by CUDA events (`timer`), `reps` runs unprofiled and
    `reps` under the capture, in alternating blocks so drift hits both alike
    (each capture first runs `fn` once, untimed: CUPTI's first-launch setup);
    medians. The captures' traces are discarded."""
    from skipnative import capture

    if reps < 1:
        raise ValueError("measure_fidelity: reps must be >= 1")
    per = [reps // FIDELITY_BLOCKS + (i < reps % FIDELITY_BLOCKS) for i in range(FIDELITY_BLOCKS)]
    unprofiled: list[float] = []
    profiled: list[float] = []
    for n in per:
        unprofiled += [timer(fn) for _ in range(n)]
        with capture(**capture_options):
            fn()
            _synchronize()
            profiled += [timer(fn) for _ in range(n)]
    un, pr = float(np.median(unprofiled)), float(np.median(profiled))
    return {
        "reps": reps,
        "il_unprofiled_ms": un,
        "il_profiled_ms": pr,
        "perturbation": pr / un - 1 if un > 0 else None,
    }


def profile(
    fn: Callable[[], Any],
    *,
    warmup: int = 3,
    iters: int = 5,
    attribution: bool = True,
    fidelity_reps: int = 0,
    **capture_options: Any,
) -> Profile:
    """Profiles `fn` (one inference iteration) on the current CUDA device.

    The timing pass runs one more iteration than it times, first and unmarked:
    CUPTI sets up activity tracing at the first launch after a session starts
    (that one call took about 2 ms on an H200, 60-85 us on an H100), which would
    otherwise land in the first timed iteration. Only the marked iterations are
    reported.

    With `fidelity_reps` (SPEC.md asks for at least 20), the timing pass's own
    perturbation of `fn` is measured too (measure_fidelity) and reported in
    `Profile.fidelity`."""
    from skipnative import capture, load

    for _ in range(warmup):
        fn()
    _synchronize()
    capture_options.setdefault("latency_timestamps", True)
    with capture(**capture_options) as cap:  # the timing pass: before any torch.profiler use
        fn()  # absorbs CUPTI's first-launch setup; not in any iteration region
        _synchronize()
        for i in range(iters):
            cap.mark(f"iter{i}")
            fn()
            # each iteration is one request: without the sync, the next one would
            # queue behind this one's kernels and its IL and TKLQT would include them
            _synchronize()
    native = cap.trace
    fidelity = measure_fidelity(fn, fidelity_reps, capture_options) if fidelity_reps else None
    if not attribution:
        return Profile(native, None, None, fidelity=fidelity)
    import torch
    from torch.profiler import ProfilerActivity, schedule
    from torch.profiler import profile as torch_profile

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "kineto.json")
        with torch_profile(
            activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
            schedule=schedule(wait=0, warmup=1, active=1, repeat=1),
            on_trace_ready=lambda p: p.export_chrome_trace(path),
        ) as prof:
            for _ in range(2):
                fn()
                torch.cuda.synchronize()
                prof.step()
        kineto = load(path)
    prof = attribute(native, kineto)
    prof.fidelity = fidelity
    return prof


def _synchronize() -> None:
    """Waits for the GPU through torch when it drives one (a workload without torch
    synchronises itself)."""
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def attribute(native: Trace, kineto: Trace) -> Profile:
    """Aligns a timing pass with an attribution pass (the latter's last ProfilerStep)."""
    steps = [(int(r["t_begin"]), int(r["t_end"])) for r in kineto.regions]
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
