"""Kernel joins and selection: each kernel with its launch call, its place in a
stream, the queued test, and the one way to select kernels (region, device,
window, rank) that metrics, fusion, what-if and the pass alignment share."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from skipnative.trace import KIND_GRAPH, KIND_KERNEL, REGION_KINDS, WHOLE_TRACE, Trace

ANY_REGION = "*"  # the kernels in any of a trace's regions (a profile's timed iterations)
ANNOTATION = REGION_KINDS.index("annotation")


@dataclass
class KernelTable:
    """Per-kernel join of a trace: everything the metrics need, as columns."""

    t_start: np.ndarray
    t_end: np.ndarray
    t_submitted: np.ndarray
    device: np.ndarray
    stream: np.ndarray
    name_id: np.ndarray
    launch: np.ndarray  # row in trace.launches, -1 when unmatched
    l_begin: np.ndarray  # launch t_begin (0 when unmatched)
    l_end: np.ndarray
    counted: np.ndarray  # contributes to TKLQT (SPEC §2)
    graph_extra: np.ndarray  # a graph launch's kernel after its first
    other_call: np.ndarray  # joined to a call that is no kernel or graph launch
    anchor: np.ndarray  # time that places the kernel in a region
    queued: np.ndarray  # stream predecessor still running when the launch returned

    def take(self, rows: np.ndarray) -> KernelTable:
        """The table of the kernels at `rows` (indices, or a mask), in that order."""
        return KernelTable(**{name: getattr(self, name)[rows] for name in _COLUMNS})


_COLUMNS = tuple(f.name for f in fields(KernelTable))


def join_by_correlation(launch_corr: np.ndarray, gpu_corr: np.ndarray) -> np.ndarray:
    """Row in the launches of each GPU activity's correlation id; -1 where none."""
    order = np.argsort(launch_corr, kind="stable")
    if len(order) == 0:
        return np.full(len(gpu_corr), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(launch_corr[order], gpu_corr), len(order) - 1)
    found = (launch_corr[order][pos] == gpu_corr) & (gpu_corr >= 0)
    return np.where(found, order[pos], -1)


