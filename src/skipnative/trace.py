"""The trace model: columnar numpy tables and a string table.

Native captures and imported Kineto traces produce the same model, so every
metric, file format and export works on both. Times are int64 nanoseconds;
names are int32 ids into ``strings``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# kinds of launch calls (ApiKind of csrc/core/records.h)
API_KINDS = ("kernel", "graph", "copy", "set", "sync", "event", "other")

LAUNCH_DTYPE = np.dtype(
    [
        ("t_begin", "<i8"),
        ("t_end", "<i8"),
        ("correlation", "<i8"),
        ("pid", "<i8"),
        ("tid", "<i8"),
        ("name_id", "<i4"),
        ("cbid", "<i4"),
        ("kind", "u1"),  # index into API_KINDS
    ]
)

GPU_KINDS = ("kernel", "memcpy", "memset")
GPU_DTYPE = np.dtype(
    [
        ("t_start", "<i8"),
        ("t_end", "<i8"),
        ("t_queued", "<i8"),  # 0: unknown
        ("t_submitted", "<i8"),  # 0: unknown
        ("correlation", "<i8"),
        ("device", "<i4"),
        ("stream", "<i8"),
        ("kind", "u1"),  # index into GPU_KINDS
        ("name_id", "<i4"),
        ("graph_id", "<i8"),
        ("graph_node_id", "<i8"),
        ("bytes", "<i8"),
        ("grid", "<i4", (3,)),
        ("block", "<i4", (3,)),
    ]
)

OP_DTYPE = np.dtype(
    [
        ("t_begin", "<i8"),
        ("t_end", "<i8"),
        ("pid", "<i8"),
        ("tid", "<i8"),
        ("name_id", "<i4"),
        ("depth", "<i4"),  # 0: a top-level op
        ("parent", "<i8"),  # row of the enclosing op, -1 at top level
        ("top", "<i8"),  # row of the top-level op that contains it
    ]
)

# "annotation": a record_function / user_annotation range, a region only when named
REGION_KINDS = ("marker", "step", "annotation")
WHOLE_TRACE = "all"  # the pseudo-region of every kernel: no region takes its name
REGION_DTYPE = np.dtype([("t_begin", "<i8"), ("t_end", "<i8"), ("name_id", "<i4"), ("kind", "u1")])

# Waits on a stream's work, where the trace says which (Kineto's cuda_sync events):
# - cudaStreamWaitEvent ("Stream Wait Event"): from the wait call `correlation`
#   on, work on `stream` waits for the work on `on_stream` that was launched
#   before the cudaEventRecord call `record_correlation`;
# - cudaStreamSynchronize ("Stream Sync"): `stream` is HOST_WAITS, the calling
#   thread, which waits for the work on `on_stream` launched before the sync
#   call itself (`record_correlation` is `correlation`);
# - cudaEventSynchronize ("Event Sync"): `stream` is HOST_WAITS, the calling
#   thread, which waits for the work on `on_stream` launched before the
#   cudaEventRecord call `record_correlation`.
HOST_WAITS = -1
WAIT_DTYPE = np.dtype(
    [
        ("correlation", "<i8"),
        ("record_correlation", "<i8"),
        ("device", "<i4"),
        ("stream", "<i8"),
        ("on_stream", "<i8"),
    ]
)

KIND_KERNEL = API_KINDS.index("kernel")
KIND_GRAPH = API_KINDS.index("graph")
KIND_SYNC = API_KINDS.index("sync")
KIND_OTHER = API_KINDS.index("other")
# the launches of SPEC.md §1: kernel, graph, copy and set calls
LAUNCH_KINDS = (KIND_KERNEL, KIND_GRAPH, API_KINDS.index("copy"), API_KINDS.index("set"))

# The one table of CPU calls by kind (SPEC.md §1, §5), CUDA runtime and driver
# names and their HIP twins (torch.profiler on ROCm). Variants ending in _ptsz,
# _ptds or _vN are looked up by their base name (call_kind). The native CUPTI
# table (csrc/cupti/api_table.cpp) must agree with it: a test checks.
CALL_KINDS: dict[str, tuple[str, ...]] = {
    "kernel": (
        "cudaLaunchKernel",
        "cudaLaunchKernelExC",
        "cudaLaunchCooperativeKernel",
        "cudaLaunchCooperativeKernelMultiDevice",
        "cuLaunchKernel",
        "cuLaunchKernelEx",
        "cuLaunchCooperativeKernel",
        "cudaLaunch",  # before CUDA 7 and in old traces
        "cuLaunch",
        "cuLaunchGrid",
        "cuLaunchGridAsync",
        "hipLaunchKernel",
        "hipExtLaunchKernel",
        "hipModuleLaunchKernel",
        "hipExtModuleLaunchKernel",
        "hipHccModuleLaunchKernel",
        "hipLaunchCooperativeKernel",
    ),
    "graph": ("cudaGraphLaunch", "cuGraphLaunch", "hipGraphLaunch"),
    "copy": (
        "cudaMemcpyAsync",
        "cudaMemcpy2DAsync",
        "cudaMemcpy3DAsync",
        "cudaMemcpyPeerAsync",
        "cudaMemcpyFromSymbolAsync",
        "cudaMemcpyToSymbolAsync",
        "cuMemcpyAsync",
        "cuMemcpy2DAsync",
        "cuMemcpy3DAsync",
        "cuMemcpyPeerAsync",
        "cuMemcpyDtoDAsync",
        "cuMemcpyDtoHAsync",
        "cuMemcpyHtoDAsync",
        "hipMemcpyAsync",
        "hipMemcpyWithStream",
        "hipMemcpy2DAsync",
        "hipMemcpy3DAsync",
        "hipMemcpyPeerAsync",
        "hipMemcpyDtoDAsync",
        "hipMemcpyDtoHAsync",
        "hipMemcpyHtoDAsync",
        "hipMemcpyFromSymbolAsync",
        "hipMemcpyToSymbolAsync",
    ),
    "set": (
        "cudaMemsetAsync",
        "cudaMemset2DAsync",
        "cudaMemset3DAsync",
        "cuMemsetD8Async",
        "cuMemsetD16Async",
        "cuMemsetD32Async",
        "cuMemsetD2D8Async",
        "cuMemsetD2D16Async",
        "cuMemsetD2D32Async",
        "hipMemsetAsync",
        "hipMemset2DAsync",
        "hipMemset3DAsync",
        "hipMemsetD8Async",
        "hipMemsetD16Async",
        "hipMemsetD32Async",
    ),
    "sync": (
        "cudaStreamSynchronize",
        "cudaDeviceSynchronize",
        "cudaEventSynchronize",
        "cudaMemcpy",
        "cudaMemcpyFromSymbol",
        "cudaMemcpyToSymbol",
        "cudaMemset",
        "cuStreamSynchronize",
        "cuCtxSynchronize",
        "cuEventSynchronize",
        "cuMemcpy",
        "cuMemcpyHtoD",
        "cuMemcpyDtoH",
        "hipStreamSynchronize",
        "hipDeviceSynchronize",
        "hipEventSynchronize",
        "hipMemcpy",
        "hipMemcpyHtoD",
        "hipMemcpyDtoH",
        "hipMemset",
    ),
    "event": (
        "cudaEventRecord",
        "cudaEventRecordWithFlags",
        "cudaStreamWaitEvent",
        "cuEventRecord",
        "cuEventRecordWithFlags",
        "cuStreamWaitEvent",
        "hipEventRecord",
        "hipEventRecordWithFlags",
        "hipStreamWaitEvent",
    ),
}
_KIND_OF = {name: API_KINDS.index(kind) for kind, names in CALL_KINDS.items() for name in names}
_VARIANT = re.compile(r"(_v\d+)?(_ptsz|_ptds)?$")


def call_kind(name: str) -> int:
    """Index into API_KINDS of a CPU call by its name ("other" when not in CALL_KINDS)."""
    kind = _KIND_OF.get(name)
    if kind is None:
        kind = _KIND_OF.get(_VARIANT.sub("", name), KIND_OTHER)
    return kind


def vendor(trace: Trace) -> str:
    """ "AMD" for a trace recorded on AMD GPUs (HIP calls), "simulated" for a capture
    made on the CUPTI test double (skipnative.testing), else "NVIDIA"."""
    if trace.meta.get("cupti_test_double") is True:
        return "simulated"
    names = trace.strings
    ids = np.unique(trace.launches["name_id"]).tolist() if len(trace.launches) else []
    if any(names[i].startswith("hip") for i in ids):
        return "AMD"
    devs = trace.meta.get("devices") or []
    if any("AMD" in str(d.get("name", "")) for d in devs if isinstance(d, dict)):
        return "AMD"
    return "NVIDIA"


# What a capture counted but did not keep (its metadata's "dropped"), and the
# option whose cap it hit
LOSS_KINDS = {
    "launches": "launch calls (max_launch_bytes)",
    "gpu_rows": "GPU records (max_gpu_records)",
    "cupti": "records CUPTI had no buffer for (max_activity_buffers)",
    "spilled": "records CUPTI wrote to spill buffers (max_activity_buffers)",
    "incomplete": "GPU records delivered unfinished (work still running at the stop)",
    "unallocated": "records no memory could be allocated for (out of memory, not a cap)",
}


def losses(meta: dict[str, Any]) -> dict[str, int]:
    """The records a capture counted but did not keep, by kind (LOSS_KINDS), those
    above zero, from its metadata (a trace's meta): its metrics miss that work."""
    return _counts(meta.get("dropped"), LOSS_KINDS)


def _counts(found: Any, kinds: dict[str, str]) -> dict[str, int]:
    """The counts of `found` (an object of counts, else nothing) named in `kinds`,
    those above zero."""
    if not isinstance(found, dict):
        return {}
    out = {}
    for k in kinds:
        v = found.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            out[k] = int(v)
    return out


# The events a Kineto trace's reader ignored as malformed (its meta's
# "malformed_events"), by the field of the wrong type that broke them
MALFORMED_KINDS = {
    "ph": "'ph' not a one-letter string",
    "cat": "'cat' not a string",
    "args": "'args' not an object",
}


def malformed_events(meta: dict[str, Any]) -> dict[str, int]:
    """The malformed events a Kineto trace's reader ignored, by MALFORMED_KINDS,
    those above zero, from a trace's meta: the metrics miss any work they held."""
    return _counts(meta.get("malformed_events"), MALFORMED_KINDS)


def malformed_warning(found: dict[str, int]) -> str:
    """What the warning of malformed_events() says (once per trace read)."""
    n = sum(found.values())
    parts = ", ".join(f"{v:,} with {MALFORMED_KINDS[k]}" for k, v in found.items())
    return f"{n:,} malformed trace event{'s' * (n != 1)} ignored ({parts})"


def loss_text(lost: dict[str, int]) -> str:
    """One phrase for losses(): "49 GPU records (max_gpu_records), ..." """
    return ", ".join(f"{n:,} {LOSS_KINDS[k]}" for k, n in lost.items())


def loss_warning(lost: dict[str, int]) -> str:
    """What every warning of losses() says (capture, skip analyze, skip run)."""
    return f"the capture dropped {loss_text(lost)}; its metrics miss that work"


class StringTable:
    """Append-only interning table (id 0 is the empty string)."""

    def __init__(self, strings: list[str] | None = None):
        self.strings: list[str] = list(strings) if strings else [""]
        self._ids = {s: i for i, s in enumerate(self.strings)}

    def intern(self, s: str) -> int:
        i = self._ids.get(s)
        if i is None:
            i = len(self.strings)
            self.strings.append(s)
            self._ids[s] = i
        return i


@dataclass
class Trace:
    launches: np.ndarray
    gpu: np.ndarray
    ops: np.ndarray
    regions: np.ndarray
    strings: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    # the file this trace was read from, as it was then (a Kineto export copies it)
    origin: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    # waits on a stream's work (WAIT_DTYPE): none where the source does not record them
    waits: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=WAIT_DTYPE))

    @property
    def source(self) -> str:
        return str(self.meta.get("source", "unknown"))

    def name(self, ids) -> Any:
        """Name(s) for id(s): a name for an integer id, a list for ids. An id that
        is no integer, or outside the string table (a negative one would count
        from its end), is an error naming it."""
        if np.isscalar(ids):
            self._check_ids(np.asarray([ids] if isinstance(ids, (int, np.integer)) else ids))
            return self.strings[int(ids)]  # type: ignore[arg-type]
        if not hasattr(ids, "__len__") and not hasattr(ids, "__iter__"):
            raise TypeError(f"name(): ids are an integer or integers, not {ids!r}")
        arr = np.asarray(ids if hasattr(ids, "__len__") else list(ids))
        self._check_ids(arr)
        return [self.strings[i] for i in arr.reshape(-1).tolist()]

    def _check_ids(self, arr: np.ndarray) -> None:
        if not arr.size:
            return
        if arr.dtype.kind not in "iu":  # a float, a str, a bool, an int past 64 bits
            first = arr.reshape(-1)[0].item()
            raise TypeError(f"name(): an id is an integer in the string table, not {first!r}")
        bad = arr[(arr < 0) | (arr >= len(self.strings))]
        if bad.size:
            raise IndexError(
                f"name(): id {int(bad[0])} is not in the trace's string table "
                f"(ids 0 to {len(self.strings) - 1})"
            )

    @property
    def iterations(self) -> np.ndarray:
        """The step and marker regions (record_function / user_annotation ranges
        are regions only when asked for by name)."""
        return self.regions[self.regions["kind"] != REGION_KINDS.index("annotation")]

    @property
    def kernels(self) -> np.ndarray:
        return self.gpu[self.gpu["kind"] == 0]

    def metrics(
        self,
        region: str | None = None,
        device: int | None = None,
        top: int | None = 10,
        window: tuple[int, int] | None = None,
    ):
        """SKIP metrics (SPEC.md §2–3) per region and device: a list of RegionMetrics
        (with the `top` kernels of each; None: all), of the kernels whose launch
        begins in `window` [t0, t1) ns where given."""
        from skipnative.analysis.metrics import check_arguments, compute_metrics

        check_arguments(self, region, device, top, window)
        return compute_metrics(self, region=region, device=device, top=top, window=window)

    def save(self, path: str, *, overwrite: bool = False) -> None:
        from skipnative.io.skipfile import save

        save(self, path, overwrite=overwrite)

    # pandas views (pandas is optional)
    def launches_df(self):
        return _frame(self, self.launches, "name_id")

    def gpu_df(self):
        return _frame(self, self.gpu, "name_id")

    def regions_df(self):
        return _frame(self, self.regions, "name_id")

    def ops_df(self):
        return _frame(self, self.ops, "name_id")

    def kernels_df(self, region: str | None = None, window: tuple[int, int] | None = None):
        """The per-kernel table (one row per kernel: its launch call, latency parts,
        ops, region and SPEC §2 count) as a pandas DataFrame with categoricals."""
        from skipnative.analysis.kernel_rows import kernel_rows

        return _categorical_frame(kernel_rows(self, region=region, window=window))

    def metrics_frame(self, region: str | None = None, device: int | None = None):
        """The region metrics (Trace.metrics) as a DataFrame: one row per region and
        device, one column per metric."""
        pd = _pandas()
        rows = [
            {"region": r.name, "device": r.device, **r.metrics}
            for r in self.metrics(region=region, device=device, top=0)
        ]
        df = pd.DataFrame(rows)
        if len(df):
            df["bound"] = df["bound"].astype("category")
        return df

    def to_arrow(self, region: str | None = None, window: tuple[int, int] | None = None):
        """The per-kernel table as a pyarrow Table (strings dictionary-encoded)."""
        from skipnative.analysis.kernel_rows import kernel_rows

        return arrow_table(kernel_rows(self, region=region, window=window))

    def __repr__(self) -> str:
        return (
            f"Trace(source={self.source!r}, launches={len(self.launches)}, "
            f"gpu={len(self.gpu)}, ops={len(self.ops)}, regions={len(self.regions)})"
        )


