"""The .skip file: a versioned, self-describing, compact container for a Trace.

Layout (all little-endian):

    magic    8 bytes  b"SKIPNATV"
    version  u32      FORMAT_VERSION
    hlen     u32      length of the header
    header   hlen bytes of UTF-8 JSON:
             {"format_version", "meta", "strings": {"offset", "nbytes", "count", "crc32"},
              "tables": {table: {"rows", "columns": [{"name", "dtype", "shape", "codec",
                                                     "offset", "nbytes", "crc32"}]}}}
    payload  the blobs the header points to (offsets from the payload start)

The tables are launches, gpu, ops, regions and waits (trace.py's dtypes); files
written before the waits table existed lack it and read as having none.
Tables are stored column by column; int64 columns are delta-encoded before
zlib, which makes timestamps a few bytes each. Loading never executes
anything from the file (no pickle): dtypes come from a fixed list, and every
blob is size- and CRC-checked. The header's format_version is the prefix's,
its strings count the strings', and the payload ends with the last blob: a file
that says otherwise was not written whole by a writer of this format (bytes
appended, parts spliced), and is refused rather than read in part.
Writes go to a temporary file in the same folder and are renamed into place,
so a crash never leaves a partial file.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from typing import Any

import numpy as np

from skipnative.errors import TraceError
from skipnative.io import safe_json
from skipnative.io.atomic import atomic_output, read_whole, refuse_output
from skipnative.io.folder import MAX_RANK
from skipnative.io.sniff import SKIP_MAGIC, refuse_special
from skipnative.text import short_repr
from skipnative.trace import (
    API_KINDS,
    GPU_DTYPE,
    GPU_KINDS,
    LAUNCH_DTYPE,
    OP_DTYPE,
    REGION_DTYPE,
    REGION_KINDS,
    WAIT_DTYPE,
    Trace,
)

FORMAT_VERSION = 1
TABLES = {
    "launches": LAUNCH_DTYPE,
    "gpu": GPU_DTYPE,
    "ops": OP_DTYPE,
    "regions": REGION_DTYPE,
    "waits": WAIT_DTYPE,
}
# tables that files written before them lack: read as empty
_OPTIONAL_TABLES = ("waits",)
_ALLOWED_DTYPES = {"<i8", "<i4", "|u1", "<u8", "<u4", "<i2", "<u2"}
_PREFIX = struct.Struct("<8sII")
_MAX_HEADER = 64 << 20
_MAX_STRINGS = 1 << 30
_MAX_INFLATE = 1100  # zlib cannot expand data by more than ~1032x
_I64 = 2**63
# the enum columns and the names their values index
KINDS = {"launches": API_KINDS, "gpu": GPU_KINDS, "regions": REGION_KINDS}
# (begin, end) of each table's rows; the gpu table's t_queued and t_submitted
# are times too, 0 where unknown
INTERVALS = {
    "launches": ("t_begin", "t_end"),
    "gpu": ("t_start", "t_end"),
    "ops": ("t_begin", "t_end"),
    "regions": ("t_begin", "t_end"),
}
_OPTIONAL_TIMES = ("t_queued", "t_submitted")
# metadata the code reads as integers (perfetto export, kernel tables, run dumps)
_INT_META = ("clock_realtime_offset_ns", "t_start_ns", "t_stop_ns", "events")
_INT_OR_NONE_META = ("pid", "rank")


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def _encode_column(col: np.ndarray) -> tuple[bytes, str]:
    flat = np.ascontiguousarray(col)
    if flat.dtype == np.int64 and flat.ndim == 1:
        delta = np.empty_like(flat)
        if len(flat):
            delta[0] = flat[0]
            np.subtract(flat[1:], flat[:-1], out=delta[1:])
        return zlib.compress(delta.tobytes(), 6), "delta-zlib"
    return zlib.compress(flat.tobytes(), 6), "zlib"


def save(trace: Trace, path: str, *, overwrite: bool = False) -> None:
    path = os.fsdecode(path)  # a bytes path too, as load() takes it
    refuse_output(path, overwrite=overwrite)  # before the work of encoding
    blobs: list[bytes] = []
    offset = 0

    def add(blob: bytes) -> dict[str, int]:
        nonlocal offset
        entry = {"offset": offset, "nbytes": len(blob), "crc32": zlib.crc32(blob)}
        blobs.append(blob)
        offset += len(blob)
        return entry

    tables: dict[str, Any] = {}
    for name, dtype in TABLES.items():
        table = np.asarray(getattr(trace, name))
        if table.dtype != dtype:
            raise ValueError(f"trace.{name} has dtype {table.dtype}, expected {dtype}")
        cols = []
        for field in dtype.names or ():
            blob, codec = _encode_column(table[field])
            sub = dtype[field]
            base = sub.base if sub.shape else sub
            cols.append(
                {
                    "name": field,
                    "dtype": base.str,
                    "shape": list(sub.shape),
                    "codec": codec,
                    **add(blob),
                }
            )
        tables[name] = {"rows": len(table), "columns": cols}
    strings_blob = zlib.compress(json.dumps(trace.strings, ensure_ascii=False).encode(), 6)
    header = {
        "format_version": FORMAT_VERSION,
        "meta": _jsonable(trace.meta),
        "strings": {"count": len(trace.strings), **add(strings_blob)},
        "tables": tables,
    }
    # a lone surrogate in the metadata (os.fsdecode's form of bytes that are not
    # UTF-8) has no UTF-8 form; backslashreplace writes it as \udcXX, which inside
    # the JSON string it stands in is that string's escape (read back as U+FFFD)
    hbytes = json.dumps(header, ensure_ascii=False).encode("utf-8", "backslashreplace")
    with atomic_output(path, overwrite=overwrite) as f:
        f.write(_PREFIX.pack(SKIP_MAGIC, FORMAT_VERSION, len(hbytes)))
        f.write(hbytes)
        for b in blobs:
            f.write(b)


def load(path: str) -> Trace:
    path = os.fspath(path)
    refuse_special(path)  # read_whole would wait on a FIFO's writer
    return _parse(path, memoryview(read_whole(path)))


def _parse(path: str, data: memoryview) -> Trace:
    try:
        return _parse_checked(path, data)
    except TraceError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
        # the header is untrusted JSON: any shape it should not have is corruption
        raise TraceError(path, f"corrupted .skip file: malformed header ({e})") from None


def _parse_checked(path: str, data: memoryview) -> Trace:
    r = _Reader(path, data)
    header = r.header()
    strings = r.strings(header)
    tables = header.get("tables")
    if not isinstance(tables, dict):
        raise r.corrupt("no tables")
    out = {
        name: r.table(name, dtype, tables.get(name))
        if name not in _OPTIONAL_TABLES or name in tables
        else np.zeros(0, dtype=dtype)
        for name, dtype in TABLES.items()
    }
    n = len(strings)
    for name in ("launches", "gpu", "ops", "regions"):
        ids = out[name]["name_id"]
        if len(ids) and (ids.min() < 0 or ids.max() >= n):
            raise r.corrupt(f"table {name} refers to names beyond the string table")
    trailing = len(r.payload) - _payload_end(header)
    if trailing > 0:
        raise r.corrupt(f"{trailing:,} bytes after the last table's data")
    meta = header.get("meta")
    if not isinstance(meta, dict):
        raise r.corrupt("meta is not an object")
    problem = rows_problem(out) or _meta_problem(meta) or _times_problem(out, meta)
    if problem:
        raise r.corrupt(problem)
    return Trace(
        launches=out["launches"],
        gpu=out["gpu"],
        ops=out["ops"],
        regions=out["regions"],
        strings=strings,
        meta=meta,
        path=path,
        waits=out["waits"],
    )


def _payload_end(header: dict[str, Any]) -> int:
    """Where the last blob the header names ends (those of a table this reader
    does not know too: each is written, in order, after the one before)."""
    entries = [header.get("strings")]
    for t in header["tables"].values():
        if isinstance(t, dict) and isinstance(t.get("columns"), list):
            entries += t["columns"]
    ends = [0]
    for e in entries:
        if isinstance(e, dict):
            off, n = e.get("offset"), e.get("nbytes")
            if isinstance(off, int) and isinstance(n, int):
                ends.append(off + n)
    return max(ends)


class _Reader:
    """An untrusted .skip file's parts, each checked before use."""

    def __init__(self, path: str, data: memoryview):
        self.path, self.data = path, data
        self.payload = data[:0]

    def corrupt(self, what: str) -> TraceError:
        return TraceError(self.path, f"corrupted .skip file: {what}")

    def header(self) -> dict[str, Any]:
        data, path = self.data, self.path
        if len(data) < _PREFIX.size:
            raise self.corrupt("shorter than its fixed header")
        magic, version, hlen = _PREFIX.unpack_from(data, 0)
        if magic != SKIP_MAGIC:
            raise TraceError(path, "not a .skip file (bad magic)")
        if version != FORMAT_VERSION:
            raise TraceError(
                path,
                f".skip format version {version} is not supported "
                f"(this skipnative reads version {FORMAT_VERSION})",
            )
        if hlen > _MAX_HEADER or _PREFIX.size + hlen > len(data):
            raise self.corrupt("header length beyond the end of the file")
        text = bytes(data[_PREFIX.size : _PREFIX.size + hlen])
        header = safe_json.loads(text, path, "corrupted .skip file: header")
        if not isinstance(header, dict):
            raise self.corrupt("header is not an object")
        fv = header.get("format_version")
        if type(fv) is not int or fv != version:  # every writer wrote it, as the prefix's
            raise self.corrupt(
                f"header format_version {short_repr(fv)} is not the file's, {version}"
            )
        self.payload = data[_PREFIX.size + hlen :]
        return header

    def blob(self, entry: Any, what: str, expect: int | None = None) -> bytes:
        payload, corrupt = self.payload, self.corrupt
        try:
            off, n, crc = int(entry["offset"]), int(entry["nbytes"]), int(entry["crc32"])
        except (KeyError, TypeError, ValueError):
            raise corrupt(f"{what}: bad blob entry") from None
        if off < 0 or n < 0 or off + n > len(payload):
            raise corrupt(f"{what}: data beyond the end of the file (truncated?)")
        b = bytes(payload[off : off + n])
        if zlib.crc32(b) != crc:
            raise corrupt(f"{what}: checksum mismatch")
        # Inflate at most what the header promises (plus one byte to detect more),
        # so a crafted blob cannot expand without bound.
        limit = _MAX_STRINGS if expect is None else expect + 1
        d = zlib.decompressobj()
        try:
            out = d.decompress(b, limit)
        except zlib.error:
            raise corrupt(f"{what}: bad compressed data") from None
        if len(out) >= limit or d.unconsumed_tail:
            raise corrupt(f"{what}: inflates beyond its declared size")
        return out

    def strings(self, header: dict[str, Any]) -> list[str]:
        text = self.blob(header.get("strings"), "strings")
        strings = safe_json.loads(text, self.path, "corrupted .skip file: strings")
        if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
            raise self.corrupt("strings are not a list of strings")
        count = header["strings"].get("count")
        if type(count) is not int or count != len(strings):
            raise self.corrupt(f"strings count {short_repr(count)}, but {len(strings):,} strings")
        return strings or [""]

    def table(self, name: str, dtype: np.dtype, t: Any) -> np.ndarray:
        corrupt = self.corrupt
        if not isinstance(t, dict) or not isinstance(t.get("rows"), int) or t["rows"] < 0:
            raise corrupt(f"table {name} missing")
        rows = t["rows"]
        if rows * dtype.itemsize > _MAX_INFLATE * max(len(self.payload), 1):
            raise corrupt(f"table {name} claims {rows} rows, more than the file can hold")
        cols = {c.get("name"): c for c in t.get("columns", []) if isinstance(c, dict)}
        arr = np.zeros(rows, dtype=dtype)
        for field in dtype.names or ():
            c = cols.get(field)
            if c is None:
                raise corrupt(f"table {name} lacks column {field}")
            arr[field] = self.column(f"{name}.{field}", c, dtype[field], rows)
        return arr

    def column(self, what: str, c: dict, sub: np.dtype, rows: int) -> np.ndarray:
        corrupt = self.corrupt
        base = sub.base if sub.shape else sub
        if c.get("dtype") not in _ALLOWED_DTYPES or c["dtype"] != base.str:
            raise corrupt(f"column {what} has dtype {c.get('dtype')!r}")
        if list(c.get("shape", [])) != list(sub.shape):
            raise corrupt(f"column {what} has the wrong shape")
        expect = rows * sub.itemsize
        raw = self.blob(c, f"column {what}", expect)
        if len(raw) != expect:
            raise corrupt(f"column {what} holds {len(raw)} bytes, expected {expect}")
        col = np.frombuffer(raw, dtype=base).reshape((rows, *sub.shape))
        if c.get("codec") == "delta-zlib":
            return np.cumsum(col, dtype=np.int64)
        if c.get("codec") != "zlib":
            raise corrupt(f"column {what} has unknown codec {c.get('codec')!r}")
        return col


