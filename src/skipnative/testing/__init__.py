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

:func:`simulate_cuda` adds a CUDA driver and runtime on the same simulated GPU
(``libskipnative_cuda_double.so`` and ``libskipnative_cudart_double.so``, with
the SONAMEs ``libcuda.so.1`` and ``libcudart.so.13``): the launch benchmarks
(``skip bench launch``) then run without a GPU.
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
_DRIVER = "libskipnative_cuda_double.so"
_RUNTIME = "libskipnative_cudart_double.so"


def library_path(name: str = _DOUBLE) -> str:
    """Path of a test double shipped with skipnative (the CUPTI one by default),
    installed in the compiled module's testing/ folder (in an editable install
    that differs from this file's folder)."""
    from skipnative import _native

    for folder in (Path(_native.__file__).parent / "testing", Path(__file__).parent):
        if (folder / name).is_file():
            return str(folder / name)
    raise FileNotFoundError(f"{name} is not installed beside skipnative._native")


def load_cupti_double() -> dict:
    """Loads the CUPTI double as this process's libcupti (the loader keeps the first
    one it loads) and returns the loader's report. No wheel folders are searched,
    so a real libcupti from an nvidia-cuda-cupti wheel is not preferred; the
    variable naming the double is set only while loading, so subprocesses do not
    inherit it."""
    from skipnative import _native

    old = os.environ.get("SKIPNATIVE_CUPTI_LIBRARY")
    os.environ["SKIPNATIVE_CUPTI_LIBRARY"] = library_path()
    try:
        return dict(_native.load_cupti([]))
    finally:
        if old is None:
            del os.environ["SKIPNATIVE_CUPTI_LIBRARY"]
        else:
            os.environ["SKIPNATIVE_CUPTI_LIBRARY"] = old


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
            "skipnative_double_flush_delay": (None, [u64]),
            "skipnative_double_incomplete_next": (None, [u32]),
            "skipnative_double_fail_allocations": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_int64]),
            "skipnative_double_launch": (u32, [i32, i32, u32, ctypes.c_char_p, u64]),
            "skipnative_double_launch_nested": (
                u32,
                [i32, i32, i32, i32, u32, ctypes.c_char_p, u64],
            ),
            "skipnative_double_finalized": (u64, []),
            "skipnative_double_device_buffer_bytes": (u64, []),
            "skipnative_double_zeroed_buffers": (i32, []),
            "skipnative_double_host_pinned": (i32, []),
            "skipnative_double_api_records_enabled": (u64, []),
            "skipnative_double_callbacks_enabled": (u64, []),
            "skipnative_double_kind_enabled": (i32, [i32]),
            "cuptiActivityFlushAll": (i32, [u32]),
            "skipnative_double_dirty_buffers": (u64, []),
            "skipnative_double_launch_many": (u64, [u64, i32, i32, u32, ctypes.c_char_p, u64]),
            "skipnative_double_graph_launch": (u32, [i32, i32, u32, ctypes.c_char_p, u32, u64]),
            "skipnative_double_copy": (u32, [i32, i32, u32, u64, u64, i32]),
            "skipnative_double_sync": (u32, [i32, i32]),
            "skipnative_double_event_record": (u32, [i32, i32, u32, u32]),
            "skipnative_double_stream_wait_event": (u32, [i32, i32, u32, u32]),
            "skipnative_double_stream_sync": (u32, [i32, i32, u32]),
            "skipnative_double_event_sync": (u32, [i32, i32, u32]),
            "skipnative_double_set_queue_depth": (None, [u32]),
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

    def set_queue_depth(self, depth: int) -> None:
        """At most `depth` unfinished kernels per stream (0: unbounded): a launch
        into a full stream waits inside the call, as CUDA's does."""
        self._lib.skipnative_double_set_queue_depth(depth)

    def hold_subscriber(self, held: bool = True) -> None:
        """Simulates another CUPTI subscriber (torch.profiler) in the process."""
        self._lib.skipnative_double_hold_subscriber(int(held))

    def incomplete_next(self, n: int) -> None:
        """The next `n` GPU records are delivered unfinished (an end of 0), as
        CUPTI's forced flush may deliver work still running at a stop."""
        self._lib.skipnative_double_incomplete_next(n)

    def fail_allocations(self, what: str, n: int = -1) -> None:
        """The next `n` of skipnative's allocations named `what` fail, as out of
        memory (n < 0: all of them; 0: none): "launch_thread" (a thread's launch
        buffer), "launch_flag" (a thread's record flag), "launch_chunk" (a launch
        chunk past the preallocated ones), "activity_buffer", "gpu_row" (a decoded
        kernel's row). reset() clears it. ValueError for any other name."""
        if not self._lib.skipnative_double_fail_allocations(what.encode(), n):
            raise ValueError(f"no allocation of skipnative is named {what!r}")

    def flush_delay(self, ns: int) -> None:
        """Makes every activity flush take `ns` of real time (a slow flush at stop)."""
        self._lib.skipnative_double_flush_delay(ns)

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

    def deliver_buffers(self) -> None:
        """Hands every filled activity buffer back now, as CUPTI's worker thread does
        during a capture (otherwise they come back at the capture's final flush)."""
        self._lib.cuptiActivityFlushAll(0)

    @property
    def zeroed_buffers(self) -> bool:
        """Whether CUPTI_ACTIVITY_ATTR_ZEROED_OUT_ACTIVITY_BUFFER is set."""
        return bool(self._lib.skipnative_double_zeroed_buffers())

    @property
    def host_pinned(self) -> bool:
        """Whether CUPTI_ACTIVITY_ATTR_MEM_ALLOCATION_TYPE_HOST_PINNED is set."""
        return bool(self._lib.skipnative_double_host_pinned())

    @property
    def api_records_enabled(self) -> int:
        """How many (domain, cbid) pairs have API activity records enabled by cbid."""
        return int(self._lib.skipnative_double_api_records_enabled())

    @property
    def callbacks_enabled(self) -> int:
        """How many (domain, cbid) callbacks the subscriber has enabled now."""
        return int(self._lib.skipnative_double_callbacks_enabled())

    def kind_enabled(self, kind: int) -> bool:
        """Whether the CUpti_ActivityKind `kind` is enabled now."""
        return bool(self._lib.skipnative_double_kind_enabled(kind))

    @property
    def dirty_buffers(self) -> int:
        """Activity buffers handed over as zeroed that were not (since reset())."""
        return self._lib.skipnative_double_dirty_buffers()

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

    def stream_sync(self, stream: int = 7, api="cudaStreamSynchronize") -> int:
        """Returns when `stream`'s work so far has ended; other streams run on."""
        dom, cbid = _cbid(api)
        return self._lib.skipnative_double_stream_sync(dom, cbid, stream)

    def event_sync(self, event: int, api="cudaEventSynchronize") -> int:
        """Returns when the work `event`'s latest record waits for has ended."""
        dom, cbid = _cbid(api)
        return self._lib.skipnative_double_event_sync(dom, cbid, event)

    def event_record(self, event: int, stream: int = 7, api="cudaEventRecord") -> int:
        """Records `event` on `stream`: it completes when the stream's work so far ends."""
        dom, cbid = _cbid(api)
        return self._lib.skipnative_double_event_record(dom, cbid, stream, event)

    def stream_wait_event(self, event: int, stream: int, api="cudaStreamWaitEvent") -> int:
        """Makes `stream`'s later work wait for `event`'s latest record."""
        dom, cbid = _cbid(api)
        return self._lib.skipnative_double_stream_wait_event(dom, cbid, stream, event)

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


