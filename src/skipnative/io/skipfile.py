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

Tables are stored column by column; int64 columns are delta-encoded before
zlib, which makes timestamps a few bytes each. Loading never executes
anything from the file (no pickle): dtypes come from a fixed list, and every
blob is size- and CRC-checked. Writes go to a temporary file in the same
folder and are renamed into place, so a crash never leaves a partial file.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from typing import Any

import numpy as np

from skipnative.errors import TraceError
from skipnative.io.atomic import atomic_output, read_whole
from skipnative.io.sniff import SKIP_MAGIC
from skipnative.trace import GPU_DTYPE, LAUNCH_DTYPE, OP_DTYPE, REGION_DTYPE, Trace

FORMAT_VERSION = 1
TABLES = {"launches": LAUNCH_DTYPE, "gpu": GPU_DTYPE, "ops": OP_DTYPE, "regions": REGION_DTYPE}
_ALLOWED_DTYPES = {"<i8", "<i4", "|u1", "<u8", "<u4", "<i2", "<u2"}
_PREFIX = struct.Struct("<8sII")
_MAX_HEADER = 64 << 20
_MAX_STRINGS = 1 << 30
_MAX_INFLATE = 1100  # zlib cannot expand data by more than ~1032x


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
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:  # before the work of encoding
        raise TraceError(path, "already exists (pass overwrite=True, or --force, to replace it)")
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
    hbytes = json.dumps(header, ensure_ascii=False).encode()
    with atomic_output(path, overwrite=overwrite) as f:
        f.write(_PREFIX.pack(SKIP_MAGIC, FORMAT_VERSION, len(hbytes)))
        f.write(hbytes)
        for b in blobs:
            f.write(b)


def load(path: str) -> Trace:
    path = os.fspath(path)
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
    out = {name: r.table(name, dtype, tables.get(name)) for name, dtype in TABLES.items()}
    n = len(strings)
    for name in ("launches", "gpu", "ops", "regions"):
        ids = out[name]["name_id"]
        if len(ids) and (ids.min() < 0 or ids.max() >= n):
            raise r.corrupt(f"table {name} refers to names beyond the string table")
    meta_raw = header.get("meta")
    meta: dict[str, Any] = meta_raw if isinstance(meta_raw, dict) else {}
    return Trace(
        launches=out["launches"],
        gpu=out["gpu"],
        ops=out["ops"],
        regions=out["regions"],
        strings=strings,
        meta=meta,
        path=path,
    )


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
        try:
            header = json.loads(bytes(data[_PREFIX.size : _PREFIX.size + hlen]))
        except (ValueError, UnicodeDecodeError):
            raise self.corrupt("header is not valid JSON") from None
        if not isinstance(header, dict):
            raise self.corrupt("header is not an object")
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
        try:
            strings = json.loads(self.blob(header.get("strings"), "strings"))
        except ValueError:
            raise self.corrupt("strings are not valid JSON") from None
        if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
            raise self.corrupt("strings are not a list of strings")
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
