"""A native capture's cross-stream waits (capture option ``stream_waits``): CUPTI's
event records and stream-wait records joined into ``Trace.waits``.

Each ``cudaStreamWaitEvent`` is joined to the ``cudaEventRecord`` it waits on: by
CUPTI's ``cudaEventSyncId`` (CUPTI 12.8 and newer, exact), else as CUDA does,
the latest record of the same event (context and event id) made before the wait.
"""

from __future__ import annotations

import numpy as np

from skipnative.trace import WAIT_DTYPE

_NO_DEVICE = 0xFFFFFFFF


def waits_from_events(events: np.ndarray, gpu: np.ndarray) -> np.ndarray:
    """`events`: the session's event rows (kind 0: a record, 1: a stream's wait);
    `gpu`: the trace's GPU rows, for a device CUPTI did not give. Waits with no
    record to join are left out (one made before the capture began)."""
    rec = events[events["kind"] == 0]
    wt = events[events["kind"] == 1]
    out = np.zeros(len(wt), dtype=WAIT_DTYPE)
    if len(wt) == 0:
        return out
    by_sync = {int(s): i for i, s in enumerate(rec["sync_id"].tolist()) if s}
    # per (context, event): its records in correlation (call) order
    by_event: dict[tuple[int, int], list[int]] = {}
    for i in np.argsort(rec["correlation"], kind="stable").tolist():
        by_event.setdefault((int(rec["context"][i]), int(rec["event_id"][i])), []).append(i)
    stream_device = _stream_devices(gpu)
    keep = np.zeros(len(wt), dtype=bool)
    for k in range(len(wt)):
        w = wt[k]
        i = by_sync.get(int(w["sync_id"])) if w["sync_id"] else None
        if i is None and not w["sync_id"]:
            i = _latest_before(rec, by_event.get((int(w["context"]), int(w["event_id"]))), w)
        if i is None:
            continue
        r = rec[i]
        device = int(r["device"])
        if device == _NO_DEVICE:
            device = stream_device.get(int(r["stream"]), stream_device.get(int(w["stream"]), 0))
        out[k] = (
            int(w["correlation"]),
            int(r["correlation"]),
            device,
            int(w["stream"]),
            int(r["stream"]),
        )
        keep[k] = True
    return out[keep]


def _latest_before(rec: np.ndarray, rows: list[int] | None, w) -> int | None:
    """Of the records `rows` (in call order), the last made before the wait `w`."""
    best = None
    for i in rows or ():
        if int(rec["correlation"][i]) >= int(w["correlation"]):
            break
        best = i
    return best


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