def time_range(tables: dict[str, np.ndarray]) -> tuple[int, int] | None:
    """(earliest, latest) time of the tables' rows (INTERVALS and the gpu rows'
    known t_queued, t_submitted), as Python ints; None without any row."""
    lo: int | None = None
    hi: int | None = None
    for name, cols in INTERVALS.items():
        t = tables[name]
        if not len(t):
            continue
        names = cols + (_OPTIONAL_TIMES if name == "gpu" else ())
        for c in names:
            v = t[c][t[c] != 0] if c in _OPTIONAL_TIMES else t[c]
            if len(v):
                a, b = int(v.min()), int(v.max())
                lo, hi = (a, b) if lo is None or hi is None else (min(lo, a), max(hi, b))
    return None if lo is None or hi is None else (lo, hi)


def span_problem(tables: dict[str, np.ndarray]) -> str | None:
    """Why the tables' times cannot be analysed: the distance between the earliest
    and the latest must fit int64, or every duration and gap may wrap."""
    r = time_range(tables)
    if r is not None and r[1] - r[0] >= _I64:
        return f"the trace spans more than 2^63 ns (its times run from {r[0]} to {r[1]} ns)"
    return None


def rows_problem(tables: dict[str, np.ndarray]) -> str | None:
    """What no reader produces in the tables: a kind beyond its names, a row that
    ends before it begins, ops that do not nest (or None)."""
    for name, kinds in KINDS.items():
        k = tables[name]["kind"]
        if len(k) and int(k.max()) >= len(kinds):
            return f"table {name}.kind holds {int(k.max())}, beyond its {len(kinds)} kinds"
    for name, (b, e) in INTERVALS.items():
        t = tables[name]
        bad = np.flatnonzero(t[e] < t[b])
        if len(bad):
            return f"table {name}: row {int(bad[0])} ends before it begins"
    return _ops_problem(tables["ops"])


