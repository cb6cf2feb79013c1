"""What-if replay, cross-stream waits: which GPU row waits for which.

A ``cudaStreamWaitEvent`` call makes the work launched on its stream after it
wait for the work launched on another stream before the ``cudaEventRecord``
call it names (``Trace.waits``, from Kineto's cuda_sync "Stream Wait Event").
In rows: the first row launched on the waiting stream after the wait call
cannot start before the last row launched on the other stream before the
record call has ended. The replay keeps that order however the change moves
either side; the rows launched after it follow through their stream's order.

A ``cudaStreamSynchronize`` (Kineto's "Stream Sync") makes its thread wait for
one stream (``host_waits``): the replay returns it after that stream's work,
not all the GPU's; a ``cudaEventSynchronize`` ("Event Sync"), after the work
on the record's stream that the replay placed before the ``cudaEventRecord``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skipnative.analysis.kernels import join_by_correlation, take
from skipnative.trace import _VARIANT, HOST_WAITS

_WAIT_CALLS = ("cudaStreamWaitEvent", "cuStreamWaitEvent", "hipStreamWaitEvent")


@dataclass
class WaitEdges:
    """Per waiting GPU row, the rows it waits for, each with the lag the replay keeps
    after that row's end: the measured one where the wait decided the start, else
    0; ``waited``: rows whose start a wait decided (the row waited for was still
    running when the waiting row's launch call returned)."""

    after: dict[int, list[tuple[int, int]]]
    waited: np.ndarray

    def remapped(self, row_map: np.ndarray, merged: np.ndarray, n: int) -> WaitEdges:
        """The edges between the rows of a changed trace, where GPU row r became row
        row_map[r] (of n); a `merged` row (a fused chain's later kernel, now part of
        its first) hands its waits to the row it joined, with no lag and not as the
        start it decided."""
        after: dict[int, list[tuple[int, int]]] = {}
        for d, edges in self.after.items():
            nd = int(row_map[d])
            for a, lag in edges:
                na = int(row_map[a])
                if na != nd:
                    after.setdefault(nd, []).append((na, 0 if merged[d] else lag))
        waited = np.zeros(n, dtype=bool)
        waited[row_map[self.waited & ~merged]] = True
        return WaitEdges(after, waited)


def unknown_waits(t) -> tuple[int, int]:
    """Of the trace's cudaStreamWaitEvent calls (first), those for which `t.waits`
    does not say what they wait for (a Kineto trace without cuda_sync events, a
    native capture without stream_waits): the replay cannot hold their stream's
    later work back for the other stream's, so a change that delays that work
    lets it run early. (the unknown ones, all of them)"""
    ln = t.launches
    if len(ln) == 0:
        return 0, 0
    ids = np.unique(ln["name_id"])
    waiting = [i for i, n in zip(ids.tolist(), t.name(ids)) if _VARIANT.sub("", n) in _WAIT_CALLS]
    calls = np.isin(ln["name_id"], waiting)
    w = t.waits[t.waits["stream"] != HOST_WAITS]
    w = w[np.isin(w["record_correlation"], ln["correlation"])]  # whose record it holds
    known = np.isin(ln["correlation"], w["correlation"])
    return int((calls & ~known).sum()), int(calls.sum())


def wait_edges(t) -> WaitEdges:
    """The edges of `t.waits` between `t.gpu` rows, as measured. A wait is left out
    where the trace lacks its calls or rows, where its record call began after
    it (the trace contradicts itself), or where its rows ran in an order the wait
    forbids. Each stream is looked for on the wait's device, else on the one device
    that has a stream of that id (a wait across devices: which of the two devices
    a trace names differs between writers)."""
    g, ln, w = t.gpu, t.launches, t.waits
    after: dict[int, list[tuple[int, int]]] = {}
    waited = np.zeros(len(g), dtype=bool)
    if len(w) == 0 or len(g) == 0:
        return WaitEdges(after, waited)
    gl = join_by_correlation(ln["correlation"], g["correlation"])
    has = gl >= 0
    launch_begin = np.where(has, take(ln["t_begin"], gl, 0), g["t_start"])
    launch_end = np.where(has, take(ln["t_end"], gl, 0), g["t_start"])
    wi = join_by_correlation(ln["correlation"], w["correlation"])
    ri = join_by_correlation(ln["correlation"], w["record_correlation"])
    wi[w["stream"] == HOST_WAITS] = -1  # a thread's wait: host_waits
    # a row without a launch call keeps its measured times: it can wait for nothing
    waiting_rows = _rows_by_stream(g, launch_begin, has)
    awaited_rows = _rows_by_stream(g, launch_begin, np.ones(len(g), dtype=bool))
    for k in np.flatnonzero((wi >= 0) & (ri >= 0)).tolist():
        t_wait, t_record = int(ln["t_begin"][wi[k]]), int(ln["t_begin"][ri[k]])
        if t_record > t_wait:
            continue
        dev = int(w["device"][k])
        waiting = _stream_rows(waiting_rows, dev, int(w["stream"][k]))
        recorded = _stream_rows(awaited_rows, dev, int(w["on_stream"][k]))
        if waiting is None or recorded is None:
            continue
        # the first row launched on the waiting stream after the wait call
        rows, begins, _ = waiting
        j = int(np.searchsorted(begins, t_wait, side="right"))
        if j == len(rows):
            continue
        d = int(rows[j])
        # the stream-order last of the rows launched on the other one before the record
        _, begins_a, last = recorded
        i = int(np.searchsorted(begins_a, t_record, side="left"))
        if i == 0:
            continue
        a = int(last[i - 1])
        lag = int(g["t_start"][d] - g["t_end"][a])
        if lag < 0 or a == d:
            continue
        decided = bool(g["t_end"][a] > launch_end[d])
        after.setdefault(d, []).append((a, lag if decided else 0))
        waited[d] |= decided
    return WaitEdges(after, waited)


def host_waits(t) -> dict[int, tuple[tuple[int, int], int, int, int]]:
    """Per synchronising call that waits for one stream's work (by correlation id,
    which no change of the replay renumbers), where the trace names that stream
    and has it: a ``cudaStreamSynchronize`` waits for the work launched on its
    stream before the call itself, a ``cudaEventSynchronize`` for the work
    launched on the record's stream before the ``cudaEventRecord`` call. Each
    gives the stream's (device, stream) key; the end of that work, as measured
    (-1 where there was none: the call waited for nothing, and is not taken to
    wait for all the GPU); the end of that work's rows that have no launch call,
    which keep their measured times in any replay (-1: none); and the
    correlation id of the call that closed the work (the sync itself, or the
    record). A call whose stream or record the trace lacks, or whose record
    began after it (the trace contradicts itself) or at the same instant on
    another thread, is left out: it waits for all."""
    g, ln, w = t.gpu, t.launches, t.waits
    out: dict[int, tuple[tuple[int, int], int, int, int]] = {}
    host = np.flatnonzero(w["stream"] == HOST_WAITS)
    if len(host) == 0:
        return out
    gl = join_by_correlation(ln["correlation"], g["correlation"])
    launch_begin = np.where(gl >= 0, take(ln["t_begin"], gl, 0), g["t_start"])
    by_stream = _rows_by_stream(g, launch_begin, np.ones(len(g), dtype=bool))
    fixed = _rows_by_stream(g, launch_begin, gl < 0)
    wi = join_by_correlation(ln["correlation"], w["correlation"][host])
    ri = join_by_correlation(ln["correlation"], w["record_correlation"][host])
    for k, i, r in zip(host.tolist(), wi.tolist(), ri.tolist()):
        key = _stream_key(by_stream, int(w["device"][k]), int(w["on_stream"][k]))
        if i < 0 or r < 0 or key is None or ln["t_begin"][r] > ln["t_begin"][i]:
            continue
        # a record begun at the sync's instant on another thread: which came first
        # is unknown (and the replay would take either order)
        other = (ln["pid"][r], ln["tid"][r]) != (ln["pid"][i], ln["tid"][i])
        if other and ln["t_begin"][r] == ln["t_begin"][i]:
            continue
        t_call = ln["t_begin"][r]
        ends = [-1, -1]
        for n, rows in enumerate((by_stream.get(key), fixed.get(key))):
            if rows is not None:
                j = int(np.searchsorted(rows[1], t_call, side="left"))
                ends[n] = int(g["t_end"][rows[2][j - 1]]) if j > 0 else -1
        out[int(ln["correlation"][i])] = (key, ends[0], ends[1], int(ln["correlation"][r]))
    return out


class HostWaits:
    """host_waits in the replay: each sync returns after the work it waits for as
    the replay placed it (`stream_done`: per stream, the replayed end of its work
    so far); an event sync, after its stream's work as at its record call."""

    def __init__(self, t):
        self.syncs = host_waits(t)
        self._records: dict[int, set[tuple[int, int]]] = {}  # record -> streams awaited
        for c, (key, _, _, rec) in self.syncs.items():
            if rec != c:
                self._records.setdefault(rec, set()).add(key)
        self._at_record: dict[tuple[int, tuple[int, int]], int] = {}

    def replayed(self, corr: int, stream_done: dict[tuple[int, int], int]) -> None:
        """Call `corr` is being replayed: where it is a record a sync waits on, the
        replayed end of the work before it."""
        for key in self._records.get(corr, ()):
            self._at_record[(corr, key)] = stream_done.get(key, -1)

    def waits(self, corr: int, stream_done: dict[tuple[int, int], int]) -> tuple[int, int] | None:
        """For sync call `corr`: the measured end of the work it waits for, and that
        work's replayed end (its rows without a launch call keep their measured
        times; -1: none placed yet); None: it waits for all the GPU. A record
        another thread has not replayed yet: the stream so far, the nearest the
        replay knows."""
        sync = self.syncs.get(corr)
        if sync is None:
            return None
        key, measured, fixed, record = sync
        placed = stream_done.get(key, -1)
        if record != corr:
            placed = self._at_record.get((record, key), placed)
        return measured, max(placed, fixed)


def _stream_key(by_stream: dict, dev: int, stream: int) -> tuple[int, int] | None:
    """Stream `stream` on device `dev`, else on the only device with a stream of
    that id (a wait across devices), else None."""
    if (dev, stream) in by_stream:
        return (dev, stream)
    others = [k for k in by_stream if k[1] == stream]
    return others[0] if len(others) == 1 else None


def _stream_rows(by_stream: dict, dev: int, stream: int):
    """The rows of _stream_key's stream, else None."""
    key = _stream_key(by_stream, dev, stream)
    return None if key is None else by_stream[key]


def _rows_by_stream(g: np.ndarray, launch_begin: np.ndarray, sel: np.ndarray):
    """Per (device, stream): its rows in `sel` in launch order, their launch begins,
    and for each prefix the row that ended last."""
    out: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    idx = np.flatnonzero(sel)
    order = idx[
        np.lexsort((g["t_start"][idx], launch_begin[idx], g["stream"][idx], g["device"][idx]))
    ]
    dev, stream = g["device"][order], g["stream"][order]
    cut = np.flatnonzero((dev[1:] != dev[:-1]) | (stream[1:] != stream[:-1])) + 1
    for rows in np.split(order, cut):
        if len(rows) == 0:
            continue
        ends = g["t_end"][rows]
        run = np.maximum.accumulate(ends)
        # the row holding each prefix's latest end: the last position where the
        # running maximum rose to that value
        at = np.maximum.accumulate(np.where(ends == run, np.arange(len(rows)), 0))
        key = (int(g["device"][rows[0]]), int(g["stream"][rows[0]]))
        out[key] = (rows, launch_begin[rows], rows[at])
    return out
