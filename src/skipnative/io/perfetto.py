"""Chrome/Perfetto trace export that follows Kineto's event conventions.

Launch calls are ``cuda_runtime`` / ``cuda_driver`` complete events on their
CPU thread, GPU work is ``kernel`` / ``gpu_memcpy`` / ``gpu_memset`` on
pid = device and tid = stream, ATen ops are ``cpu_op``, regions are
``user_annotation`` (ProfilerStep#N keeps its name), and each launch is tied to
its GPU work by an ``ac2g`` flow whose id is the correlation id. Timestamps are
unix microseconds with nanosecond decimals, as torch.profiler writes them, so
tools built for torch.profiler traces (HTA, skip analyze) read the export.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import zlib

import numpy as np

from skipnative.errors import TraceError
from skipnative.io.atomic import atomic_output, refuse_output
from skipnative.io.safe_json import loads
from skipnative.trace import API_KINDS, GPU_KINDS, HOST_WAITS, REGION_KINDS, Trace

_GPU_CAT = {"kernel": "kernel", "memcpy": "gpu_memcpy", "memset": "gpu_memset"}


def _us(ns: int) -> str:
    # exact decimal microseconds, like Kineto's nanosecond-resolution traces
    sign = "-" if ns < 0 else ""
    ns = abs(int(ns))
    return f"{sign}{ns // 1000}.{ns % 1000:03d}"


def unix_offset_ns(trace: Trace) -> int:
    """ns to add to the trace's times to place them on the unix axis."""
    if trace.meta.get("clock_domain") == "session":
        return int(trace.meta.get("clock_realtime_offset_ns", 0))
    return 0


def export_perfetto(trace: Trace, path: str, *, overwrite: bool = False) -> int:
    """Writes the trace as chrome-trace JSON (gzip when `path` ends in .gz). Returns
    the number of events written. A trace read from a Kineto file that is still
    as it was is written as that file's document, every event kept."""
    path = os.fsdecode(path)  # a bytes path too, as load() takes it
    refuse_output(path, overwrite=overwrite)
    if source_unchanged(trace):
        return _copy_source(trace, path, overwrite)
    off = unix_offset_ns(trace)
    pid_cpu = int(trace.meta.get("pid", 0) or 0)
    events = _launch_events(trace, off, pid_cpu)
    gpu_events, devices = _gpu_events(trace, off)
    events += gpu_events + _cpu_events(trace, off, pid_cpu) + _wait_events(trace, off)
    for dev in sorted(devices):
        events.append(
            f'{{"name":"process_name","ph":"M","pid":{dev},"tid":0,"args":{{"name":"GPU {dev}"}}}}'
        )
    device_props = [d for d in trace.meta.get("devices", []) if isinstance(d, dict)]
    header = {
        "schemaVersion": 1,
        "deviceProperties": device_props,
        "skipnative": {"source": trace.source, "clock": trace.meta.get("clock")},
    }
    header["skipnative"]["region_shards"] = _region_shards(trace, off, header)  # type: ignore[index]
    if trace.meta.get("cupti_test_double") is True:  # read back as "simulated", not NVIDIA
        header["skipnative"]["cupti_test_double"] = True  # type: ignore[index]
    header["skipnative"]["latency"] = _latency_shards(trace, header)  # type: ignore[index]
    head = json.dumps(header)[:-1]
    text = head + ',"traceEvents":[\n' + ",\n".join(events) + "\n]}\n"
    with atomic_output(path, overwrite=overwrite) as f:
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as gz:
                gz.write(text.encode())
        else:
            f.write(text.encode())
    return len(events)


def _launch_events(trace: Trace, off: int, pid_cpu: int) -> list[str]:
    """Launch calls, with a flow start at each call that launched GPU work."""
    s, dumps = trace.strings, json.dumps
    events: list[str] = []
    add = events.append
    for r in trace.launches:
        kind = API_KINDS[r["kind"]] if r["kind"] < len(API_KINDS) else "other"
        name = s[r["name_id"]]
        cat = (
            "cuda_driver"
            if name.startswith("cu") and not name.startswith("cuda")
            else "cuda_runtime"
        )
        ts = int(r["t_begin"]) + off
        pid = int(r["pid"]) or pid_cpu
        add(
            f'{{"ph":"X","cat":"{cat}","name":{dumps(name)},"pid":{pid},"tid":{int(r["tid"])},'
            f'"ts":{_us(ts)},"dur":{_us(int(r["t_end"] - r["t_begin"]))},'
            f'"args":{{"correlation":{int(r["correlation"])},"cbid":{int(r["cbid"])},'
            f'"kind":"{kind}"}}}}'
        )
        if r["correlation"] >= 0 and kind in ("kernel", "graph", "copy", "set"):
            add(
                f'{{"ph":"s","id":{int(r["correlation"])},"pid":{pid},"tid":{int(r["tid"])},'
                f'"ts":{_us(ts)},"cat":"ac2g","name":"ac2g"}}'
            )
    return events


