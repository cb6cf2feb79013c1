"""torch.profiler (Kineto) chrome traces -> Trace.

The JSON is streamed through the native reader (csrc/kineto/trace_reader.cpp)
in chunks, decompressing gzip on the way (kineto_stream.py), so memory stays
near the size of the columns it keeps rather than the size of the file; here
the reader's columns become a Trace.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from skipnative.errors import TraceError
from skipnative.io.kineto_stream import read
from skipnative.io.safe_json import loads
from skipnative.io.skipfile import span_problem
from skipnative.trace import (
    GPU_DTYPE,
    LAUNCH_DTYPE,
    OP_DTYPE,
    REGION_DTYPE,
    REGION_KINDS,
    WAIT_DTYPE,
    StringTable,
    Trace,
    call_kind,
    malformed_events,
    malformed_warning,
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


def _exported_native(path: str, top: dict[str, str]) -> dict | None:
    """The header of a native capture written out by `skip export --perfetto`, or
    None for any other document."""
    info = loads(top.get("skipnative", "null"), path, "skipnative export block")
    return info if isinstance(info, dict) and info.get("source") == "skipnative" else None


def load_kineto(path: str, reader=None) -> Trace:
    """The trace at `path`; `reader`: the native reader already fed that file
    (kineto_stream.read or a Prefetch's result), else it is read now."""
    reader = reader if reader is not None else read(path)
    trace = _to_trace(path, reader)
    found = malformed_events(trace.meta)
    if found:  # said once per read; the reader counted them as it parsed
        warnings.warn(f"{path}: {malformed_warning(found)}", RuntimeWarning, stacklevel=2)
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


# the top-level members the loader reads (besides "skipnative" and its shards)
_META_KEYS = (
    "deviceProperties",
    "schemaVersion",
    "distributedInfo",
    "traceName",
    "baseTimeNanoseconds",
    "displayTimeUnit",
)


def _meta(path: str, top: dict[str, str]) -> dict:
    meta: dict = {"source": "kineto", "time_unit": "ns", "clock_domain": "unix"}
    devices = []
    for key in _META_KEYS:
        if key in top:
            value = loads(top[key], path, key)
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
    """Regions an export listed ([t_begin, t_end, name, kind], as perfetto.read_extras
    checked them: int64 times, a name, one of REGION_KINDS), in begin order."""
    out = np.zeros(len(rows), dtype=REGION_DTYPE)
    for i, (t0, t1, name, kind) in enumerate(rows):
        out[i] = (t0, t1, strings.intern(name), REGION_KINDS.index(kind))
    return out[np.argsort(out["t_begin"], kind="stable")]


def _latency_times(path: str, start: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """start + offsets where the offset is known (else 0, unknown), refused where
    the sum would not fit int64 (numpy would wrap it)."""
    lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    known = offsets != lo
    over = known & (
        ((offsets > 0) & (start > hi - np.maximum(offsets, 0)))
        | ((offsets < 0) & (start < lo - np.minimum(offsets, 0)))
    )
    if over.any():
        raise TraceError(path, "skipnative export block: latency offsets beyond 64-bit times")
    return np.where(known, start + np.where(known, offsets, 0), 0)


def _table(
    rows: np.ndarray, kind: str, dtype: np.dtype, times: tuple[str, str], cols: tuple, base: int
) -> np.ndarray:
    """The reader's `kind` rows (raw bytes) as a table of `dtype`, in one native
    pass over the rows: `times` (begin, end) = ts + base, ts + dur + base, and
    the fields `cols` as the reader has them. Fields not named stay 0."""
    from skipnative import _native

    src = record_dtypes()[kind]
    out = np.zeros(len(rows) // src.itemsize, dtype=dtype)
    d_fields: Mapping[str, Any] = dtype.fields or {}
    s_fields: Mapping[str, Any] = src.fields or {}
    plan = []
    fields = {times[0]: "ts", times[1]: ("ts", "dur"), **{c: c for c in cols}}
    for name, spec in fields.items():
        a, plus = (spec, None) if isinstance(spec, str) else spec
        d_dt, d_off = d_fields[name][:2]
        s_dt, s_off = s_fields[a][:2]
        n = int(np.prod(d_dt.shape)) if d_dt.shape else 1
        assert d_dt.base.kind in "iu" and s_dt.base.kind == "i" and d_dt.shape == s_dt.shape
        p_off = s_fields[plus][1] if plus else -1
        for k in range(n):
            plan.append(
                (
                    d_off + k * d_dt.base.itemsize,
                    d_dt.base.itemsize,
                    s_off + k * s_dt.base.itemsize,
                    s_dt.base.itemsize,
                    p_off,
                    base if a == "ts" else 0,
                )
            )
    _native.copy_rows(np.ascontiguousarray(rows), src.itemsize, out, plan)
    return out


def _top_level(path: str, reader) -> dict[str, str]:
    """The document's top-level members (raw JSON text by key); text that is not
    UTF-8 there is no JSON, refused in one line (JSON text is UTF-8). The reader
    keeps no member over its cap: one that the loader reads is refused, as taking
    it for absent would lose its data without a word (an export's regions, say)."""
    try:
        top, over = dict(reader.top_level), dict(reader.top_level_over_cap)
    except UnicodeDecodeError:
        raise TraceError(path, "a top-level member is not valid UTF-8 (not JSON)") from None
    for key, size in sorted(over.items()):
        if key in _META_KEYS or key == "skipnative" or key.startswith("skipnative_"):
            cap = reader.max_top_level_bytes >> 20
            raise TraceError(
                path,
                f"top-level member {key[:40]!r} is {size} bytes, over the {cap} MiB "
                "the reader keeps of one: it cannot be read",
            )
    return top


def _to_trace(path: str, reader) -> Trace:
    strings = StringTable([b.decode("utf-8", "replace") for b in reader.strings()])
    top = _top_level(path, reader)
    meta = _meta(path, top)
    base = meta.get("baseTimeNanoseconds", 0)
    if isinstance(base, bool) or not isinstance(base, int):  # else every time moves
        raise TraceError(path, f"baseTimeNanoseconds is {str(base)[:40]!r}, not an integer")
    _check_base(path, base, reader)

    begin_end = ("t_begin", "t_end")
    cols: tuple[str, ...] = ("correlation", "pid", "tid", "name_id", "cbid")
    launches = _table(reader.launches(), "launch", LAUNCH_DTYPE, begin_end, cols, base)
    if len(launches):
        launches["kind"] = api_kind_by_name(strings.strings)[launches["name_id"]]

    cols = ("correlation", "device", "stream", "bytes", "name_id", "grid", "block", "kind")
    gpu = _table(reader.gpu(), "gpu", GPU_DTYPE, ("t_start", "t_end"), cols, base)
    extra_regions, latency = None, None
    if "skipnative" in top:  # an export of a native capture (skip export --perfetto)
        from skipnative.io.perfetto import read_extras

        extra_regions, latency = read_extras(top, path, len(gpu))
    if latency is not None:
        for j, col in enumerate(("t_queued", "t_submitted")):
            gpu[col] = _latency_times(path, gpu["t_start"], latency[:, j])
    order = np.argsort(gpu["t_start"], kind="stable")
    gpu = gpu[order]

    cols = ("pid", "tid", "name_id", "depth", "parent", "top")
    ops = _table(reader.ops(), "op", OP_DTYPE, begin_end, cols, base)

    ks = reader.steps().view(record_dtypes()["step"])
    ks = ks[np.argsort(ks["ts"], kind="stable")]
    steps = ks.view(np.uint8).reshape(-1)
    regions = _table(steps, "step", REGION_DTYPE, begin_end, ("name_id",), base)
    regions["kind"] = _region_kinds(strings.strings, ks["name_id"])
    exported = _exported_native(path, top)
    if exported is not None:
        regions["kind"] = MARKER  # a native capture's iteration markers, exported
        if exported.get("cupti_test_double") is True:
            meta["cupti_test_double"] = True
    if extra_regions is not None:  # an export's own list of regions, restored as it was
        regions = _regions_from(extra_regions, strings)

    meta["events"] = int(reader.events)
    found = {k: int(v) for k, v in reader.malformed_events.items() if v}
    if found:
        meta["malformed_events"] = found
    waits = _waits(reader)
    tables = {"launches": launches, "gpu": gpu, "ops": ops, "regions": regions}
    problem = span_problem(tables)
    if problem:
        raise TraceError(path, problem)
    return Trace(
        launches=launches,
        gpu=gpu,
        ops=ops,
        regions=regions,
        strings=strings.strings,
        meta=meta,
        path=path,
        waits=waits,
    )


def _waits(reader) -> np.ndarray:
    """The trace's cross-stream waits (trace.WAIT_DTYPE; the reader checked that each
    field is an integer and the device fits 32 bits)."""
    rows = reader.waits().view(record_dtypes()["wait"])
    out = np.zeros(len(rows), dtype=WAIT_DTYPE)
    for name in WAIT_DTYPE.names or ():
        out[name] = rows[name]
    return out
