"""torch.profiler (Kineto) chrome traces -> Trace.

The JSON is streamed through the native reader (csrc/kineto/trace_reader.cpp)
in chunks, decompressing gzip on the way (kineto_stream.py), so memory stays
near the size of the columns it keeps rather than the size of the file; here
the reader's columns become a Trace.
"""

from __future__ import annotations

import contextlib
import json
import os

import numpy as np

from skipnative.errors import TraceError
from skipnative.io.kineto_stream import read
from skipnative.io.perfetto import read_extras
from skipnative.trace import (
    GPU_DTYPE,
    LAUNCH_DTYPE,
    OP_DTYPE,
    REGION_DTYPE,
    REGION_KINDS,
    StringTable,
    Trace,
    call_kind,
)

MARKER, STEP, ANNOTATION = (REGION_KINDS.index(k) for k in ("marker", "step", "annotation"))


def record_dtypes() -> dict[str, np.dtype]:
    """The reader's row dtypes ("launch", "gpu", "op", "step"), defined once, on its
    C++ structs (csrc/kineto/trace_reader.h)."""
    global _DTYPES
    if _DTYPES is None:
        from skipnative import _native

        _DTYPES = dict(_native.kineto_record_dtypes())
    return _DTYPES


_DTYPES: dict[str, np.dtype] | None = None


def api_kind_by_name(names: list[str]) -> np.ndarray:
    """Kind (index into API_KINDS) of each name, by trace.CALL_KINDS: CUDA and HIP
    names alike, so a ROCm trace's hipLaunchKernel is a kernel launch."""
    return np.array([call_kind(s) for s in names], dtype=np.uint8)


def _region_kinds(names: list[str], name_id: np.ndarray) -> np.ndarray:
    """REGION_KINDS of CPU-side annotations: "step" for ProfilerStep#N (SPEC.md §1),
    "annotation" for other record_function / user_annotation ranges."""
    step = np.array([n.startswith("ProfilerStep#") for n in names], dtype=bool)
    return np.where(step[name_id], STEP, ANNOTATION).astype(np.uint8)


def _exported_native(top: dict[str, str]) -> bool:
    """A native capture written out by `skip export --perfetto`."""
    try:
        info = json.loads(top.get("skipnative", "null"))
    except ValueError:
        return False
    return isinstance(info, dict) and info.get("source") == "skipnative"


def load_kineto(path: str, reader=None) -> Trace:
    """The trace at `path`; `reader`: the native reader already fed that file
    (kineto_stream.read or a Prefetch's result), else it is read now."""
    reader = reader if reader is not None else read(path)
    trace = _to_trace(path, reader)
    with contextlib.suppress(OSError):
        st = os.stat(path)
        shape = [len(trace.launches), len(trace.gpu), len(trace.ops), len(trace.regions)]
        trace.origin = {
            "path": os.path.abspath(path),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "shape": shape,
        }
    return trace


def _meta(path: str, top: dict[str, str]) -> dict:
    meta: dict = {"source": "kineto", "time_unit": "ns", "clock_domain": "unix"}
    devices = []
    for key in (
        "deviceProperties",
        "schemaVersion",
        "distributedInfo",
        "traceName",
        "baseTimeNanoseconds",
        "displayTimeUnit",
    ):
        if key in top:
            try:
                value = json.loads(top[key])
            except ValueError:
                continue
            if key == "deviceProperties" and isinstance(value, list):
                for d in value:
                    if isinstance(d, dict):
                        devices.append({"id": d.get("id"), "name": d.get("name")})
            else:
                meta[key] = value
    meta["devices"] = devices
    return meta


def _check_base(path: str, base: int, reader) -> None:
    """The reader checked ts + dur; with baseTimeNanoseconds added they must still
    fit 64-bit nanoseconds (SPEC.md §3), never wrap in numpy."""
    if not base:
        return
    lo, hi = 0, 0
    for table, dtype in (
        (reader.launches(), record_dtypes()["launch"]),
        (reader.gpu(), record_dtypes()["gpu"]),
        (reader.ops(), record_dtypes()["op"]),
        (reader.steps(), record_dtypes()["step"]),
    ):
        rows = table.view(dtype)
        if len(rows):
            lo = min(lo, int(rows["ts"].min()))
            hi = max(hi, int((rows["ts"] + rows["dur"]).max()))
    if not (lo + base >= -(2**63) and hi + base < 2**63):
        raise TraceError(path, "baseTimeNanoseconds + ts does not fit 64-bit nanoseconds")


