"""A simulated CUPTI for running skipnative without a GPU.

The test double (``libskipnative_cupti_double.so``, installed beside this file)
exports the CUPTI functions skipnative calls and simulates a GPU behind them:
per-stream FIFO execution, a configurable launch-call cost and submission
latency, and activity buffers that run out exactly as CUPTI's do. Point
``SKIPNATIVE_CUPTI_LIBRARY`` at :func:`library_path` before the first capture
in a process (the loader keeps the first libcupti it finds), then drive the
simulated GPU through :class:`SimulatedGpu`.

Time is virtual by default: capture with ``clock="library"`` and every
timestamp is exactly what the simulation says.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

RUNTIME, DRIVER = 0, 1


def _cbid(api: str) -> tuple[int, int]:
    """(domain, cbid) of an API skipnative subscribes to, from the native table."""
    from skipnative import _native

    for domain, cbid, _kind, name in _native.api_table():
        if name == api:
            return domain, cbid
    raise ValueError(f"skipnative does not subscribe to {api!r}")


_DOUBLE = "libskipnative_cupti_double.so"


def library_path() -> str:
    """Path of the CUPTI test double shipped with skipnative (installed beside the
    compiled module's testing/ folder; in an editable install that differs from
    this file's folder)."""
    from skipnative import _native

    for folder in (Path(_native.__file__).parent / "testing", Path(__file__).parent):
        if (folder / _DOUBLE).is_file():
            return str(folder / _DOUBLE)
    raise FileNotFoundError(f"{_DOUBLE} is not installed beside skipnative._native")


class SimulatedGpu:
    """Controls of the loaded test double."""

    def __init__(self, path: str | None = None):
        self.path = path or os.environ.get("SKIPNATIVE_CUPTI_LIBRARY") or library_path()
        lib = ctypes.CDLL(self.path, mode=ctypes.RTLD_GLOBAL)
        u32, u64, i32 = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int
        sigs = {
            "skipnative_double_reset": (None, [u32]),
            "skipnative_double_configure": (None, [u64, u64, u32, i32]),
            "skipnative_double_advance": (None, [u64]),
            "skipnative_double_clock_ns": (u64, []),
            "skipnative_double_hold_subscriber": (None, [i32]),
            "skipnative_double_launch": (u32, [i32, i32, u32, ctypes.c_char_p, u64]),
            "skipnative_double_launch_nested": (
                u32,
                [i32, i32, i32, i32, u32, ctypes.c_char_p, u64],
            ),
            "skipnative_double_finalized": (u64, []),
            "skipnative_double_device_buffer_bytes": (u64, []),
            "skipnative_double_launch_many": (u64, [u64, i32, i32, u32, ctypes.c_char_p, u64]),
            "skipnative_double_graph_launch": (u32, [i32, i32, u32, ctypes.c_char_p, u32, u64]),
            "skipnative_double_copy": (u32, [i32, i32, u32, u64, u64, i32]),
            "skipnative_double_sync": (u32, [i32, i32]),
            "skipnative_double_subscribed": (i32, []),
            "skipnative_double_enabled_callbacks": (i32, []),
            "skipnative_double_enabled_kinds": (i32, []),
            "skipnative_double_latency_enabled": (i32, []),
            "skipnative_double_has_timestamp_callback": (i32, []),
            "skipnative_double_call_timestamp_callback": (u64, []),
            "skipnative_double_records_written": (u64, []),
            "skipnative_double_buffers_requested": (u64, []),
        }
        for name, (res, args) in sigs.items():
            f = getattr(lib, name)
            f.restype, f.argtypes = res, args
        self._lib = lib

    def reset(self, version: int = 130001) -> None:
        """Clears the simulation; `version` picks the record layout (12.x < 130000)."""
        self._lib.skipnative_double_reset(version)

    def configure(self, launch_cost_ns=2000, submit_latency_ns=1000, device=0, real_time=False):
        self._lib.skipnative_double_configure(
            launch_cost_ns, submit_latency_ns, device, int(real_time)
        )

    def now(self) -> int:
        return self._lib.skipnative_double_clock_ns()

    def advance(self, ns: int) -> None:
        """Host work between calls."""
        self._lib.skipnative_double_advance(ns)

    def hold_subscriber(self, held: bool = True) -> None:
        """Simulates another CUPTI subscriber (torch.profiler) in the process."""
        self._lib.skipnative_double_hold_subscriber(int(held))

    def launch(self, name: str, duration_ns: int, stream: int = 7, api="cudaLaunchKernel") -> int:
        dom, cbid = _cbid(api)
        return self._lib.skipnative_double_launch(dom, cbid, stream, name.encode(), duration_ns)

    def launch_nested(
        self, name, duration_ns, stream=7, api="cudaLaunchKernel", inner="cuLaunchKernel"
    ) -> int:
        """A runtime launch that calls the driver's launch API inside, as CUDA does."""
        dom, cbid = _cbid(api)
        idom, icbid = _cbid(inner)
        return self._lib.skipnative_double_launch_nested(
            dom, cbid, idom, icbid, stream, name.encode(), duration_ns
        )

    @property
    def device_buffer_bytes(self) -> int:
        """The CUPTI_ACTIVITY_ATTR_DEVICE_BUFFER_SIZE last set."""
        return self._lib.skipnative_double_device_buffer_bytes()

    @property
    def finalized(self) -> int:
        """How many times cuptiFinalize was called since reset()."""
        return self._lib.skipnative_double_finalized()

    def launch_many(self, count, name, duration_ns, stream=7, api="cudaLaunchKernel") -> int:
        dom, cbid = _cbid(api)
        return self._lib.skipnative_double_launch_many(
            count, dom, cbid, stream, name.encode(), duration_ns
        )

    def graph_launch(self, name, n_kernels, duration_ns, stream=7, api="cudaGraphLaunch") -> int:
        dom, cbid = _cbid(api)
        return self._lib.skipnative_double_graph_launch(
            dom, cbid, stream, name.encode(), n_kernels, duration_ns
        )

    def copy(self, nbytes, duration_ns, stream=7, memset=False) -> int:
        dom, cbid = _cbid("cudaMemsetAsync" if memset else "cudaMemcpyAsync")
        return self._lib.skipnative_double_copy(dom, cbid, stream, nbytes, duration_ns, int(memset))

    def sync(self, api="cudaDeviceSynchronize") -> int:
        dom, cbid = _cbid(api)
        return self._lib.skipnative_double_sync(dom, cbid)

    @property
    def subscribed(self) -> bool:
        return bool(self._lib.skipnative_double_subscribed())

    @property
    def enabled_callbacks(self) -> int:
        return self._lib.skipnative_double_enabled_callbacks()

    @property
    def enabled_activity_kinds(self) -> int:
        return self._lib.skipnative_double_enabled_kinds()

    @property
    def latency_enabled(self) -> bool:
        return bool(self._lib.skipnative_double_latency_enabled())

    @property
    def has_timestamp_callback(self) -> bool:
        return bool(self._lib.skipnative_double_has_timestamp_callback())

    def call_timestamp_callback(self) -> int:
        return self._lib.skipnative_double_call_timestamp_callback()

    @property
    def records_written(self) -> int:
        return self._lib.skipnative_double_records_written()

    @property
    def buffers_requested(self) -> int:
        return self._lib.skipnative_double_buffers_requested()
