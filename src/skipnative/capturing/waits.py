"""A native capture's cross-stream waits (capture option ``stream_waits``): CUPTI's
event records and synchronisation records joined into ``Trace.waits``.

Each ``cudaStreamWaitEvent`` and ``cudaEventSynchronize`` is joined to the
``cudaEventRecord`` it waits on: by CUPTI's ``cudaEventSyncId`` (CUPTI 12.8 and
newer, exact), else as CUDA defines the wait, the latest record of the same
event (context and event id) made before it, in call (correlation id) order.
That second join needs every record: where the capture lost records, it is not
made (the wait is left out rather than joined to an older record).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from skipnative.trace import HOST_WAITS, WAIT_DTYPE

_NO_DEVICE = 0xFFFFFFFF


def waits_from_events(events: np.ndarray, gpu: np.ndarray, *, lossy: bool = False) -> np.ndarray:
    """`events`: the session's event rows (kind 0: a record, 1: a stream's wait,
    2: a cudaStreamSynchronize, 3: a cudaEventSynchronize); `gpu`: the trace's
    GPU rows, for the devices of streams; `lossy`: the capture lost records. A
    stream's wait has its stream's device, a thread's the awaited stream's. Waits
    with no record to join are left out (one made before the capture began): an
    event sync then waits for all the GPU, as any sync call is taken to; a
    stream sync waits for its stream's work before the call itself
    (trace.HOST_WAITS), so it needs no record."""
    return np.concatenate([_record_waits(events, gpu, lossy), _stream_syncs(events, gpu)])


def _stream_syncs(events: np.ndarray, gpu: np.ndarray) -> np.ndarray:
    sy = events[events["kind"] == 2]
    out = np.zeros(len(sy), dtype=WAIT_DTYPE)
    stream_device = _stream_devices(gpu)
    out["correlation"] = out["record_correlation"] = sy["correlation"]
    out["stream"] = HOST_WAITS
    out["on_stream"] = sy["stream"]
    out["device"] = [stream_device.get(int(s), 0) for s in sy["stream"].tolist()]
    return out


def _record_waits(events: np.ndarray, gpu: np.ndarray, lossy: bool) -> np.ndarray:
    rec = events[events["kind"] == 0]
    wt = events[(events["kind"] == 1) | (events["kind"] == 3)]
    out = np.zeros(len(wt), dtype=WAIT_DTYPE)
    if len(wt) == 0:
        return out
    by_sync = {int(s): i for i, s in enumerate(rec["sync_id"].tolist()) if s}
    latest = _LatestRecord(rec)
    stream_device = _stream_devices(gpu)
    keep = np.zeros(len(wt), dtype=bool)
    cols = ("sync_id", "correlation", "context", "stream", "event_id", "kind")
    for k, (sync_id, corr, ctx, stream, event_id, kind) in enumerate(
        zip(*(wt[c].astype(np.int64).tolist() for c in cols))
    ):
        if sync_id:
            i = by_sync.get(sync_id)
        else:
            i = None if lossy else latest.before(ctx, event_id, corr)
        if i is None:
            continue
        r = rec[i]
        if kind == 3:  # the calling thread waits (CUPTI names no stream)
            stream = HOST_WAITS
        device = stream_device.get(stream, int(r["device"]))
        if device == _NO_DEVICE:
            device = stream_device.get(int(r["stream"]), 0)
        out[k] = (corr, int(r["correlation"]), device, stream, int(r["stream"]))
        keep[k] = True
    return out[keep]


class _LatestRecord:
    """Per (context, event id), its records in correlation order, for the latest
    one before a correlation id (a binary search)."""

    def __init__(self, rec: np.ndarray):
        order = np.lexsort((rec["correlation"], rec["event_id"], rec["context"]))
        self.rows = order
        self.corr = rec["correlation"][order].astype(np.int64)
        keys = rec["context"][order].astype(np.int64) << 32 | rec["event_id"][order]
        self._first: dict[int, tuple[int, int]] = {}
        if len(keys):
            cut = np.flatnonzero(np.diff(keys)) + 1
            starts, ends = np.r_[0, cut], np.r_[cut, len(keys)]
            self._first = {int(keys[a]): (int(a), int(b)) for a, b in zip(starts, ends)}

    def before(self, context: int, event_id: int, corr: int) -> int | None:
        span = self._first.get(context << 32 | event_id)
        if span is None:
            return None
        a, b = span
        j = a + int(np.searchsorted(self.corr[a:b], corr, side="left")) - 1
        return int(self.rows[j]) if j >= a else None


def _stream_devices(gpu: np.ndarray) -> dict[int, int]:
    """Stream id -> its device, where the GPU rows put the id on one device only."""
    pairs = {(int(s), int(d)) for s, d in zip(gpu["stream"].tolist(), gpu["device"].tolist())}
    seen: dict[int, int] = {}
    shared = set()
    for s, d in pairs:
        if s in seen and seen[s] != d:
            shared.add(s)
        seen[s] = d
    return {s: d for s, d in seen.items() if s not in shared}


def lost_any(meta: dict[str, Any]) -> bool:
    """Whether the capture lost records an event row could be among (GPU records
    delivered unfinished are kernels and copies)."""
    dropped = meta.get("dropped")
    return isinstance(dropped, dict) and any(
        v for k, v in dropped.items() if k != "incomplete" and isinstance(v, int)
    )