def _regions_from(rows: list, strings: StringTable) -> np.ndarray:
    """Regions an export listed ([t_begin, t_end, name, kind]), in begin order."""
    ok = [
        r
        for r in rows
        if isinstance(r, list) and len(r) == 4 and isinstance(r[0], int) and isinstance(r[1], int)
    ]
    out = np.zeros(len(ok), dtype=REGION_DTYPE)
    for i, (t0, t1, name, kind) in enumerate(ok):
        out[i] = (
            t0,
            t1,
            strings.intern(str(name)),
            REGION_KINDS.index(kind) if kind in REGION_KINDS else 0,
        )
    return out[np.argsort(out["t_begin"], kind="stable")]


def _to_trace(path: str, reader) -> Trace:
    strings = StringTable([b.decode("utf-8", "replace") for b in reader.strings()])
    meta = _meta(path, dict(reader.top_level))
    base = meta.get("baseTimeNanoseconds")
    base = int(base) if isinstance(base, int) and not isinstance(base, bool) else 0
    _check_base(path, base, reader)

    kl = reader.launches().view(record_dtypes()["launch"])
    launches = np.zeros(len(kl), dtype=LAUNCH_DTYPE)
    launches["t_begin"] = kl["ts"] + base
    launches["t_end"] = kl["ts"] + kl["dur"] + base
    for f in ("correlation", "pid", "tid", "name_id", "cbid"):
        launches[f] = kl[f]
    if len(kl):
        launches["kind"] = api_kind_by_name(strings.strings)[kl["name_id"]]

    kg = reader.gpu().view(record_dtypes()["gpu"])
    gpu = np.zeros(len(kg), dtype=GPU_DTYPE)
    gpu["t_start"] = kg["ts"] + base
    gpu["t_end"] = kg["ts"] + kg["dur"] + base
    for f in ("correlation", "device", "stream", "bytes", "name_id", "grid", "block"):
        gpu[f] = kg[f]
    gpu["kind"] = kg["kind"]
    top = dict(reader.top_level)
    extra_regions, latency = read_extras(top) if "skipnative" in top else (None, None)
    if latency is not None and len(latency) == len(gpu):
        for j, col in enumerate(("t_queued", "t_submitted")):
            known = latency[:, j] != np.iinfo(np.int64).min
            gpu[col] = np.where(known, gpu["t_start"] + latency[:, j], 0)
    order = np.argsort(gpu["t_start"], kind="stable")
    gpu = gpu[order]

    ko = reader.ops().view(record_dtypes()["op"])
    ops = np.zeros(len(ko), dtype=OP_DTYPE)
    ops["t_begin"] = ko["ts"] + base
    ops["t_end"] = ko["ts"] + ko["dur"] + base
    for f in ("pid", "tid", "name_id", "depth", "parent", "top"):
        ops[f] = ko[f]

    ks = reader.steps().view(record_dtypes()["step"])
    ks = ks[np.argsort(ks["ts"], kind="stable")]
    regions = np.zeros(len(ks), dtype=REGION_DTYPE)
    regions["t_begin"] = ks["ts"] + base
    regions["t_end"] = ks["ts"] + ks["dur"] + base
    regions["name_id"] = ks["name_id"]
    regions["kind"] = _region_kinds(strings.strings, ks["name_id"])
    if _exported_native(dict(reader.top_level)):
        regions["kind"] = MARKER  # a native capture's iteration markers, exported
    if extra_regions is not None:  # an export's own list of regions, restored as it was
        regions = _regions_from(extra_regions, strings)

    meta["events"] = int(reader.events)
    return Trace(
        launches=launches,
        gpu=gpu,
        ops=ops,
        regions=regions,
        strings=strings.strings,
        meta=meta,
        path=path,
    )
