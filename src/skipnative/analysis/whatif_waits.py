"""What-if replay, cross-stream waits: which GPU row waits for which.

A ``cudaStreamWaitEvent`` call makes the work launched on its stream after it
wait for the work launched on another stream before the ``cudaEventRecord``
call it names (``Trace.waits``, from Kineto's cuda_sync "Stream Wait Event").
In rows: the first row launched on the waiting stream after the wait call
cannot start before the last row launched on the other stream before the
record call has ended. The replay keeps that order however the change moves
either side; the rows launched after it follow through their stream's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skipnative.analysis.kernels import join_by_correlation


@dataclass
class WaitEdges:
    """Per waiting GPU row, the rows it waits for and its measured lag after each
    one's end; ``waited``: rows whose start the wait decided (the row waited for
    was still running when the waiting row's launch call returned)."""

    after: dict[int, list[tuple[int, int]]]
    waited: np.ndarray


def wait_edges(t, has: np.ndarray, launch_begin: np.ndarray, launch_end: np.ndarray) -> WaitEdges:
    """The edges of `t.waits` between `t.gpu` rows. `has`: rows with a launch call;
    `launch_begin`, `launch_end`: its begin and end as measured (for a row without
    one, its start). A wait whose calls or rows the trace lacks, or whose rows
    ran in an order the wait forbids (the trace read otherwise than it ran), is
    left out."""
    g, ln, w = t.gpu, t.launches, t.waits
    after: dict[int, list[tuple[int, int]]] = {}
    waited = np.zeros(len(g), dtype=bool)
    if len(w) == 0 or len(g) == 0:
        return WaitEdges(after, waited)
    wi = join_by_correlation(ln["correlation"], w["correlation"])
    ri = join_by_correlation(ln["correlation"], w["record_correlation"])
    by_stream = _rows_by_stream(g, launch_begin)
    for k in np.flatnonzero((wi >= 0) & (ri >= 0)).tolist():
        dev = int(w["device"][k])
        waiting = by_stream.get((dev, int(w["stream"][k])))
        recorded = by_stream.get((dev, int(w["on_stream"][k])))
        if waiting is None or recorded is None:
            continue
        # the first row launched on the waiting stream after the wait call
        rows, begins, _ = waiting
        j = int(np.searchsorted(begins, ln["t_begin"][wi[k]], side="right"))
        if j == len(rows):
            continue
        d = int(rows[j])
        # the stream-order last of the rows launched on the other one before the record
        _, begins_a, last = recorded
        i = int(np.searchsorted(begins_a, ln["t_begin"][ri[k]], side="left"))
        if i == 0:
            continue
        a = int(last[i - 1])
        lag = int(g["t_start"][d] - g["t_end"][a])
        if lag < 0 or a == d:
            continue
        after.setdefault(d, []).append((a, lag))
        if has[d] and g["t_end"][a] > launch_end[d]:
            waited[d] = True
    return WaitEdges(after, waited)


def _rows_by_stream(g: np.ndarray, launch_begin: np.ndarray):
    """Per (device, stream): its rows in launch order, their launch begins, and for
    each prefix the row that ended last."""
    out = {}
    order = np.lexsort((g["t_start"], launch_begin, g["stream"], g["device"]))
    dev, stream = g["device"][order], g["stream"][order]
    cut = np.flatnonzero((dev[1:] != dev[:-1]) | (stream[1:] != stream[:-1])) + 1
    for rows in np.split(order, cut):
        ends = g["t_end"][rows]
        run = np.maximum.accumulate(ends)
        # the row holding each prefix's latest end: the last position where the
        # running maximum rose to that value
        pos = np.arange(len(rows))
        at = np.maximum.accumulate(np.where(ends == run, pos, 0))
        key = (int(g["device"][rows[0]]), int(g["stream"][rows[0]]))
        out[key] = (rows, launch_begin[rows], rows[at])
    return out