def _gpu_args(g, kind: str, off: int) -> list[str]:
    dev, stream = int(g["device"]), int(g["stream"])
    args = [f'"device":{dev}', f'"stream":{stream}', f'"correlation":{int(g["correlation"])}']
    if kind != "kernel":
        return [*args, f'"bytes":{int(g["bytes"])}']
    args.append(f'"grid":[{",".join(str(int(x)) for x in g["grid"])}]')
    args.append(f'"block":[{",".join(str(int(x)) for x in g["block"])}]')
    if g["graph_id"]:
        args.append(f'"graph id":{int(g["graph_id"])}')
        args.append(f'"graph node id":{int(g["graph_node_id"])}')
    if g["t_queued"]:
        args.append(f'"queued ts":{_us(int(g["t_queued"]) + off)}')
    if g["t_submitted"]:
        args.append(f'"submitted ts":{_us(int(g["t_submitted"]) + off)}')
    return args


def _gpu_events(trace: Trace, off: int) -> tuple[list[str], set[int]]:
    """GPU activity (one process per device, one thread per stream), with a flow
    end at each row whose launch call is in the trace; and the devices seen."""
    s, dumps = trace.strings, json.dumps
    corr_with_launch = set(int(c) for c in trace.launches["correlation"])
    events: list[str] = []
    add = events.append
    devices = set()
    for g in trace.gpu:
        kind = GPU_KINDS[g["kind"]]
        dev, stream = int(g["device"]), int(g["stream"])
        devices.add(dev)
        ts = int(g["t_start"]) + off
        add(
            f'{{"ph":"X","cat":"{_GPU_CAT[kind]}","name":{dumps(s[g["name_id"]])},'
            f'"pid":{dev},"tid":{stream},"ts":{_us(ts)},'
            f'"dur":{_us(int(g["t_end"] - g["t_start"]))},'
            f'"args":{{{",".join(_gpu_args(g, kind, off))}}}}}'
        )
        if int(g["correlation"]) in corr_with_launch:
            add(
                f'{{"ph":"f","id":{int(g["correlation"])},"pid":{dev},"tid":{stream},'
                f'"ts":{_us(ts)},"cat":"ac2g","name":"ac2g","bp":"e"}}'
            )
    return events, devices


def _wait_events(trace: Trace, off: int) -> list[str]:
    """Waits on a stream's work as Kineto writes them (cuda_sync "Stream Wait Event"
    on the waiting stream's track, "Stream Sync" and "Event Sync" on the awaited
    one's, at the call's begin), so that the export reads back with them; a wait whose call the
    trace lacks has no time and is left out."""
    if not len(trace.waits):  # most traces: no lookup table of every call to build
        return []
    ln = trace.launches
    begin = dict(zip(ln["correlation"].tolist(), ln["t_begin"].tolist()))
    out = []
    for w in trace.waits:
        ts = begin.get(int(w["correlation"]))
        if ts is None:
            continue
        dev, stream, corr = int(w["device"]), int(w["stream"]), int(w["correlation"])
        on, record = int(w["on_stream"]), int(w["record_correlation"])
        if stream == HOST_WAITS and record != corr:  # a thread's wait for an event
            out.append(
                f'{{"ph":"X","cat":"cuda_sync","name":"Event Sync","pid":{dev},'
                f'"tid":{on},"ts":{_us(ts + off)},"dur":0,"args":{{"correlation":{corr},'
                f'"device":{dev},"stream":-1,"wait_on_stream":{on},'
                f'"wait_on_cuda_event_record_corr_id":{record}}}}}'
            )
            continue
        if stream == HOST_WAITS:
            out.append(
                f'{{"ph":"X","cat":"cuda_sync","name":"Stream Sync","pid":{dev},'
                f'"tid":{on},"ts":{_us(ts + off)},"dur":0,"args":{{"correlation":{corr},'
                f'"device":{dev},"stream":{on}}}}}'
            )
            continue
        out.append(
            f'{{"ph":"X","cat":"cuda_sync","name":"Stream Wait Event","pid":{dev},'
            f'"tid":{stream},"ts":{_us(ts + off)},"dur":0,"args":{{"correlation":{corr},'
            f'"device":{dev},"stream":{stream},"wait_on_stream":{on},'
            f'"wait_on_cuda_event_record_corr_id":{record}}}}}'
        )
    return out


