"""Raw dumps of ``skip run``: what each captured process writes per capture window.

The layout is documented in csrc/cupti/run_dump.h (magic ``SKIPDUMP``, a
version, a JSON header, the native record tables as they were in memory, the
string table, the trailer ``SKIPDEND``). This module reads a dump into numpy
tables and turns a process's dumps into one :class:`~skipnative.trace.Trace`,
each on-demand window a region of it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from skipnative.errors import TraceError
from skipnative.io import safe_json
from skipnative.io.atomic import read_whole
from skipnative.io.skipfile import dropped_problem, is_count
from skipnative.text import short_repr
from skipnative.trace import REGION_DTYPE, StringTable, Trace

MAGIC = b"SKIPDUMP"
TRAILER = b"SKIPDEND"
VERSION = 2  # 2: the events table (capture option stream_waits)
_PREFIX = struct.Struct("<8sII")
TABLES = ("launches", "kernels", "copies", "markers", "events")


def _dtypes() -> dict[str, np.dtype]:
    """The native row dtypes (defined once, on the C++ structs)."""
    from skipnative import _native

    return _native.record_dtypes()


@dataclass
class Dump:
    """One capture window of one process."""

    path: str
    pid: int
    window: int
    meta: dict[str, Any]
    devices: list[str]
    tables: dict[str, np.ndarray]
    strings: list[str]


def read_dump(path: str) -> Dump:
    """Reads a dump; a malformed one is a TraceError naming the file and the problem."""
    path = os.fspath(path)
    data = read_whole(path)
    try:
        return _parse(path, data)
    except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError) as e:
        raise TraceError(path, f"corrupted skip run dump ({e})") from None


def _parse(path: str, data: bytes) -> Dump:
    def bad(what: str) -> TraceError:
        return TraceError(path, f"corrupted skip run dump: {what}")

    if len(data) < _PREFIX.size + len(TRAILER):
        raise bad("shorter than its fixed header")
    magic, version, hlen = _PREFIX.unpack_from(data, 0)
    if magic != MAGIC:
        raise TraceError(path, "not a skip run dump (bad magic)")
    if version != VERSION:
        raise TraceError(
            path, f"skip run dump version {version} is not supported (reads {VERSION})"
        )
    if data[-len(TRAILER) :] != TRAILER:
        raise bad("no trailer (the process stopped while writing it)")
    end = len(data) - len(TRAILER)
    if _PREFIX.size + hlen > end:
        raise bad("header beyond the end of the file")
    # safe_json: a header nested deep enough for a RecursionError, or holding
    # NaN, is refused in one line like any other malformed dump
    text = data[_PREFIX.size : _PREFIX.size + hlen]
    header = safe_json.loads(text, path, "corrupted skip run dump: header")
    if not isinstance(header, dict):
        raise bad("header is not an object")
    problem = _header_problem(header)
    if problem:
        raise bad(problem)
    at = _PREFIX.size + hlen
    tables = {}
    dtypes = _dtypes()
    for name in TABLES:
        dtype = dtypes[name]
        t = header["tables"][name]
        rows, row_bytes = t["rows"], t["row_bytes"]
        if row_bytes != dtype.itemsize:
            raise bad(f"{name} rows are {row_bytes} bytes, this skipnative reads {dtype.itemsize}")
        n = rows * row_bytes
        if rows < 0 or at + n > end:
            raise bad(f"table {name} beyond the end of the file")
        tables[name] = np.frombuffer(data, dtype=dtype, count=rows, offset=at).copy()
        at += n
    strings = []
    for _ in range(header["strings"]):
        if at + 4 > end:
            raise bad("string table beyond the end of the file")
        (n,) = struct.unpack_from("<I", data, at)
        if at + 4 + n > end:
            raise bad("string table beyond the end of the file")
        strings.append(data[at + 4 : at + 4 + n].decode("utf-8"))
        at += 4 + n
    if at != end:
        raise bad(f"{end - at} bytes after the string table")
    for name, col in (("kernels", "name_id"), ("markers", "name_id")):
        ids = tables[name][col]
        if len(ids) and int(ids.max()) >= len(strings):
            raise bad(f"table {name} refers to names beyond the string table")
    return Dump(
        path=path,
        pid=header["pid"],
        window=header["window"],
        meta=header["meta"],
        devices=header.get("devices", []),
        tables=tables,
        strings=strings,
    )


def _header_problem(header: dict[str, Any]) -> str | None:
    """What no process writes in a dump's header (csrc/cupti/run_dump.h), where
    the conversion reads it: counts that are not counts, and the session
    metadata that becomes the .skip's (its window's times, its losses)."""
    for key in ("pid", "window", "strings"):
        if not is_count(header.get(key)):
            return f"header {key} is {short_repr(header.get(key))}, not a count"
    tables = header.get("tables")
    for name in TABLES:
        t = tables.get(name) if isinstance(tables, dict) else None
        for key in ("rows", "row_bytes"):
            v = t.get(key) if isinstance(t, dict) else None
            if not is_count(v):
                return f"header tables.{name}.{key} is {short_repr(v)}, not a count"
    devices = header.get("devices", [])
    if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
        return f"header devices is {short_repr(devices)}, not a list of names"
    meta = header.get("meta")
    if not isinstance(meta, dict):
        return f"header meta is {short_repr(meta)}, not an object"
    for key in ("t_start_ns", "t_stop_ns", "launches_outside", "gpu_rows_outside"):
        if not is_count(meta.get(key, 0 if key.endswith("outside") else None)):
            return f"meta {key} is {short_repr(meta.get(key))}, not a count"
    if meta["t_stop_ns"] < meta["t_start_ns"]:
        return f"meta t_stop_ns {meta['t_stop_ns']} is before t_start_ns {meta['t_start_ns']}"
    if not isinstance(meta.get("cupti_test_double", False), bool):
        return f"meta cupti_test_double is {short_repr(meta['cupti_test_double'])}, not a boolean"
    return dropped_problem(meta.get("dropped"))


class _DumpSession:
    """What the capture's conversion reads from a session, served from a dump."""

    def __init__(self, dump: Dump):
        self._dump = dump

    def strings(self) -> list[str]:
        return list(self._dump.strings)

    def metadata(self) -> dict[str, Any]:
        return dict(self._dump.meta)


