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
- with no counted kernels, ``queued_fraction`` is 0 and ``bound`` is ``"none"``.

Beyond SPEC.md, GPU idle time by cause, per stream (``gpu_idle_host_us``,
``gpu_idle_launch_us``): the idle gap before each kernel (from its stream
predecessor's end, or from the region's start for a stream's first kernel)
splits at the begin of its launch call. Before it, the GPU waited for the host
to reach the launch (framework and host work: what a faster CPU or fewer ops
remove); after it, for the launch call, submission and scheduling (what CUDA
graphs remove). Kernels without a launch are left out of both. On one stream
with every kernel matched, the two add up to ``gpu_idle_us``; over several
streams they are summed over streams and can exceed ``il_us``
(``gpu_idle_streams`` says over how many; RegionMetrics.idle_by_stream gives
each stream's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skipnative.analysis.kernels import (
    ANNOTATION,
    WHOLE_TRACE,
    KernelTable,
    check_window,
    is_int,
    join_kernels,
    unknown_region,
)
from skipnative.trace import LAUNCH_KINDS, Trace

GPU_BOUND_THRESHOLD = 0.5
METRIC_KEYS = (
    "n_kernels",
    "n_counted_kernels",
    "n_graph_extra_kernels",
    "n_unmatched_kernels",
    "n_other_call_kernels",
    "n_negative_lq",
    "min_negative_lq_us",
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

# the metrics of CUPTI's latency timestamps (the submitted time), which only a
# skipnative capture with latency_timestamps records (torch.profiler never does)
LATENCY_METRICS = ("n_latency_kernels", "launch_submit_us", "launch_queue_us")


def records_latency(trace: Trace) -> bool:
    """Whether the trace holds CUPTI's submitted times (any GPU row with one)."""
    return bool(len(trace.gpu)) and bool((trace.gpu["t_submitted"] != 0).any())


def mark_unrecorded(metrics: dict[str, Any], latency_recorded: bool) -> dict[str, Any]:
    """`metrics` of a trace with those it does not record (the latency metrics,
    unless `latency_recorded`: records_latency()) set to NaN (what the commands
    print as "-" and write as null), not the 0 they are computed as: a side of a
    comparison that lacks them must not read as none measured."""
    if not latency_recorded:
        metrics.update({k: float("nan") for k in LATENCY_METRICS if k in metrics})
    return metrics


@dataclass
class RegionMetrics:
    name: str
    device: int
    metrics: dict[str, Any]
    top_kernels: list[dict[str, Any]] = field(default_factory=list)
    idle_by_stream: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "device": self.device,
            "metrics": self.metrics,
            "top_kernels": self.top_kernels,
            "idle_by_stream": self.idle_by_stream,
        }


def _sum(a: np.ndarray) -> int:
    """The exact sum of int64 nanoseconds: numpy's int64 sum wraps past 2**63, and
    a metric is never a wrapped number (SPEC.md §3); each value fits, their sum
    need not."""
    if len(a) == 0:
        return 0
    if max(abs(int(a.max())), abs(int(a.min()))) * len(a) < 2**63:
        return int(a.sum())
    return sum(a.tolist())


def _union_length(start: np.ndarray, end: np.ndarray) -> int:
    if len(start) == 0:
        return 0
    o = np.argsort(start, kind="stable")
    s, e = start[o], end[o]
    run_end = np.maximum.accumulate(e)
    # a new busy block starts where a kernel starts after everything before it ended
    new_block = np.ones(len(s), dtype=bool)
    new_block[1:] = s[1:] > run_end[:-1]
    block_start = s[new_block]
    # a block ends where the running end stands at its last kernel (any sign)
    last = np.append(np.flatnonzero(new_block)[1:] - 1, len(s) - 1)
    return _sum(run_end[last] - block_start)


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


def _regions(trace: Trace, region: str | None) -> list[tuple[str, int | None, int | None]]:
    """(name, t0, t1) of "all" and the step / marker regions, or of every region
    (an annotation too, each occurrence its own) named `region`."""
    out: list[tuple[str, int | None, int | None]] = [(WHOLE_TRACE, None, None)]
    rg = trace.regions
    if region is None:
        rg = rg[rg["kind"] != ANNOTATION]
    cols = (rg["name_id"].tolist(), rg["t_begin"].tolist(), rg["t_end"].tolist())
    for name_id, t0, t1 in zip(*cols):
        name = trace.strings[name_id]
        if region in (None, name):
            out.append((name, t0, t1))
    return [r for r in out if region in (None, r[0])]


def _first_in(times: np.ndarray, lo: int | None, hi: int | None) -> int | None:
    """The first of the sorted `times` in [lo, hi) (None: unbounded), or None."""
    i = 0 if lo is None else int(np.searchsorted(times, lo))
    if i < len(times) and (hi is None or times[i] < hi):
        return int(times[i])
    return None


def _bounds(t0, t1, window) -> tuple[int | None, int | None]:
    if window is None:
        return t0, t1
    lo = window[0] if t0 is None else max(t0, window[0])
    hi = window[1] if t1 is None else min(t1, window[1])
    return lo, hi


def _start_time(starts: dict[str, np.ndarray], t0, t1, window, kt) -> int | None:
    """IL's start (SPEC.md §3): the first top-level ATen op in the region, else its
    start marker, else the first launch of §1 (kernel, graph, copy or set call);
    with a window, only what begins inside it."""
    lo, hi = _bounds(t0, t1, window)
    first = _first_in(starts["top_ops"], lo, hi)
    if first is not None:
        return first
    if t0 is not None and (window is None or window[0] <= t0 < window[1]):
        return int(t0)
    first = _first_in(starts["launches"], lo, hi)
    if first is not None:
        return first
    return int(kt.t_start.min()) if len(kt.t_start) else None


def _distinct(a: np.ndarray) -> np.ndarray:
    """np.unique(a), with one value (most regions: one device, one stream) found
    by two reductions instead of a sort."""
    if len(a) and a.min() == a.max():
        return a[:1]
    return np.unique(a)


def _median(x: np.ndarray) -> float:
    """np.median(x) of a non-empty array: the middle of the sorted values, or the
    mean of the two middle ones."""
    v = np.sort(x)
    mid = len(v) // 2
    return float(v[mid]) if len(v) % 2 else (float(v[mid - 1]) + float(v[mid])) / 2


def _idle_by_cause(kt: KernelTable, start: int | None) -> list[dict[str, Any]]:
    """Per stream: ns of GPU idle before the table's kernels waiting for the host
    and for the launch."""
    out = []
    streams = _distinct(kt.stream)
    for s in streams:
        r = np.arange(len(kt.stream)) if len(streams) == 1 else np.flatnonzero(kt.stream == s)
        r = r[np.argsort(kt.t_start[r], kind="stable")]
        t_s, t_e = kt.t_start[r], kt.t_end[r]
        first = int(t_s[0]) if start is None else min(int(start), int(t_s[0]))
        # the stream is free from the latest end before each kernel (or the start)
        free = np.concatenate(([first], np.maximum.accumulate(t_e)[:-1]))
        free = np.maximum(free, first)
        gap = np.maximum(t_s - free, 0)
        has = kt.launch[r] >= 0
        h = np.clip(np.minimum(kt.l_begin[r], t_s) - free, 0, gap)
        out.append(
            {
                "stream": int(s),
                "host_us": _sum(h[has]) / 1e3,
                "launch_us": _sum((gap - h)[has]) / 1e3,
            }
        )
    return out


def region_metrics(
    trace: Trace, kt: KernelTable, start: int | None, top: int | None
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Metrics of every kernel of `kt` (the table of one region and device)."""
    dur = kt.t_end - kt.t_start
    counted = kt.counted
    lq = kt.t_start[counted] - kt.l_begin[counted]
    api = kt.l_end[counted] - kt.l_begin[counted]
    wait = kt.t_start[counted] - kt.l_end[counted]
    neg = lq < 0
    ok = ~neg
    tklqt = _sum(lq[ok])
    launch_api = _sum(api[ok])
    launch_wait = _sum(wait[ok])

    # wait = submission (call return -> CUPTI's "submitted") + GPU queueing
    # (submitted -> start), for kernels with latency timestamps that started after
    # their call returned; an early start's negative wait is reported on its own
    sub = kt.t_submitted[counted]
    split = ok & (sub > 0) & (wait >= 0)
    submit = np.clip(sub[split] - kt.l_end[counted][split], 0, wait[split])
    queue = wait[split] - submit
    early = wait[ok & (wait < 0)]

    by_stream = _idle_by_cause(kt, start)
    n_kernels = len(dur)
    n_counted = int(counted.sum())
    il = int(kt.t_end.max() - start) if n_kernels and start is not None else 0
    busy = _union_length(kt.t_start, kt.t_end)
    qf = float(kt.queued[counted].mean()) if n_counted else 0.0
    m = {
        "n_kernels": n_kernels,
        "n_counted_kernels": n_counted,
        "n_graph_extra_kernels": int(kt.graph_extra.sum()),
        "n_unmatched_kernels": int((kt.launch < 0).sum()),
        "n_other_call_kernels": int(kt.other_call.sum()),
        "n_negative_lq": int(neg.sum()),
        "min_negative_lq_us": float(lq[neg].min()) / 1e3 if neg.any() else 0.0,
        "tklqt_us": tklqt / 1e3,
        "launch_api_us": launch_api / 1e3,
        "launch_wait_us": launch_wait / 1e3,
        "akd_us": float(dur.mean()) / 1e3 if n_kernels else 0.0,
        "il_us": il / 1e3,
        "gpu_idle_us": (il - _sum(dur)) / 1e3,
        "gpu_busy_us": busy / 1e3,
        "gpu_idle_union_us": (il - busy) / 1e3,
        "queued_fraction": qf,
        "bound": bound_of(qf, n_counted),
        # beyond the required keys
        "n_early_start": int((ok & (wait < 0)).sum()),
        "n_latency_kernels": int(split.sum()),
        "launch_submit_us": _sum(submit) / 1e3,
        "launch_queue_us": _sum(queue) / 1e3,
        "launch_early_us": _sum(early) / 1e3,
        "mean_lq_us": (tklqt / max(int(ok.sum()), 1)) / 1e3,
        "median_lq_us": _median(lq[ok]) / 1e3 if ok.any() else 0.0,
        "gpu_idle_host_us": sum(r["host_us"] for r in by_stream),
        "gpu_idle_launch_us": sum(r["launch_us"] for r in by_stream),
        "gpu_idle_streams": len(by_stream),
    }
    return m, _top_kernels(trace, kt.name_id, dur, top), by_stream


def bound_of(queued_fraction: float, n_counted: float) -> str:
    """SPEC.md §3: "gpu" at queued_fraction >= 0.5, else "cpu"; "none" with no
    counted kernel."""
    if not n_counted:
        return "none"
    return "gpu" if queued_fraction >= GPU_BOUND_THRESHOLD else "cpu"


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
                "total_us": _sum(d) / 1e3,
                "median_us": float(np.median(d)) / 1e3,
                "max_us": int(d.max()) / 1e3,
                "max_at_us": int(ln["t_begin"][j] - t0) / 1e3,
            }
        )
    out.sort(key=lambda r: (-r["total_us"], r["name"]))
    return out


def check_arguments(trace: Trace, region: Any, device: Any, top: Any, window: Any) -> None:
    """Trace.metrics()'s arguments, each refused by name where no reading of it
    can mean anything: a region the trace does not have (which gave no row, as
    if it were empty), a negative `top` (which left out the last kernels), a
    window that is no pair of numbers t0 < t1."""
    if region is not None:
        if not isinstance(region, str):
            raise TypeError(f"region: expected a str or None, not {region!r}")
        names = {trace.strings[i] for i in np.unique(trace.regions["name_id"]).tolist()}
        if region != WHOLE_TRACE and region not in names:
            raise ValueError(unknown_region(trace, region))
    if device is not None and not is_int(device):
        raise TypeError(f"device: expected an int or None, not {device!r}")
    if top is not None and not is_int(top):
        raise TypeError(f"top: expected an int or None (all), not {top!r}")
    if top is not None and top < 0:
        raise ValueError(f"top must be >= 0 or None (all), not {top}")
    check_window(window)


def compute_metrics(
    trace: Trace,
    region: str | None = None,
    device: int | None = None,
    top: int | None = 10,
    kt: KernelTable | None = None,
    window: tuple[int, int] | None = None,
) -> list[RegionMetrics]:
    """Metrics for "all" and every step region (or every region named `region`,
    annotations too), per device; with `window` [t0, t1) ns, of the kernels whose
    launch begins inside it."""
    kt = kt if kt is not None else join_kernels(trace)
    starts = _start_tables(trace)
    devices = np.unique(kt.device)
    # each region's kernels by one binary search over the kernels in anchor order
    # (a region is [t0, t1) of the anchor, as select_kernels takes it); rows are
    # kept in table order, so every sum and mean adds in the order a mask gives
    by_anchor = np.argsort(kt.anchor, kind="stable")
    anchors = kt.anchor[by_anchor]
    all_rows = np.arange(len(kt.anchor))
    out = []
    for name, t0, t1 in _regions(trace, region):
        if t0 is None or t1 is None:
            rows = all_rows
        else:
            lo, hi = np.searchsorted(anchors, [t0, t1])
            rows = np.sort(by_anchor[lo:hi])
        if window is not None:
            a = kt.anchor[rows]
            rows = rows[(a >= window[0]) & (a < window[1])]
        sub = kt if rows is all_rows else kt.take(rows)
        start = _start_time(starts, t0, t1, window, sub)
        region_devices = _distinct(sub.device) if len(rows) else devices[:1]
        if len(region_devices) == 0:
            region_devices = np.array([-1])
        for d in region_devices:
            if device is not None and int(d) != device:
                continue
            one = sub if len(region_devices) == 1 else sub.take(sub.device == d)
            m, tk, idle = region_metrics(trace, one, start, top)
            row = RegionMetrics(name, int(d), m, top_kernels=tk, idle_by_stream=idle)
            out.append(row)
    return out


def _start_tables(trace: Trace) -> dict[str, np.ndarray]:
    """Sorted begins of the top-level ATen ops and of the launches of SPEC.md §1."""
    ops, ln = trace.ops, trace.launches
    return {
        "top_ops": np.sort(ops["t_begin"][ops["depth"] == 0]),
        "launches": np.sort(ln["t_begin"][np.isin(ln["kind"], LAUNCH_KINDS)]),
    }