def _cpu_events(trace: Trace, off: int, pid_cpu: int) -> list[str]:
    """ATen ops, and regions on the thread with the most launch calls."""
    s, dumps, ln = trace.strings, json.dumps, trace.launches
    events = []
    for o in trace.ops:
        pid = int(o["pid"]) or pid_cpu
        events.append(
            f'{{"ph":"X","cat":"cpu_op","name":{dumps(s[o["name_id"]])},"pid":{pid},'
            f'"tid":{int(o["tid"])},"ts":{_us(int(o["t_begin"]) + off)},'
            f'"dur":{_us(int(o["t_end"] - o["t_begin"]))}}}'
        )
    region_tid = int(np.bincount(ln["tid"].astype(np.int64) % (1 << 31)).argmax()) if len(ln) else 0
    for r in trace.regions:
        events.append(
            f'{{"ph":"X","cat":"user_annotation","name":{dumps(s[r["name_id"]])},'
            f'"pid":{pid_cpu},"tid":{region_tid},"ts":{_us(int(r["t_begin"]) + off)},'
            f'"dur":{_us(int(r["t_end"] - r["t_begin"]))}}}'
        )
    return events


# The reader keeps top-level values up to 1 MiB: regions and latency timestamps,
# whose size grows with the trace, go in shards (top-level keys) under that.
_SHARD_ROWS = 20_000  # latency: 320 KB of pairs, under 440 KB in base64 even if incompressible
_SHARD_CHARS = 256 << 10  # regions: ASCII text, at most twice that once escaped
_UNKNOWN = np.iinfo(np.int64).min


def _region_list(trace: Trace, off: int) -> list:
    """Every region, [t_begin, t_end, name, kind] on the export's (unix) axis."""
    s = trace.strings
    return [
        [int(r["t_begin"]) + off, int(r["t_end"]) + off, s[r["name_id"]], REGION_KINDS[r["kind"]]]
        for r in trace.regions
    ]


def _region_shards(trace: Trace, off: int, header: dict) -> list[str]:
    """Every region, as the JSON text of _region_list (ASCII) cut into strings in
    top-level keys; returns the keys' names. Cut by length, not by row: a region
    of any name fits."""
    text = json.dumps(_region_list(trace, off))
    keys: list[str] = []
    for i in range(0, len(text), _SHARD_CHARS):
        key = f"skipnative_regions_{len(keys)}"
        header[key] = text[i : i + _SHARD_CHARS]
        keys.append(key)
    return keys


def _latency_shards(trace: Trace, header: dict) -> list[str]:
    """CUPTI's queued and submitted times of every GPU row, in the export's GPU
    event order, as offsets from the row's start (zlib + base64 int64 pairs), in
    top-level keys; returns the keys' names (none without such times)."""
    g = trace.gpu
    if not len(g) or not ((g["t_queued"] != 0) | (g["t_submitted"] != 0)).any():
        return []
    pairs = np.empty((len(g), 2), dtype="<i8")
    for j, col in enumerate(("t_queued", "t_submitted")):
        pairs[:, j] = np.where(g[col] != 0, g[col] - g["t_start"], _UNKNOWN)
    keys: list[str] = []
    for i in range(0, len(g), _SHARD_ROWS):
        key = f"skipnative_latency_{len(keys)}"
        blob = zlib.compress(pairs[i : i + _SHARD_ROWS].tobytes(), 6)
        header[key] = base64.b64encode(blob).decode()
        keys.append(key)
    return keys


def read_extras(
    top: dict[str, str], path: str, gpu_rows: int
) -> tuple[list | None, np.ndarray | None]:
    """From an export's raw top-level values: (its regions, [t_begin, t_end, name,
    kind] each, or None; its `gpu_rows` GPU rows' (queued, submitted) offsets from
    start in file order, or None). A block that is not what export_perfetto
    writes is a TraceError: its data would otherwise be dropped or misread."""
    what = "skipnative export block"
    info = loads(top["skipnative"], path, what)
    if not isinstance(info, dict):
        raise TraceError(path, f"{what} is not an object")
    regions = info.get("regions")  # inline: exports written before region_shards
    shards = info.get("region_shards")
    if shards is not None:
        if regions is not None:
            raise TraceError(path, f"{what} has both regions and region_shards")
        regions = _joined(top, shards, path, f"{what}: region_shards")
    if regions is not None:
        _check_regions(regions, path, f"{what}: regions")
    keys = info.get("latency")
    if keys is None or keys == []:
        return regions, None
    return regions, _latency(top, keys, path, f"{what}: latency", gpu_rows)