def stream_order(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows in per-stream start order, each row's stream predecessor or -1)."""
    so = np.lexsort((g["t_start"], g["stream"], g["device"]))
    prev = np.full(len(g), -1, dtype=np.int64)
    if len(so) > 1:
        same = (g["device"][so][1:] == g["device"][so][:-1]) & (
            g["stream"][so][1:] == g["stream"][so][:-1]
        )
        prev[so[1:][same]] = so[:-1][same]
    return so, prev


def take(values: np.ndarray, index: np.ndarray, fill: Any) -> np.ndarray:
    """values[index] where index >= 0, else `fill` (also for every index when
    `values` is empty: a trace with kernels and no launch call)."""
    if len(values) == 0:
        return np.full(
            np.shape(index), fill, dtype=np.result_type(values.dtype, np.min_scalar_type(fill))
        )
    return np.where(index >= 0, values[np.maximum(index, 0)], fill)


def queued_at_return(
    g: np.ndarray, launched: np.ndarray, l_end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The queued test (SPEC.md §2) for the GPU rows of `g`: (rows in per-stream
    start order, each row's stream predecessor's end (int64 min for a stream's
    first row), queued). A row is queued when it has a launch (`launched`) and its
    stream predecessor was still running when that launch call returned (`l_end`)."""
    so, prev = stream_order(g)
    prev_end = take(g["t_end"], prev, np.iinfo(np.int64).min)
    return so, prev_end, launched & (prev_end > l_end)


def join_kernels(trace: Trace) -> KernelTable:
    g = trace.gpu[trace.gpu["kind"] == 0]
    launch = join_by_correlation(trace.launches["correlation"], g["correlation"])

    ln = trace.launches
    has = launch >= 0
    li = np.where(has, launch, 0)
    l_begin = np.where(has, ln["t_begin"][li] if len(ln) else 0, 0)
    l_end = np.where(has, ln["t_end"][li] if len(ln) else 0, 0)
    l_kind = np.where(has, ln["kind"][li] if len(ln) else 255, 255)

    counted = has & (l_kind == KIND_KERNEL)
    graph = has & (l_kind == KIND_GRAPH)
    other_call = has & ~counted & ~graph
    if graph.any():
        gi = np.flatnonzero(graph)
        o = np.lexsort((g["t_start"][gi], launch[gi]))
        gi = gi[o]
        first = np.ones(len(gi), dtype=bool)
        first[1:] = launch[gi][1:] != launch[gi][:-1]
        counted[gi[first]] = True
    graph_extra = graph & ~counted

    anchor = np.where(has, l_begin, g["t_start"])

    _, _, queued = queued_at_return(g, has, l_end)

    return KernelTable(
        t_start=g["t_start"],
        t_end=g["t_end"],
        t_submitted=g["t_submitted"],
        device=g["device"],
        stream=g["stream"],
        name_id=g["name_id"],
        launch=launch,
        l_begin=l_begin,
        l_end=l_end,
        counted=counted,
        graph_extra=graph_extra,
        other_call=other_call,
        anchor=anchor,
        queued=queued,
    )


def region_windows(trace: Trace, region: str | None) -> list[tuple[int, int]] | None:
    """[t0, t1) of every region named `region`, each occurrence its own (a step, a
    marker, or a record_function / user_annotation range); ANY_REGION: every step
    or marker region; None for the whole trace (region None or WHOLE_TRACE). A name
    no region has raises ValueError naming those there are; ANY_REGION on a trace
    without regions is the whole trace."""
    if region is None or region == WHOLE_TRACE:
        return None
    names = trace.strings
    rg = trace.regions
    if region == ANY_REGION:
        rg = rg[rg["kind"] != ANNOTATION]
    else:
        rg = rg[np.array([names[i] == region for i in rg["name_id"]], dtype=bool)]
    out = [(int(r["t_begin"]), int(r["t_end"])) for r in rg]
    if not out:
        if region == ANY_REGION:
            return None
        raise ValueError(unknown_region(trace, region))
    return out


def is_int(v: Any) -> bool:
    """An int or a numpy integer, not a bool."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def check_window(window: Any) -> None:
    """A `window` argument is None or (t0, t1), two finite numbers of ns with
    t0 < t1; anything else, which selected nothing or failed deep in numpy, is
    refused naming it."""
    if window is None:
        return
    ends = tuple(window) if isinstance(window, (tuple, list, np.ndarray)) else ()
    finite = [is_int(t) or (isinstance(t, (float, np.floating)) and np.isfinite(t)) for t in ends]
    if len(ends) != 2 or not all(finite):
        raise TypeError(f"window: expected (t0, t1), two finite numbers of ns, not {window!r}")
    if not ends[0] < ends[1]:
        raise ValueError(f"window: t1 must be after t0, not {window!r}")


def unknown_region(trace: Trace, region: str) -> str:
    """The message for a region name the trace does not have: the names it has."""
    names = sorted({trace.strings[i] for i in trace.regions["name_id"]}, key=_natural)
    steps = [n for n in names if n.startswith("ProfilerStep#")]
    others = [n for n in names if not n.startswith("ProfilerStep#")]
    shown = [WHOLE_TRACE]
    if steps:
        shown.append(steps[0] if len(steps) == 1 else f"{steps[0]} .. {steps[-1]}")
    shown += others[:20] + (["..."] if len(others) > 20 else [])
    msg = f"no region named {region!r}; there are: {', '.join(shown)}"
    if trace.source != "kineto":
        msg += " (native captures record no NVTX or record_function ranges)"
    return msg


def _natural(name: str) -> tuple:
    head, _, tail = name.rpartition("#")
    return (head, int(tail)) if head and tail.isdigit() else (name, -1)


def select_kernels(
    trace: Trace,
    kt: KernelTable,
    *,
    region: str | None = None,
    device: int | None = None,
    window: tuple[int, int] | None = None,
    rank: int | None = None,
) -> np.ndarray:
    """Mask over kt's kernels: placed (by their anchor) in any region named
    `region` (see region_windows), inside `window` [t0, t1), on `device`, and in a
    trace of `rank` (trace.meta["rank"]; a trace without one is rank 0)."""
    sel = np.ones(len(kt.anchor), dtype=bool)
    if rank is not None and int(trace.meta.get("rank", 0)) != rank:
        return ~sel
    windows = region_windows(trace, region)
    if windows is not None:
        inr = np.zeros(len(kt.anchor), dtype=bool)
        for t0, t1 in windows:
            inr |= (kt.anchor >= t0) & (kt.anchor < t1)
        sel &= inr
    if window is not None:
        sel &= (kt.anchor >= window[0]) & (kt.anchor < window[1])
    if device is not None:
        sel &= kt.device == device
    return sel


def in_regions(trace: Trace, kt: KernelTable) -> np.ndarray:
    """Kernels placed in any of the trace's regions (all of them when it has none):
    a profile's timed iterations, without what ran outside them (warm-up)."""
    return select_kernels(trace, kt, region=ANY_REGION)


def trace_start(trace: Trace) -> int:
    """The trace's first timestamp (launch, GPU activity, op or region), in ns: the
    origin of a time window given from the trace's start."""
    firsts = [
        int(col.min())
        for col in (
            trace.launches["t_begin"],
            trace.gpu["t_start"],
            trace.ops["t_begin"],
            trace.regions["t_begin"],
        )
        if len(col)
    ]
    return min(firsts) if firsts else 0
