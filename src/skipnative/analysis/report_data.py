"""What the sweep report shows, computed from a sweep folder: per point the run
summary, launch-and-queue times, top kernels and op breakdown, the sweep series,
and what-if replays. skipnative.report only renders this; it computes nothing.
"""

from __future__ import annotations

import os
from typing import Any

from skipnative.analysis.kernels import in_regions, join_kernels
from skipnative.analysis.metrics import compute_metrics, top_kernels
from skipnative.analysis.sweep import run_summary, series
from skipnative.analysis.whatif import ReplayRangeError, replay
from skipnative.analysis.whatif_waits import unknown_waits
from skipnative.errors import TraceError
from skipnative.io import load
from skipnative.io.sweep import load_sweep
from skipnative.trace import losses

WHATIF_CPU = (2.0, 0.5)  # the report's default what-if: a CPU 2x slower, 2x faster


def _ops_per_iteration(point: dict[str, Any]) -> list[dict[str, Any]]:
    """A point's op breakdown per timed iteration (older sweeps summed the
    iterations)."""
    ops = point.get("ops") or []
    n = (point.get("native") or {}).get("iterations") or 1
    return [
        o
        if o.get("per_iteration")
        else {
            **o,
            "kernels": o["kernels"] / n,
            "kernel_us": o["kernel_us"] / n,
            "lq_us": o["lq_us"] / n,
        }
        for o in ops
    ]


def sweep_data(
    folder: str, whatif_cpu: tuple[float, ...] = WHATIF_CPU, whatif_graphs: bool = True
) -> dict[str, Any]:
    """Everything the report shows, computed from the folder's .skip files (and the
    Kineto summaries and op breakdowns that sweep.json carries, where present).
    With `whatif_cpu` scales and `whatif_graphs`, each point is also replayed
    (skipnative.analysis.whatif) for a slower or faster CPU and with CUDA graphs."""
    sw = load_sweep(folder)
    if not sw.files:
        raise TraceError(
            os.path.join(folder, "sweep.json"), "the sweep has no points: nothing to report"
        )
    native, lq, tops, lost = [], [], [], []
    unknown = [0, 0]  # cudaStreamWaitEvent calls the replay cannot keep, of all
    scenarios: dict[str, dict[str, Any]] = {f"{s:g}": {"cpu_scale": s} for s in whatif_cpu}
    if whatif_graphs:
        scenarios["graphs"] = {"graphs": True}
    predicted: dict[str, list[dict[str, Any]]] = {k: [] for k in scenarios}
    for f in sw.files:
        t = load(f)
        kt = join_kernels(t)
        rows = compute_metrics(t, top=0, kt=kt)
        native.append(run_summary(t, rows))
        lost.append(losses(t.meta))
        # the timed iterations only (a profile's capture also holds its warm-up)
        timed = in_regions(t, kt)
        lq.append(((kt.t_start - kt.l_begin)[kt.counted & timed] / 1e3).tolist())
        n_iter = max(len(t.iterations), 1)
        tops.append(
            [
                {**r, "count": r["count"] / n_iter, "total_us": r["total_us"] / n_iter}
                for r in top_kernels(t, kt, timed, 8)
            ]
        )
        if scenarios:
            unknown = [a + b for a, b in zip(unknown, unknown_waits(t))]
        for key, change in scenarios.items():
            try:
                predicted[key].append(run_summary(replay(t, **change)))
            except ReplayRangeError as e:  # a change this point's times cannot hold
                raise TraceError(f, str(e)) from None
    points = sw.info.get("points", [])
    kineto = [p.get("kineto") for p in points]
    data: dict[str, Any] = {
        "folder": folder,
        "card": sw.card,
        "phase": sw.phase,
        "seq_len": sw.info.get("seq_len"),
        "script": sw.info.get("script"),
        "values": sw.values,
        "losses": lost,
        "native": native,
        "native_series": series(native, sw.values),
        "kineto": kineto if all(kineto) else None,
        "lq_us": lq,
        "top_kernels": tops,
        "ops": [_ops_per_iteration(p) for p in points],
        "match_rate": [p.get("match_rate") for p in points],
        "fidelity": [p.get("fidelity") for p in points],
        "failed": sw.info.get("failed"),
        "graphs": bool(sw.info.get("graphs")),
        "whatif": {k: series(v, sw.values) for k, v in predicted.items()},
        "unknown_waits": unknown,
    }
    if data["kineto"]:
        data["kineto_series"] = series(data["kineto"], sw.values)
    return data