def _joined(top: dict[str, str], keys: object, path: str, what: str) -> object:
    """The JSON value whose text the strings in the top-level keys `keys` hold,
    in that order."""
    if not isinstance(keys, list) or not all(isinstance(k, str) and k in top for k in keys):
        raise TraceError(path, f"{what} is not a list of the document's keys")
    parts = []
    for key in keys:
        part = loads(top[key], path, f"{what} shard {key[:40]!r}")
        if not isinstance(part, str):
            raise TraceError(path, f"{what} shard {key[:40]!r} is not a string")
        parts.append(part)
    return loads("".join(parts), path, f"{what} text")


def _check_regions(rows: object, path: str, what: str) -> None:
    if not isinstance(rows, list):
        raise TraceError(path, f"{what} is not a list")
    for i, r in enumerate(rows):
        ok = isinstance(r, list) and len(r) == 4 and isinstance(r[2], str)
        if not ok or not all(_is_i64(t) for t in r[:2]):
            raise TraceError(path, f"{what}[{i}] is not [t_begin, t_end, name, kind] in int64 ns")
        if r[3] not in REGION_KINDS:
            raise TraceError(path, f"{what}[{i}] has kind {str(r[3])[:40]!r}")
        if r[1] < r[0]:
            raise TraceError(path, f"{what}[{i}] ends before it begins")


def _is_i64(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63


def _latency(top: dict[str, str], keys: object, path: str, what: str, rows: int) -> np.ndarray:
    """The (queued, submitted) pairs of the shards named `keys`: exactly `rows`."""
    if not isinstance(keys, list) or not all(isinstance(k, str) and k in top for k in keys):
        raise TraceError(path, f"{what} is not a list of the document's keys")
    parts, left = [], rows * 16
    for key in keys:
        text = loads(top[key], path, f"{what} shard {key[:40]!r}")
        try:
            blob = base64.b64decode(text, validate=True) if isinstance(text, str) else None
            d = zlib.decompressobj()
            raw = d.decompress(blob, left + 1) if blob is not None else None
        except (ValueError, zlib.error):  # binascii.Error is a ValueError
            raw = None
        if raw is not None and len(raw) > left:
            raise TraceError(path, f"{what} holds more pairs than {_edited(rows)}")
        if raw is None or not d.eof or d.unconsumed_tail or len(raw) % 16:
            raise TraceError(
                path, f"{what} shard {key[:40]!r} is not zlib-compressed base64 int64 pairs"
            )
        left -= len(raw)
        parts.append(np.frombuffer(raw, dtype="<i8").reshape(-1, 2))
    if left:
        raise TraceError(path, f"{what} holds fewer pairs than {_edited(rows)}")
    return np.concatenate(parts) if parts else np.zeros((0, 2), dtype="<i8")


def _edited(rows: int) -> str:
    return (
        f"the {rows} GPU rows (an edited export? without its 'skipnative' key "
        "it reads as a plain Kineto trace)"
    )


def source_unchanged(trace: Trace) -> bool:
    """Whether `trace` is what its Kineto source file holds, the file unchanged."""
    o = trace.origin
    if not o or trace.source != "kineto":
        return False
    try:
        st = os.stat(o["path"])
    except OSError:
        return False
    shape = [len(trace.launches), len(trace.gpu), len(trace.ops), len(trace.regions)]
    return (st.st_size, st.st_mtime_ns) == (o["size"], o["mtime_ns"]) and shape == o["shape"]


def _copy_source(trace: Trace, path: str, overwrite: bool) -> int:
    """The source document as it is (inflated or deflated to match `path`)."""
    src = trace.origin["path"]  # type: ignore[index]
    with open(src, "rb") as f:
        gz_in = f.read(2) == b"\x1f\x8b"
    gz_out = path.endswith(".gz")
    with atomic_output(path, overwrite=overwrite) as out:
        opener = gzip.open if gz_in else open
        with opener(src, "rb") as f:
            if gz_out:
                with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
                    shutil.copyfileobj(f, gz, 1 << 20)
            else:
                shutil.copyfileobj(f, out, 1 << 20)
    return int(trace.meta.get("events", 0))