class SimulatedCuda(SimulatedGpu):
    """The simulated GPU with the CUDA driver and runtime doubles in front of it."""

    def __init__(self, driver_path: str):
        super().__init__(library_path())
        lib = ctypes.CDLL(driver_path, mode=ctypes.RTLD_GLOBAL)
        lib.skipnative_cuda_double_fail.argtypes = [ctypes.c_char_p, ctypes.c_int]
        lib.skipnative_cuda_double_fail.restype = None
        lib.skipnative_cuda_double_set_kernel_ns.argtypes = [ctypes.c_uint64]
        lib.skipnative_cuda_double_set_kernel_ns.restype = None
        lib.skipnative_cuda_double_live.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.skipnative_cuda_double_live.restype = ctypes.c_int
        self._driver = lib

    def fail(self, function: str, code: int) -> None:
        """Makes every later call of a driver or runtime `function` return the CUDA
        error `code` (0: succeed again)."""
        self._driver.skipnative_cuda_double_fail(function.encode(), code)

    def set_kernel_ns(self, ns: int) -> None:
        """GPU time of a kernel without parameters (the null kernel)."""
        self._driver.skipnative_cuda_double_set_kernel_ns(ns)

    def live(self) -> dict[str, int]:
        """Modules and libraries loaded, and primary-context references held, now."""
        return {
            "modules": self._driver.skipnative_cuda_double_live(0, 0),
            "context_refs": self._driver.skipnative_cuda_double_live(1, 0),
        }


def simulate_cuda(*, runtime: bool = True) -> SimulatedCuda:
    """Makes this process see a simulated CUDA: the driver double (and the runtime
    double) are loaded, so a later dlopen of ``libcuda.so.1`` (``libcudart.so.13``)
    returns them, and the CUPTI double is loaded as this process's libcupti (the
    loader keeps the first one). Irreversible; call it before anything in the
    process loads CUDA or CUPTI, and do not mix it with a real driver.
    """
    info = load_cupti_double()
    if not info.get("test_double"):
        raise RuntimeError(f"another libcupti is already loaded in this process: {info}")
    sim = SimulatedCuda(library_path(_DRIVER))
    if runtime:
        ctypes.CDLL(library_path(_RUNTIME), mode=ctypes.RTLD_GLOBAL)
    return sim