def _ops_problem(ops: np.ndarray) -> str | None:
    """Ops must form a forest as the Kineto reader nests them: a root has depth 0
    and is its own top; any other op is one deeper than its parent and shares
    its top (so no parent chain loops)."""
    n = len(ops)
    if not n:
        return None
    parent, top = ops["parent"], ops["top"]
    depth = ops["depth"].astype(np.int64)
    if ((parent < -1) | (parent >= n) | (top < 0) | (top >= n) | (depth < 0)).any():
        return "table ops refers to rows beyond the table"
    root = parent == -1
    p = np.where(root, 0, parent)
    rows = np.arange(n)
    nested = np.where(root, (depth == 0) & (top == rows), (depth == depth[p] + 1) & (top == top[p]))
    if not nested.all():
        return f"table ops: row {int(np.flatnonzero(~nested)[0])} does not nest in its parent"
    return None


def trace_problem(trace: Trace) -> str | None:
    """Why a .skip written from `trace` would not load (the checks load makes),
    or None: a writer that meets one says so rather than leave a file no reader
    takes."""
    tables = {name: getattr(trace, name) for name in TABLES}
    meta = _jsonable(trace.meta)
    return rows_problem(tables) or _meta_problem(meta) or _times_problem(tables, meta)


def _meta_problem(meta: dict[str, Any]) -> str | None:
    for key in (*_INT_META, *_INT_OR_NONE_META):
        if key not in meta:
            continue
        v = meta[key]
        if v is None and key in _INT_OR_NONE_META:
            continue
        if key == "rank":  # as folder.rank_in_trace reads it: digits, or an int
            if isinstance(v, str) and re.fullmatch(r"[0-9]+", v):
                v = int(v) if len(v.lstrip("0")) <= len(str(MAX_RANK)) else _I64
            if isinstance(v, int) and not isinstance(v, bool) and v > MAX_RANK:
                return f"meta rank is {short_repr(meta[key])}, beyond the largest, {MAX_RANK}"
        if isinstance(v, bool) or not isinstance(v, int) or not -_I64 <= v < _I64:
            return f"meta {key} is {short_repr(v)}, not a 64-bit integer"
    if "devices" in meta and not isinstance(meta["devices"], list):
        return f"meta devices is {short_repr(meta['devices'])}, not a list"
    return dropped_problem(meta.get("dropped"))