class _DumpModule:
    """The compiled module as the conversion uses it, with the dump's device names."""

    def __init__(self, mod, dump: Dump):
        self._mod, self._dump = mod, dump

    def api_table(self):
        return self._mod.api_table()

    def device_names(self) -> list[str]:
        return list(self._dump.devices)


def window_trace(dump: Dump) -> Trace:
    """One window as a Trace, exactly as an in-process capture would convert it."""
    from skipnative.capturing.loader import native
    from skipnative.capturing.session import _to_trace

    mod, why = native()
    if mod is None:
        raise TraceError(dump.path, why)
    trace = _to_trace(_DumpModule(mod, dump), _DumpSession(dump), dump.tables)
    trace.launches["pid"] = dump.pid
    trace.meta["pid"] = dump.pid
    return trace


def process_trace(dumps: list[Dump], *, regions: bool) -> Trace:
    """A process's windows, in order, as one Trace; with `regions`, each window
    is a region named ``window <n>`` (markers inside it stay regions too). An
    on-demand window's n is the trigger request that opened it (the injection
    numbers it so), the same in every process, a process started late included,
    so that a comparison across ranks pairs the same window."""
    converted = sorted(
        ((d, window_trace(d)) for d in dumps),
        key=lambda dt: (dt[0].window, dt[1].meta["t_start_ns"]),
    )
    dumps, parts = [d for d, _ in converted], [t for _, t in converted]
    strings = StringTable([])
    tables: dict[str, list[np.ndarray]] = {"launches": [], "gpu": [], "ops": [], "regions": []}
    for d, t in zip(dumps, parts):
        remap = np.array([strings.intern(s) for s in t.strings], dtype=np.int32)
        for name in tables:
            table = getattr(t, name).copy()
            if len(table):
                table["name_id"] = remap[table["name_id"]]
            tables[name].append(table)
        if regions:
            r = np.zeros(1, dtype=REGION_DTYPE)
            r["t_begin"], r["t_end"] = t.meta["t_start_ns"], t.meta["t_stop_ns"]
            r["name_id"] = strings.intern(f"window {d.window}")
            tables["regions"].append(r)
    merged = {k: np.concatenate(v) if v else getattr(parts[0], k)[:0] for k, v in tables.items()}
    merged["regions"] = merged["regions"][np.argsort(merged["regions"]["t_begin"], kind="stable")]
    waits = np.concatenate([t.waits for t in parts])
    meta = dict(parts[0].meta)
    meta["t_stop_ns"] = parts[-1].meta["t_stop_ns"]
    meta["dropped"] = _summed([t.meta.get("dropped") for t in parts])  # every window's
    for key in ("launches_outside", "gpu_rows_outside"):
        meta[key] = sum(int(t.meta.get(key, 0)) for t in parts)
    meta["windows"] = [
        {"window": d.window, "t_start_ns": t.meta["t_start_ns"], "t_stop_ns": t.meta["t_stop_ns"]}
        for d, t in zip(dumps, parts)
    ]
    devices = {dev["id"]: dev for t in parts for dev in t.meta.get("devices", [])}
    meta["devices"] = [devices[k] for k in sorted(devices)]
    return Trace(
        launches=merged["launches"],
        gpu=merged["gpu"],
        ops=merged["ops"],
        regions=merged["regions"],
        strings=strings.strings,
        meta=meta,
        waits=waits,
    )


def _summed(counts: list[Any]) -> dict[str, int]:
    """Per-window counts (each a dict of numbers, or anything else: nothing) added up."""
    out: dict[str, int] = {}
    for c in counts:
        if isinstance(c, dict):
            for k, v in c.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out[k] = out.get(k, 0) + int(v)
    return out
