"""What-if replay, its CPU side: the predicted Trace from replayed call and GPU
times, with ops and region bounds moved with the replayed calls around them,
each kept within its step (steps are the replay's barriers)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from skipnative.analysis.kernels import take
from skipnative.trace import Trace


def _anchored(times, ev_old, ev_new, scale):
    """CPU times (ops, region bounds) moved with the replayed calls around them: from
    the last call begin or end at or before each time, as measured, the host work in
    between scaled, t' = new(event) + (t - old(event)) * scale, but not past the next
    event; before the first event, back from it. ``ev_old`` sorted, ``ev_new`` its
    replayed times."""
    t = np.asarray(times, dtype=np.int64)
    if len(ev_old) == 0:
        return t.copy()
    idx = np.searchsorted(ev_old, t, side="right") - 1
    i = np.maximum(idx, 0)
    after = ev_new[i] + ((t - ev_old[i]) * scale).astype(np.int64)
    before = ev_new[0] - ((ev_old[0] - t) * scale).astype(np.int64)
    out = np.where(idx >= 0, after, before)
    nxt = np.minimum(idx + 1, len(ev_old) - 1)
    return np.where(idx + 1 < len(ev_old), np.minimum(out, ev_new[nxt]), out)


def _events(old_b, old_e, new_b, new_e, sel) -> tuple[np.ndarray, np.ndarray]:
    """The begins and ends of the calls in `sel`: sorted measured times, replayed times."""
    old, new = np.r_[old_b[sel], old_e[sel]], np.r_[new_b[sel], new_e[sel]]
    o = np.argsort(old, kind="stable")
    return old[o].astype(np.int64), new[o].astype(np.int64)


def step_bounds(t: Trace) -> np.ndarray:
    """Sorted begins and ends of the step and marker regions: the replay's barriers."""
    it = t.iterations
    return np.unique(np.concatenate([it["t_begin"], it["t_end"]]).astype(np.int64))


def _map_bounds(bounds, old_b, new_b, est):
    """The replayed times of the step bounds: the estimate `est`, moved where needed so
    that every call begins on the same side of each bound as measured (the replay's
    barriers make that possible), never decreasing."""
    out = np.asarray(est, dtype=np.int64).copy()
    if len(old_b):
        o = np.argsort(old_b, kind="stable")
        ob, nb = old_b[o].astype(np.int64), new_b[o].astype(np.int64)
        k = np.searchsorted(ob, bounds, side="left")  # calls [0, k) begin before
        pre = np.maximum.accumulate(nb)
        suf = np.minimum.accumulate(nb[::-1])[::-1]
        lo = np.where(k > 0, pre[np.maximum(k - 1, 0)] + 1, out)
        hi = np.where(k < len(ob), suf[np.minimum(k, len(ob) - 1)], out)
        out = np.minimum(np.maximum(out, lo), np.maximum(hi, lo))
    return np.maximum.accumulate(out)


def _into_steps(old, new, bounds, new_bounds):
    """Replayed CPU times kept in the step their measured time lies in; a step bound
    itself where the barriers placed it."""
    if len(bounds) == 0:
        return new
    seg = np.searchsorted(bounds, old, side="right")
    at = np.maximum(seg - 1, 0)
    lo = np.where(seg > 0, new_bounds[at], new)
    hi = np.where(seg < len(bounds), new_bounds[np.minimum(seg, len(bounds) - 1)] - 1, new)
    out = np.minimum(np.maximum(new, lo), np.maximum(hi, lo))
    return np.where((seg > 0) & (bounds[at] == old), new_bounds[at], out)


def predicted_trace(t: Trace, gl, removed, times, change: dict[str, Any]) -> Trace:
    """The predicted Trace: replayed call and GPU times; ops and regions moved with
    the calls of their thread."""
    new_b, new_e, new_s, new_end = times
    ln, g = t.launches, t.gpu
    out_l = ln.copy()
    out_l["t_begin"], out_l["t_end"] = new_b, new_e
    out_g = g.copy()
    out_g["t_start"], out_g["t_end"] = new_s, new_end
    out_g["t_queued"] = 0
    out_g["t_submitted"] = 0
    if change["graphs"]:  # kernels now belong to their region's graph launch
        out_g["correlation"] = np.where(
            gl >= 0, take(ln["correlation"], gl, 0), out_g["correlation"]
        )
    scale = change["cpu_scale"]
    old_b, old_e = ln["t_begin"], ln["t_end"]
    ev_all = _events(old_b, old_e, new_b, new_e, slice(None))
    bounds = step_bounds(t)
    new_bounds = _map_bounds(bounds, old_b, new_b, _anchored(bounds, *ev_all, scale))

    def move(times, tid, pid):
        """With the calls of their thread (all, where it made none), in their step."""
        times = np.asarray(times, dtype=np.int64)
        out = times.copy()
        for p, th in set(zip(pid.tolist(), tid.tolist())):
            sel = (pid == p) & (tid == th)
            own = (ln["pid"] == p) & (ln["tid"] == th)
            ev = _events(old_b, old_e, new_b, new_e, own) if own.any() else ev_all
            out[sel] = _anchored(times[sel], *ev, scale)
        return _into_steps(times, out, bounds, new_bounds)

    ops = t.ops.copy()
    if len(ops):
        ops["t_begin"] = move(ops["t_begin"], ops["tid"], ops["pid"])
        ops["t_end"] = np.maximum(ops["t_begin"], move(ops["t_end"], ops["tid"], ops["pid"]))
    regions = t.regions.copy()
    if len(regions):  # a region's thread is not recorded: with the calls of any thread
        for col in ("t_begin", "t_end"):
            old = regions[col].astype(np.int64)
            regions[col] = _into_steps(old, _anchored(old, *ev_all, scale), bounds, new_bounds)
        regions["t_end"] = np.maximum(regions["t_begin"], regions["t_end"])
    meta = {**t.meta, "whatif": change}
    return replace(t, launches=out_l[~removed], gpu=out_g, ops=ops, regions=regions, meta=meta)
