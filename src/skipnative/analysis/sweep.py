"""Sweep metrics (SPEC.md §4): a series of runs over a sweep value (batch size).

- TKLQT knee (the paper's method): the smallest value b with
  tklqt(b) >= (1 + tau) * tklqt(b_min) that stays at or above that level for
  every larger value.
- Queue transition: the smallest value from which every run is GPU-bound by
  queued fraction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skipnative.analysis.metrics import GPU_BOUND_THRESHOLD, bound_of

TAU = 0.5


def tklqt_knee(values, tklqt, tau: float = TAU):
    """The knee, or None when TKLQT never leaves the CPU-bound plateau."""
    order = np.argsort(values, kind="stable")
    xs = np.asarray(values)[order]
    ys = np.asarray(tklqt, dtype=float)[order]
    if len(xs) == 0:
        return None
    level = (1 + tau) * ys[0]
    above = ys >= level
    # smallest index from which every later value is above the level
    for i in range(1, len(xs)):
        if above[i:].all():
            return xs[i].item()
    return None


def queue_transition(values, queued_fraction, threshold: float = GPU_BOUND_THRESHOLD):
    order = np.argsort(values, kind="stable")
    xs = np.asarray(values)[order]
    gpu = np.asarray(queued_fraction, dtype=float)[order] >= threshold
    for i in range(len(xs)):
        if gpu[i:].all():
            return xs[i].item()
    return None


def run_summary(trace, rows=None) -> dict[str, Any]:
    """Mean metrics per iteration of a run: over its step regions (every region but
    "all") that launched a kernel, on one device. `rows`: the trace's metrics, if
    computed already.

    - An empty step (n_kernels 0, such as a last ProfilerStep that only closed the
      profile) is left out of the mean and counted as "empty_iterations"; it would
      scale every mean down.
    - A trace with kernels on several devices is summarised on the device that ran
      the most kernels in its steps (the lowest id on a tie), named as "device":
      a mean over rows of different devices describes none of them.
    - Without a kernel in any step (or without steps), the whole capture ("all")
      on its busiest device, with "iterations" 0.
    """
    rows = rows if rows is not None else trace.metrics(top=0)
    steps = [r for r in rows if r.name != "all"]
    full = [r for r in steps if r.metrics.get("n_kernels", 0) > 0]
    use = _busiest(full) or _busiest([r for r in rows if r.name == "all"]) or rows[:1]
    keys = [
        k
        for k, v in use[0].metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    out: dict[str, Any] = {k: float(np.mean([r.metrics[k] for r in use])) for k in keys}
    out["bound"] = bound_of(out["queued_fraction"], out["n_counted_kernels"])
    out["iterations"] = len(use) if full else 0
    out["empty_iterations"] = len(steps) - len(full)
    out["device"] = int(use[0].device)
    return out


def _busiest(rows: list) -> list:
    """The rows of the device with the most kernels among `rows` (lowest id on a tie)."""
    if not rows:
        return []
    kernels: dict[int, float] = {}
    for r in rows:
        kernels[r.device] = kernels.get(r.device, 0) + r.metrics.get("n_kernels", 0)
    device = min(kernels, key=lambda d: (-kernels[d], d))
    return [r for r in rows if r.device == device]


def series(summaries: list[dict[str, Any]], values: list[int], tau: float = TAU) -> dict:
    tk = [s["tklqt_us"] for s in summaries]
    qf = [s["queued_fraction"] for s in summaries]
    knee = tklqt_knee(values, tk, tau)
    trans = queue_transition(values, qf)
    return {
        "values": values,
        "tklqt_us": tk,
        "il_us": [s["il_us"] for s in summaries],
        "queued_fraction": qf,
        "knee": knee,
        "queue_transition": trans,
        "agree": knee == trans,
    }
