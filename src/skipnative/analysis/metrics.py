"""SKIP run metrics (SPEC.md §2–3): TKLQT and its parts, AKD, IL, GPU idle and
busy time, queueing and the CPU/GPU-bound classification, per region and device.

Everything is vectorised over the trace's columns. Conventions beyond SPEC.md:

- a kernel counts towards TKLQT when its launch is a single-kernel launch API,
  or when it is the earliest-starting kernel of a graph launch;
- ``api = t_end(l) − t_begin(l)`` and ``wait = t_start(k) − t_end(l)`` as
  written; ``wait`` is negative when a kernel starts before its launch call
  returns (counted in ``n_early_start``); a kernel with negative ``t_lq``
  contributes 0 to ``tklqt``, ``launch_api`` and ``launch_wait`` alike, so
  ``tklqt == launch_api + launch_wait`` holds exactly;
- with no counted kernels, ``queued_fraction`` is 0 and the run is CPU-bound.

Beyond SPEC.md, GPU idle time by cause, per stream (``gpu_idle_host_us``,
``gpu_idle_launch_us``): the idle gap before each kernel (from its stream
predecessor's end, or from the region's start for a stream's first kernel)
splits at the begin of its launch call. Before it, the GPU waited for the host
to reach the launch (framework and host work: what a faster CPU or fewer ops
remove); after it, for the launch call, submission and scheduling (what CUDA
graphs remove). Kernels without a launch are left out of both. On one stream
with every kernel matched, the two add up to ``gpu_idle_us``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skipnative.analysis.kernels import (
    WHOLE_TRACE,
    KernelTable,
    join_kernels,
    select_kernels,
)
from skipnative.trace import Trace

GPU_BOUND_THRESHOLD = 0.5
METRIC_KEYS = (
    "n_kernels",
    "n_counted_kernels",
    "n_unmatched_kernels",
    "n_negative_lq",
    "tklqt_us",
    "launch_api_us",
    "launch_wait_us",
    "akd_us",
    "il_us",
    "gpu_idle_us",
    "gpu_busy_us",
    "gpu_idle_union_us",
    "queued_fraction",
    "bound",
)


@dataclass
class RegionMetrics:
    name: str
    device: int
    metrics: dict[str, Any]
    top_kernels: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "device": self.device,
            "metrics": self.metrics,
            "top_kernels": self.top_kernels,
        }


def _union_length(start: np.ndarray, end: np.ndarray) -> int:
    if len(start) == 0:
        return 0
    o = np.argsort(start, kind="stable")
    s, e = start[o], end[o]
    run_end = np.maximum.accumulate(e)
    # a new busy block starts where a kernel starts after everything before it ended
    new_block = np.ones(len(s), dtype=bool)
    new_block[1:] = s[1:] > run_end[:-1]
    block_id = np.cumsum(new_block) - 1
    block_start = s[new_block]
    block_end = np.zeros(len(block_start), dtype=np.int64)
    np.maximum.at(block_end, block_id, e)
    return int((block_end - block_start).sum())


def top_kernels(
    trace: Trace, kt: KernelTable, sel: np.ndarray, k: int | None = 10
) -> list[dict[str, Any]]:
    """The selected kernels by name, longest total first."""
    return _top_kernels(trace, kt.name_id[sel], (kt.t_end - kt.t_start)[sel], k)


def _top_kernels(trace: Trace, name_id, dur, k: int | None) -> list[dict[str, Any]]:
    if len(name_id) == 0:
        return []
    uniq, inv = np.unique(name_id, return_inverse=True)
    count = np.bincount(inv)
    total = np.bincount(inv, weights=dur.astype(np.float64))
    names = [trace.strings[i] for i in uniq]
    order = sorted(range(len(uniq)), key=lambda i: (-total[i], -count[i], names[i]))
    if k is not None:
        order = order[:k]
    return [
        {
            "name": names[i],
            "count": int(count[i]),
            "total_us": total[i] / 1e3,
            "mean_us": total[i] / count[i] / 1e3,
        }
        for i in order
    ]


def _regions(trace: Trace) -> list[tuple[str, int | None, int | None]]:
    out: list[tuple[str, int | None, int | None]] = [(WHOLE_TRACE, None, None)]
    for r in trace.regions:
        out.append((trace.strings[r["name_id"]], int(r["t_begin"]), int(r["t_end"])))
    return out


def _start_time(trace: Trace, top_begin: np.ndarray, t0, t1, kt: KernelTable, sel) -> int | None:
    if len(top_begin):
        if t0 is None:
            return int(top_begin[0])
        i = np.searchsorted(top_begin, t0)
        if i < len(top_begin) and top_begin[i] < t1:
            return int(top_begin[i])
    if t0 is not None:
        return int(t0)
    lb = trace.launches["t_begin"]
    if len(lb):
        return int(lb.min())
    return int(kt.t_start[sel].min()) if sel.any() else None


def _idle_by_cause(kt: KernelTable, sel: np.ndarray, start: int | None) -> tuple[int, int]:
    """(host, launch) ns of per-stream GPU idle before the selected kernels."""
    host = launch = 0
    rows = np.flatnonzero(sel)
    streams = kt.stream[rows]
    for s in np.unique(streams):
        r = rows[streams == s]
        r = r[np.argsort(kt.t_start[r], kind="stable")]
        t_s, t_e = kt.t_start[r], kt.t_end[r]
        first = int(t_s[0]) if start is None else min(int(start), int(t_s[0]))
        # the stream is free from the latest end before each kernel (or the start)
        free = np.concatenate(([first], np.maximum.accumulate(t_e)[:-1]))
        free = np.maximum(free, first)
        gap = np.maximum(t_s - free, 0)
        has = kt.launch[r] >= 0
        h = np.clip(np.minimum(kt.l_begin[r], t_s) - free, 0, gap)
        host += int(h[has].sum())
        launch += int((gap - h)[has].sum())
    return host, launch


def region_metrics(
    trace: Trace, kt: KernelTable, sel: np.ndarray, start: int | None, top: int | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics of the kernels selected by `sel` (one region, one device)."""
    dur = (kt.t_end - kt.t_start)[sel]
    counted = sel & kt.counted
    lq = kt.t_start[counted] - kt.l_begin[counted]
    api = kt.l_end[counted] - kt.l_begin[counted]
    wait = kt.t_start[counted] - kt.l_end[counted]
    neg = lq < 0
    ok = ~neg
    tklqt = int(lq[ok].sum())
    launch_api = int(api[ok].sum())
    launch_wait = int(wait[ok].sum())

    # wait = submission (call return -> CUPTI's "submitted") + GPU queueing
    # (submitted -> start), for kernels with latency timestamps that started after
    # their call returned; an early start's negative wait is reported on its own
    sub = kt.t_submitted[counted]
    split = ok & (sub > 0) & (wait >= 0)
    submit = np.clip(sub[split] - kt.l_end[counted][split], 0, wait[split])
    queue = wait[split] - submit
    early = wait[ok & (wait < 0)]

    idle_host, idle_launch = _idle_by_cause(kt, sel, start)
    n_kernels = int(sel.sum())
    n_counted = int(counted.sum())
    il = int(kt.t_end[sel].max() - start) if n_kernels and start is not None else 0
    busy = _union_length(kt.t_start[sel], kt.t_end[sel])
    qf = float(kt.queued[counted].mean()) if n_counted else 0.0
    m = {
        "n_kernels": n_kernels,
        "n_counted_kernels": n_counted,
        "n_unmatched_kernels": int((sel & (kt.launch < 0)).sum()),
        "n_negative_lq": int(neg.sum()),
        "tklqt_us": tklqt / 1e3,
        "launch_api_us": launch_api / 1e3,
        "launch_wait_us": launch_wait / 1e3,
        "akd_us": float(dur.mean()) / 1e3 if n_kernels else 0.0,
        "il_us": il / 1e3,
        "gpu_idle_us": (il - int(dur.sum())) / 1e3,
        "gpu_busy_us": busy / 1e3,
        "gpu_idle_union_us": (il - busy) / 1e3,
        "queued_fraction": qf,
        "bound": "gpu" if qf >= GPU_BOUND_THRESHOLD else "cpu",
        # beyond the required keys
        "min_negative_lq_us": float(lq[neg].min()) / 1e3 if neg.any() else 0.0,
        "n_early_start": int((ok & (wait < 0)).sum()),
        "n_latency_kernels": int(split.sum()),
        "launch_submit_us": int(submit.sum()) / 1e3,
        "launch_queue_us": int(queue.sum()) / 1e3,
        "launch_early_us": int(early.sum()) / 1e3,
        "mean_lq_us": (tklqt / max(int(ok.sum()), 1)) / 1e3,
        "median_lq_us": float(np.median(lq[ok])) / 1e3 if ok.any() else 0.0,
        "gpu_idle_host_us": idle_host / 1e3,
        "gpu_idle_launch_us": idle_launch / 1e3,
    }
    return m, _top_kernels(trace, kt.name_id[sel], dur, top)


