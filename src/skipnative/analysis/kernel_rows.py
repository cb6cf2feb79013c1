"""The per-kernel table: one row per kernel with its launch call, its latency parts,
its ops and region, and the SPEC.md §2 count it falls in.

Built from the same join, selection and classification as the metrics
(analysis/kernels.py), so summing a column over a region's ``counted`` rows gives
that region's metric.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skipnative.analysis.kernels import check_window, join_kernels, select_kernels, take
from skipnative.trace import API_KINDS, KIND_GRAPH, Trace

# SPEC.md §2: every kernel is in exactly one of these counts
COUNTS = ("counted", "graph_extra", "unmatched", "other_call")
COLUMNS = (
    "rank",
    "device",
    "stream",
    "name",
    "correlation",
    "api",
    "api_kind",
    "pid",
    "thread",
    "call_t_begin",
    "call_t_end",
    "t_start",
    "t_end",
    "dur_us",
    "api_us",
    "wait_us",
    "lq_us",
    "submit_us",
    "queue_us",
    "queued",
    "op",
    "top_op",
    "region",
    "count",
)


def _count_class(trace: Trace, kt) -> np.ndarray:
    has = kt.launch >= 0
    kind = take(trace.launches["kind"], kt.launch, 255)
    cls = np.full(len(kt.launch), COUNTS.index("other_call"), dtype=np.uint8)
    cls[~has] = COUNTS.index("unmatched")
    cls[has & (kind == KIND_GRAPH) & ~kt.counted] = COUNTS.index("graph_extra")
    cls[kt.counted] = COUNTS.index("counted")
    return cls


def _region_of(trace: Trace, anchor: np.ndarray) -> np.ndarray:
    """Name id of the latest-starting region that holds each anchor; 0 ('') for none."""
    out = np.zeros(len(anchor), dtype=np.int64)
    rg = trace.regions
    if len(rg) == 0:
        return out
    order = np.argsort(rg["t_begin"], kind="stable")
    for r in rg[order]:  # later regions overwrite: the innermost of nested ones
        inside = (anchor >= r["t_begin"]) & (anchor < r["t_end"])
        out[inside] = r["name_id"]
    return out


def _ops(trace: Trace, launch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    names = np.asarray(trace.strings, dtype=object)
    op = np.full(len(launch), "", dtype=object)
    top = np.full(len(launch), "", dtype=object)
    if len(trace.ops) == 0 or len(trace.launches) == 0:
        return op, top
    from skipnative.analysis.attribution import launch_ops

    inner, outer = launch_ops(trace)
    has = launch >= 0
    li = launch[has]
    for col, rows in ((op, inner[li]), (top, outer[li])):
        vals = np.full(len(li), "", dtype=object)
        ok = rows >= 0
        vals[ok] = names[trace.ops["name_id"][rows[ok]]]
        col[has] = vals
    return op, top


def kernel_rows(
    trace: Trace,
    *,
    region: str | None = None,
    window: tuple[int, int] | None = None,
    rank: int | None = None,
) -> dict[str, Any]:
    """Columns (numpy arrays, COLUMNS order) of the kernels placed in `region` and
    `window` (select_kernels' rules). Times are ns on the trace's clock, durations
    µs; NaN where a part is not recorded (no launch call, no submitted time)."""
    check_window(window)
    g = trace.gpu[trace.gpu["kind"] == 0]
    kt = join_kernels(trace)
    sel = select_kernels(trace, kt, region=region, window=window)
    has = kt.launch >= 0
    ln = trace.launches
    li = np.maximum(kt.launch, 0)
    pick = (lambda col, fill: np.where(has, ln[col][li], fill)) if len(ln) else None
    names = np.asarray(trace.strings, dtype=object)
    api_kind = pick("kind", 255) if pick else np.full(len(g), 255)
    nan = np.float64("nan")
    wait = np.where(has, (kt.t_start - kt.l_end) / 1e3, nan)
    sub = kt.t_submitted
    split = has & (sub > 0) & (wait >= 0)
    submit = np.where(split, np.clip(sub - kt.l_end, 0, None) / 1e3, nan)
    submit = np.where(split, np.minimum(submit, wait), nan)
    op, top = _ops(trace, kt.launch)
    kinds = np.asarray([*API_KINDS, *([""] * (256 - len(API_KINDS)))], dtype=object)
    r = rank if rank is not None else int(trace.meta.get("rank", 0) or 0)
    cols: dict[str, Any] = {
        "rank": np.full(len(g), r, dtype=np.int64),
        "device": kt.device.astype(np.int64),
        "stream": kt.stream.astype(np.int64),
        "name": names[kt.name_id],
        "correlation": g["correlation"],
        "api": names[pick("name_id", 0)] if pick else np.full(len(g), "", dtype=object),
        "api_kind": kinds[api_kind.astype(np.int64)],
        "pid": pick("pid", 0) if pick else np.zeros(len(g), np.int64),
        "thread": pick("tid", 0) if pick else np.zeros(len(g), np.int64),
        "call_t_begin": kt.l_begin.astype(np.int64),
        "call_t_end": kt.l_end.astype(np.int64),
        "t_start": kt.t_start,
        "t_end": kt.t_end,
        "dur_us": (kt.t_end - kt.t_start) / 1e3,
        "api_us": np.where(has, (kt.l_end - kt.l_begin) / 1e3, nan),
        "wait_us": wait,
        "lq_us": np.where(has, (kt.t_start - kt.l_begin) / 1e3, nan),
        "submit_us": submit,
        "queue_us": np.where(split, wait - submit, nan),
        "queued": kt.queued,
        "op": op,
        "top_op": top,
        "region": names[_region_of(trace, kt.anchor)],
        "count": np.asarray(COUNTS, dtype=object)[_count_class(trace, kt)],
    }
    return {k: np.asarray(v)[sel] for k, v in cols.items()}


def summary_by_name(cols: dict[str, Any]) -> list[dict[str, Any]]:
    """Per kernel name: kernels, total and mean duration, and the launch-and-queue
    time of its counted kernels; by total duration, longest first."""
    out: list[dict[str, Any]] = []
    names = cols["name"]
    if len(names) == 0:
        return out
    uniq, inv = np.unique(names.astype(str), return_inverse=True)
    counted = cols["count"] == "counted"
    for i, name in enumerate(uniq.tolist()):
        rows = inv == i
        dur = cols["dur_us"][rows]
        lq = cols["lq_us"][rows & counted]
        out.append(
            {
                "name": name,
                "kernels": int(rows.sum()),
                "counted": int((rows & counted).sum()),
                "total_us": float(dur.sum()),
                "mean_us": float(dur.mean()),
                "mean_lq_us": float(lq.mean()) if len(lq) else float("nan"),
                "ranks": len(np.unique(cols["rank"][rows])),
            }
        )
    out.sort(key=lambda r: (-r["total_us"], r["name"]))
    return out
