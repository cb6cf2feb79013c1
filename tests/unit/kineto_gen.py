"""Small generated torch.profiler traces, one rule of SPEC.md at a time."""

from __future__ import annotations

import gzip
import json

PID = 100


def launch(ts, dur, corr, name="cudaLaunchKernel", tid=1):
    cat = "cuda_driver" if name.startswith("cu") and not name.startswith("cuda") else "cuda_runtime"
    return {
        "ph": "X",
        "cat": cat,
        "name": name,
        "pid": PID,
        "tid": tid,
        "ts": ts,
        "dur": dur,
        "args": {"correlation": corr},
    }


def kernel(ts, dur, corr, name="k", stream=7, device=0):
    return {
        "ph": "X",
        "cat": "kernel",
        "name": name,
        "pid": device,
        "tid": stream,
        "ts": ts,
        "dur": dur,
        "args": {
            "correlation": corr,
            "device": device,
            "stream": stream,
            "grid": [1, 1, 1],
            "block": [32, 1, 1],
        },
    }


def op(ts, dur, name="aten::mm", tid=1):
    return {"ph": "X", "cat": "cpu_op", "name": name, "pid": PID, "tid": tid, "ts": ts, "dur": dur}


def step(ts, dur, n):
    return {
        "ph": "X",
        "cat": "user_annotation",
        "name": f"ProfilerStep#{n}",
        "pid": PID,
        "tid": 1,
        "ts": ts,
        "dur": dur,
    }


def write(path, events, gz=False, **top):
    doc = {"schemaVersion": 1, "traceEvents": events, **top}
    data = json.dumps(doc).encode()
    if gz:
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def stream_wait(ts, corr, record_corr, stream, on_stream, device=0):
    """Kineto's record of a cudaStreamWaitEvent call `corr`: `stream` waits for the
    work on `on_stream` before the cudaEventRecord call `record_corr`."""
    return {
        "ph": "X",
        "cat": "cuda_sync",
        "name": "Stream Wait Event",
        "pid": device,
        "tid": stream,
        "ts": ts,
        "dur": 0,
        "args": {
            "correlation": corr,
            "device": device,
            "stream": stream,
            "wait_on_stream": on_stream,
            "wait_on_cuda_event_record_corr_id": record_corr,
        },
    }


def stream_sync(ts, corr, stream, device=0, name="Stream Sync"):
    """Kineto's record of a cudaStreamSynchronize call `corr` on `stream` ("Context
    Sync" for a cudaDeviceSynchronize, on no stream)."""
    return {
        "ph": "X",
        "cat": "cuda_sync",
        "name": name,
        "pid": device,
        "tid": stream,
        "ts": ts,
        "dur": 0,
        "args": {"correlation": corr, "device": device, "stream": stream},
    }


def event_sync(ts, corr, record_corr, on_stream, device=0):
    """Kineto's record of a cudaEventSynchronize call `corr`: the calling thread waits
    for the work on `on_stream` before the cudaEventRecord call `record_corr` (CUPTI
    names no stream for it: Kineto writes the invalid id as -1)."""
    return {
        "ph": "X",
        "cat": "cuda_sync",
        "name": "Event Sync",
        "pid": device,
        "tid": -1,
        "ts": ts,
        "dur": 0,
        "args": {
            "cuda_sync_kind": "Event Sync",
            "correlation": corr,
            "device": device,
            "stream": -1,
            "wait_on_stream": on_stream,
            "wait_on_cuda_event_record_corr_id": record_corr,
            "wait_on_cuda_event_id": 1,
        },
    }