def is_count(v: Any) -> bool:
    """A count as the native layer writes one: an int (not a bool) in [0, 2^63)."""
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _I64


def dropped_problem(dropped: Any) -> str | None:
    """The losses a capture counted (trace.losses reads them): an object of counts.
    A count of another type was passed over, so the file's losses went unsaid."""
    if dropped is None:
        return None
    if not isinstance(dropped, dict):
        return f"meta dropped is {short_repr(dropped)}, not an object of counts"
    for k, v in dropped.items():
        if not is_count(v):
            return f"meta dropped.{k} is {short_repr(v)}, not a count"
    return None


def _times_problem(tables: dict[str, np.ndarray], meta: dict[str, Any]) -> str | None:
    """A native capture's times are session-clock ns (unsigned, from the start of
    its clock) and, moved by clock_realtime_offset_ns, unix ns: both fit int64."""
    problem = span_problem(tables)
    r = time_range(tables)
    if problem or r is None:
        return problem
    if meta.get("source") == "skipnative" and r[0] < 0:
        return f"negative time {r[0]} ns in a native capture"
    off = meta.get("clock_realtime_offset_ns", 0)
    if not (r[0] + off >= -_I64 and r[1] + off < _I64):
        return f"meta clock_realtime_offset_ns {off} moves the trace's times beyond 64 bits"
    return None