def api_summary(trace: Trace) -> list[dict[str, Any]]:
    """Per API (launches, copies, syncs...): calls, total, median and longest
    duration, sorted by total time; the longest call's begin is given from the
    trace's first call, so a stall can be found on the timeline."""
    ln = trace.launches
    if len(ln) == 0:
        return []
    dur = (ln["t_end"] - ln["t_begin"]).astype(np.int64)
    t0 = int(ln["t_begin"].min())
    uniq, inv = np.unique(ln["name_id"], return_inverse=True)
    out = []
    for i, name_id in enumerate(uniq.tolist()):
        rows = np.flatnonzero(inv == i)
        d = dur[rows]
        j = rows[int(np.argmax(d))]
        out.append(
            {
                "name": trace.strings[name_id],
                "calls": len(rows),
                "total_us": int(d.sum()) / 1e3,
                "median_us": float(np.median(d)) / 1e3,
                "max_us": int(d.max()) / 1e3,
                "max_at_us": int(ln["t_begin"][j] - t0) / 1e3,
            }
        )
    out.sort(key=lambda r: (-r["total_us"], r["name"]))
    return out


def compute_metrics(
    trace: Trace,
    region: str | None = None,
    device: int | None = None,
    top: int | None = 10,
    kt: KernelTable | None = None,
) -> list[RegionMetrics]:
    """Metrics for "all" and every region (or the regions named `region`), per device."""
    kt = kt if kt is not None else join_kernels(trace)
    ops = trace.ops
    top_begin = np.sort(ops["t_begin"][ops["depth"] == 0]) if len(ops) else np.zeros(0, np.int64)
    devices = np.unique(kt.device)
    out = []
    for name, t0, t1 in _regions(trace):
        if region is not None and name != region:
            continue
        in_region = select_kernels(trace, kt, window=None if t0 is None or t1 is None else (t0, t1))
        start = _start_time(trace, top_begin, t0, t1, kt, in_region)
        region_devices = np.unique(kt.device[in_region]) if in_region.any() else devices[:1]
        if len(region_devices) == 0:
            region_devices = np.array([-1])
        for d in region_devices:
            if device is not None and int(d) != device:
                continue
            sel = in_region & select_kernels(trace, kt, device=int(d))
            m, tk = region_metrics(trace, kt, sel, start, top)
            out.append(RegionMetrics(name=name, device=int(d), metrics=m, top_kernels=tk))
    return out