def _pandas():
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - depends on the environment
        msg = (
            "DataFrame views need pandas, which is not installed: pip install 'skipnative[pandas]'"
        )
        raise ImportError(msg, name="pandas") from e
    return pd


# columns of the per-kernel table that hold few distinct strings
CATEGORICAL = ("file", "name", "api", "api_kind", "op", "top_op", "region", "count")


def _categorical_frame(cols: dict[str, Any]):
    pd = _pandas()
    df = pd.DataFrame(cols)
    for c in CATEGORICAL:
        if c in df:
            df[c] = df[c].astype("category")
    return df


def arrow_table(cols: dict[str, Any]):
    """Columns of the per-kernel table as a pyarrow Table (needs pyarrow)."""
    try:
        import pyarrow as pa
    except ImportError as e:  # pragma: no cover - depends on the environment
        msg = (
            "Arrow and Parquet need pyarrow, which is not installed: "
            "pip install 'skipnative[parquet]'"
        )
        raise ImportError(msg, name="pyarrow") from e
    arrays = {}
    for c, v in cols.items():
        if c in CATEGORICAL:
            text = pa.array(v.astype(str) if len(v) else [], type=pa.string())
            arrays[c] = text.dictionary_encode()
        else:
            arrays[c] = pa.array(v)
    return pa.table(arrays)


def _frame(trace: Trace, table: np.ndarray, name_col: str):
    pd = _pandas()
    cols = {}
    for f in table.dtype.names or ():
        col = table[f]
        if col.ndim > 1:
            for j in range(col.shape[1]):
                cols[f"{f}_{'xyz'[j]}"] = col[:, j]
        else:
            cols[f] = col
    df = pd.DataFrame(cols)
    strings = np.asarray(trace.strings, dtype=object)
    df["name"] = pd.Categorical(strings[table[name_col]])
    kinds = _KIND_NAMES.get(table.dtype)
    if kinds is not None and "kind" in df:
        codes = df["kind"].to_numpy().astype(np.int64)
        codes[codes >= len(kinds)] = -1
        df["kind"] = pd.Categorical.from_codes(codes, categories=list(kinds))
    return df


_KIND_NAMES = {LAUNCH_DTYPE: API_KINDS, GPU_DTYPE: GPU_KINDS, REGION_DTYPE: REGION_KINDS}


def empty(dtype: np.dtype) -> np.ndarray:
    return np.zeros(0, dtype=dtype)
