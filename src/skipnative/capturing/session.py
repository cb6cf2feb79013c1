"""Low-level capture: skipnative's own CUPTI session around a block of code."""

from __future__ import annotations

import atexit
import os
import sys
import warnings
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from skipnative.capturing.loader import available, native, wheel_cupti_dirs
from skipnative.capturing.waits import lost_any, waits_from_events
from skipnative.trace import (
    GPU_DTYPE,
    LAUNCH_DTYPE,
    OP_DTYPE,
    REGION_DTYPE,
    WHOLE_TRACE,
    StringTable,
    Trace,
    loss_warning,
    losses,
)


class CaptureError(RuntimeError):
    """A capture could not start or stop; the message says why."""


# Captures still running at interpreter exit are stopped (flushed) then, so a
# script that forgets stop() leaves CUPTI detached and loses nothing it recorded.
# Only in the process that started them: a forked child that exits must leave
# the CUPTI state it inherited from its parent alone.
_running: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_running_captures() -> None:
    for cap in list(_running):
        if cap._pid != os.getpid():
            continue
        try:
            if cap.active:
                cap._session.stop()
        except Exception:  # at exit there is no one left to tell
            pass


def native_library(name: str) -> str:
    """Path of a shared library installed beside skipnative._native (the injection
    library of `skip run`, the launch hooks); CaptureError where it is missing."""
    mod, why = native()
    if mod is None:
        raise CaptureError(why)
    path = Path(mod.__file__).parent / name
    if not path.is_file():
        raise CaptureError(f"{path} is not installed beside skipnative._native")
    return str(path)


def launch_hooks_library() -> str:
    """Path of libskipnative_hooks.so, to preload (``LD_PRELOAD``) into a process
    before it loads CUDA, for ``launch_records="hook"``."""
    return native_library("libskipnative_hooks.so")


_COPY_NAMES = {0: "Memcpy Unknown", 1: "Memcpy HtoD", 2: "Memcpy DtoH", 8: "Memcpy DtoD"}


class Capture:
    """A CUPTI capture session: launch-call enter/exit and GPU activity.

    Use as ``with skipnative.capture() as cap: ...``; after the block,
    ``cap.trace`` holds the result. ``cap.mark(name)`` starts a region (an
    iteration) at the current time. The first launch after the capture starts
    carries CUPTI's one-time setup (about 2 ms measured on an H200, 60-85 us on
    an H100): run one unmarked iteration before the marked ones.

    A capture holds the launch calls that began between start() and the call to
    stop(), and their GPU work. Calls outside that window (another thread's
    calls go on being recorded while stop() flushes) are left out with their
    GPU rows, and counted: ``metadata["launches_outside"]`` and
    ``metadata["gpu_rows_outside"]``. Options:

    - ``clock``: "auto" (TSC on x86-64 with an invariant TSC, cntvct on aarch64,
      else CLOCK_MONOTONIC_RAW; on the CUPTI test double its simulated time,
      "library"), or one of those by name;
    - ``latency_timestamps``: CUPTI's queued/submitted kernel timestamps;
    - ``activity_buffer_bytes`` / ``max_activity_buffers``: the activity-buffer
      pool. Past it, records are counted, not kept: CUPTI 12.9 and newer is
      refused a buffer and counts what it drops (``metadata["dropped"]["cupti"]``);
      older CUPTI, which may crash when refused, gets a spill buffer whose
      records are counted (``metadata["dropped"]["spilled"]``);
    - ``max_launch_bytes``: memory cap of the launch-record buffers;
    - ``max_gpu_records``: cap on decoded kernel/copy rows (and ``stream_waits``'
      event rows). Records lost where memory could not be allocated, below every
      cap, are counted apart (``metadata["dropped"]["unallocated"]``);
    - ``kernel_activity`` / ``memcpy`` / ``memset`` / ``launch_callbacks`` /
      ``api_domains``: what to record (for measuring the cost of each part);
    - ``launch_chunk_records``: launch records per buffer chunk;
    - ``launch_records``: where launch-call times come from: "callbacks"
      (skipnative's enter/exit callbacks, the default) or "activity" (CUPTI's
      API activity records for the same launch APIs, by cbid; CUPTI takes the
      timestamps in the session's clock) or "hook" (the driver's launch, copy,
      set, sync and event entry points wrapped where libraries resolve them,
      cuGetProcAddress and dlsym on libcuda: no CUPTI callback; launches are
      joined to kernels by CUPTI external correlation ids; rows name the driver
      entry point). "hook" needs :func:`launch_hooks_library` preloaded
      (``LD_PRELOAD``) before CUDA is loaded; without it the capture warns,
      uses the callbacks, and says why in ``metadata["launch_hook_fallback"]``;
    - ``hook_join``: how a "hook" capture pairs launches with their GPU work:
      "external" (the default: CUPTI external correlation records, which CUPTI
      writes only beside API activity records, so those are enabled for the
      hooked calls, at their cost) or "order" (no CUPTI record beyond the GPU
      activity: each call's stream is looked up once per stream, thread and
      session, and calls and work are paired in each stream's order; calls into
      a stream capturing a graph and failed calls enqueue nothing and are left
      out). With ``latency_timestamps`` each kernel's queued time, which lies in
      its own call's span, checks its pair. Its counts, in ``metadata``:
      ``launches_unjoined``, ``work_unjoined``, ``launches_captured``,
      ``launches_failed``, and of the pairs ``pairs_checked`` (by queued time),
      ``pairs_ambiguous`` (queued inside two overlapping calls' spans: calls on
      one stream from several threads) and ``pairs_unverified`` (paired by
      order and kind alone near a call or work that went unpaired, which may
      have shifted them); the other pairs are by order with nothing missing;
    - ``device_buffer_bytes``: CUPTI's device-side record buffer (fewer flushes;
      CUPTI applies it to device buffers it allocates from then on, so it counts
      fully when set before the process's CUDA context exists);
    - ``hw_trace``: kernel timestamps from the Hardware Event System instead of
      software instrumentation (Blackwell GPUs, CUPTI 13.4 Update 1 or newer;
      started before the process's CUDA context exists, flushed every 100 ms;
      refused with the reason under MPS, MIG, confidential computing, with
      ``latency_timestamps`` and on older CUPTI). Unmeasured so far;
    - ``overhead_records``: CUPTI's own overhead records
      (CUPTI_ACTIVITY_KIND_OVERHEAD: its instrumentation of each kernel, buffer
      flushes and requests, full command buffers, ...), summed by kind in
      ``metadata["cupti_overhead"]`` (``{"CUPTI_INSTRUMENTATION": {"count": n,
      "ns": t}, ...}``); for finding where a capture's cost goes;
    - ``stream_waits``: CUPTI's CUDA event and synchronisation records, so that
      ``trace.waits`` says which ``cudaEventRecord`` each ``cudaStreamWaitEvent``
      waits on, and which stream each ``cudaStreamSynchronize`` waits for
      (``skip whatif`` keeps those waits). Off by default: CUPTI then
      records every event call and synchronisation, a cost not yet measured on
      a GPU. Needs ``launch_records`` "callbacks" or "activity";
    - ``device_buffer_pre_allocate`` / ``device_buffer_pool_limit``: CUPTI's
      DEVICE_BUFFER_PRE_ALLOCATE_VALUE and DEVICE_BUFFER_POOL_LIMIT (device
      buffers allocated up front, not on a launching thread; 0: CUPTI's);
    - ``activity_buffers_pooled``: host activity buffers allocated and zeroed
      at start (CUPTI is told they are zero: ZEROED_OUT_ACTIVITY_BUFFER), not at
      CUPTI's first requests on a launching thread;
    - ``completion_cpu``: run CUPTI's buffer-completion work (decoding) on this
      CPU, off the launching threads' cores (-1: wherever CUPTI runs it); the
      thread that calls stop(), and any thread that launched, completes
      buffers where it runs (it is never pinned);
    - ``serial_kernels``: record kernels as CUPTI_ACTIVITY_KIND_KERNEL, which
      serialises them (no two kernels overlap), instead of CONCURRENT_KERNEL;
      for single-stream work the two record the same, at a cost to compare;
    - ``device_buffer_host_pinned``: CUPTI's device-side record buffer in
      pinned host memory (CUPTI's default: device memory);
    - ``finalize``: detach CUPTI at stop (cuptiFinalize). Default (None): on
      CUPTI 12.6 and newer, where re-attaching is safe. Left attached, CUPTI
      slows every later launch;
    - ``synchronize`` (Python only): wait for queued torch GPU work before stop.

    Every option but ``synchronize`` is reported by name in ``metadata``.
    """

    def __init__(
        self,
        *,
        clock: str = "auto",
        latency_timestamps: bool = False,
        memcpy: bool = True,
        memset: bool = True,
        kernel_activity: bool = True,
        launch_callbacks: bool = True,
        launch_records: str = "callbacks",
        hook_join: str = "external",
        api_domains: tuple[str, ...] = ("runtime", "driver"),
        finalize: bool | None = None,
        device_buffer_bytes: int = 0,
        hw_trace: bool = False,
        overhead_records: bool = False,
        stream_waits: bool = False,
        serial_kernels: bool = False,
        device_buffer_host_pinned: bool = False,
        device_buffer_pre_allocate: int = 0,
        device_buffer_pool_limit: int = 0,
        activity_buffer_bytes: int = 4 << 20,
        max_activity_buffers: int = 64,
        activity_buffers_pooled: int = 0,
        completion_cpu: int = -1,
        max_launch_bytes: int = 512 << 20,
        launch_chunk_records: int = 16384,
        max_gpu_records: int = 64 << 20,
        synchronize: bool = True,
    ):
        if hook_join != "external" and launch_records != "hook":
            raise ValueError(f"hook_join={hook_join!r} needs launch_records='hook'")
        if not isinstance(synchronize, (bool, np.bool_)):
            raise TypeError(f"synchronize: expected True or False, not {synchronize!r}")
        mod, why = native()
        if mod is None:
            raise CaptureError(why)
        # Passed by name: the native list of options (cupti/session.h) is the
        # one definition; tests check this signature against it.
        given = locals()
        options = {name: given[name] for name in mod.capture_options()}
        if isinstance(api_domains, str):  # one domain named alone
            options["api_domains"] = [api_domains]
        elif isinstance(api_domains, Iterable):  # a set, a generator: names checked natively
            options["api_domains"] = list(api_domains)
        self._mod = mod
        self._synchronize = synchronize
        self._hooked = launch_records == "hook"  # stop() checks the hooks saw launches
        self._session = mod.Session({**options, "wheel_dirs": wheel_cupti_dirs()})
        self._trace: Trace | None = None
        self._pid = os.getpid()
        self._failed = ""  # why start() failed: there is no trace, not an empty one

    def start(self) -> Capture:
        fresh = not (self._session.active or self._session.finished)
        try:
            self._session.start()
        except self._mod.CaptureError as e:
            why = _start_failure(self._mod, str(e))
            if fresh and self._session.finished:  # it ended unstarted, not refused a start
                self._failed = why
            raise CaptureError(why) from None
        self._pid = os.getpid()
        _running.add(self)
        fallback = self._session.metadata().get("launch_hook_fallback")
        if fallback:
            try:
                warnings.warn(
                    f"launch_records='hook' not possible, launches recorded by callbacks: "
                    f"{fallback}",
                    RuntimeWarning,
                    stacklevel=2,
                )
            except BaseException:  # warnings as errors: start() fails, so nothing runs on
                self._stop()
                raise
        return self

    def stop(self) -> Trace:
        """Stops the capture and returns its trace."""
        self._stop()
        return self.trace

    def _stop(self) -> None:
        if os.getpid() != self._pid:
            raise CaptureError(
                "this capture was started in the parent process; after fork() it records "
                "nothing in the child, and only the parent can stop it"
            )
        # A failed synchronisation (a CUDA error, which stays for every later call)
        # is raised once the session has stopped: CUPTI is released either way.
        sync_error: BaseException | None = None
        if self._synchronize:
            try:
                _synchronize_torch()
            except BaseException as e:
                sync_error = e
        try:
            self._session.stop()
        except self._mod.CaptureError as e:
            raise CaptureError(str(e)) from sync_error
        finally:
            _running.discard(self)
        self._trace = None  # built on first access of .trace
        try:
            self._warn_after_stop()
        finally:
            if sync_error is not None:
                raise sync_error

    def _warn_after_stop(self) -> None:
        lost = losses(self._session.metadata())
        if lost:
            capped = set(lost) - {"incomplete", "unallocated"}  # past a cap: the cap is named
            warnings.warn(
                loss_warning(lost) + (" (raise the cap named)" if capped else ""),
                RuntimeWarning,
                stacklevel=4,
            )
        kernels = len(self._session.kernels()) if self._hooked else 0
        launches = len(self._session.launches()) if kernels else 1
        if not launches and self._session.metadata().get("launch_source") == "hook":
            warnings.warn(
                f"the launch hooks recorded no launch call while {kernels} kernels ran: work "
                "launched other than through the CUDA driver's entry points (simulate_cuda()'s "
                "gpu.launch, a library loaded with dlmopen) is not seen by the hooks",
                RuntimeWarning,
                stacklevel=4,
            )

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if self._session.active and os.getpid() == self._pid:
            try:
                self._stop()
            except CaptureError:
                # another thread stopped it meanwhile (its stop() waited for that one
                # to finish): the trace is there
                if not self._session.finished:
                    raise
            except Warning:
                # a warning of the stop made an error (-W error), raised once the
                # session had stopped: the exception that ended the block goes on
                if exc_type is None:
                    raise

    def mark(self, name: str) -> None:
        """A timestamped marker: starts a region named `name` (a str; a lone
        surrogate in it, which has no UTF-8 form, is kept as the replacement
        characters that a trace file's reader gives it)."""
        if name == WHOLE_TRACE:
            raise ValueError(
                f"{name!r} names the whole trace in every table; give the marker another name"
            )
        try:
            self._session.mark(name)
        except self._mod.CaptureError as e:
            raise CaptureError(str(e)) from None

    @property
    def active(self) -> bool:
        return self._session.active

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._session.metadata())

    def raw(self) -> dict[str, np.ndarray]:
        """The native tables as numpy structured arrays (session clock ns).

        Read-only views of the session's own tables (``cap.trace`` is built from
        them), so only after stop(): before, CaptureError.
        """
        s = self._session
        if self._failed:
            raise CaptureError(f"the capture did not start ({self._failed}); it has no trace")
        try:
            tables = ("launches", "kernels", "copies", "markers", "events")
            return {t: getattr(s, t)() for t in tables}
        except self._mod.CaptureError as e:
            raise CaptureError(str(e)) from None

    @property
    def trace(self) -> Trace:
        if self._failed:
            self.raw()  # says why there is none
        if not self._session.finished:
            raise CaptureError("the capture has not finished; its trace exists after stop()")
        if self._trace is None:
            self._trace = _to_trace(self._mod, self._session, self.raw())
            _warn_negative_launch_to_start(self._trace)
        return self._trace


def _warn_negative_launch_to_start(trace: Trace) -> None:
    """SPEC.md section 2: a native capture must have no kernel that starts before its
    launch call began; one that does means the call and activity timestamps were on
    different clocks (or the clock went wrong), so every TKLQT figure is suspect."""
    ln, g = trace.launches, trace.gpu
    if not len(ln) or not len(g):
        return
    order = np.argsort(ln["correlation"], kind="stable")
    corr = ln["correlation"][order]
    at = np.clip(np.searchsorted(corr, g["correlation"]), 0, len(corr) - 1)
    joined = corr[at] == g["correlation"]
    begin = ln["t_begin"][order][at]
    negative = int(np.count_nonzero(joined & (g["t_start"] < begin)))
    if negative:
        worst = int((g["t_start"] - begin)[joined].min())
        warnings.warn(
            f"{negative} of {int(joined.sum())} GPU records start before the launch call "
            f"that issued them began (by up to {-worst / 1e3:,.1f} us): the capture's clock "
            f"({trace.meta.get('clock')}) and CUPTI's timestamps disagree; its launch-to-start "
            "times are not to be trusted",
            RuntimeWarning,
            stacklevel=3,
        )


def _start_failure(mod: Any, message: str) -> str:
    """Why a start failed. CUPTI's own word for a missing CUDA driver or device is
    CUPTI_ERROR_UNKNOWN; there, available()'s reason (which names it) is given."""
    info = mod.load_cupti(wheel_cupti_dirs())
    if info.get("loaded") and not info.get("test_double") and not mod.probe_driver()[0]:
        return available()[1]
    return message


def capture(**options: Any) -> Capture:
    """``with skipnative.capture() as cap:`` — see :class:`Capture` for options."""
    return Capture(**options)


def _synchronize_torch() -> None:
    """Waits for queued GPU work, so stop() sees its records (torch only, if in use)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _to_trace(mod, session, raw: dict[str, np.ndarray]) -> Trace:
    native_strings = session.strings()
    strings = StringTable(native_strings)
    pid = os.getpid()

    api_names = {(d, c): n for d, c, _k, n in mod.api_table()}
    lr = raw["launches"]
    launches = np.zeros(len(lr), dtype=LAUNCH_DTYPE)
    launches["t_begin"] = lr["t_begin"]
    launches["t_end"] = lr["t_end"]
    launches["correlation"] = lr["correlation"]
    launches["pid"] = pid
    launches["tid"] = lr["tid"]
    launches["cbid"] = lr["cbid"]
    launches["kind"] = lr["kind"]
    if len(lr):
        keys = lr["domain"].astype(np.int64) << 32 | lr["cbid"].astype(np.int64)
        uniq, inv = np.unique(keys, return_inverse=True)
        ids = np.array(
            [
                strings.intern(api_names.get((int(k >> 32), int(k & 0xFFFFFFFF)), f"cbid {k}"))
                for k in uniq
            ],
            dtype=np.int32,
        )
        launches["name_id"] = ids[inv]

    kr, cr = raw["kernels"], raw["copies"]
    gpu = np.zeros(len(kr) + len(cr), dtype=GPU_DTYPE)
    k = gpu[: len(kr)]
    for f in ("t_start", "t_end", "t_queued", "t_submitted", "device", "stream", "graph_id"):
        k[f] = kr[f]
    k["correlation"] = kr["correlation"]
    k["graph_node_id"] = kr["graph_node_id"]
    k["name_id"] = kr["name_id"]
    k["grid"] = kr["grid"]
    k["block"] = kr["block"]
    c = gpu[len(kr) :]
    for f in ("t_start", "t_end", "device", "stream", "bytes", "graph_id", "graph_node_id"):
        c[f] = cr[f]
    c["correlation"] = cr["correlation"]
    c["kind"] = np.where(cr["is_set"] == 1, 2, 1)
    copy_labels = [(cr["is_set"] == 1, "Memset (Device)")]
    copy_labels += [
        ((cr["is_set"] == 0) & (cr["copy_kind"] == k), v) for k, v in _COPY_NAMES.items()
    ]
    copy_labels.append(
        ((cr["is_set"] == 0) & ~np.isin(cr["copy_kind"], list(_COPY_NAMES)), "Memcpy")
    )
    for mask, label in copy_labels:
        if mask.any():
            c["name_id"][mask] = strings.intern(label)
    gpu = gpu[np.argsort(gpu["t_start"], kind="stable")]

    meta = dict(session.metadata())
    mr = raw["markers"]
    order = np.argsort(mr["t"], kind="stable")
    mr = mr[order]
    regions = np.zeros(len(mr), dtype=REGION_DTYPE)
    regions["t_begin"] = mr["t"]
    regions["t_end"] = np.append(mr["t"][1:], meta["t_stop_ns"]) if len(mr) else []
    regions["name_id"] = mr["name_id"]
    regions["kind"] = 0

    meta.update(
        source="skipnative",
        pid=pid,
        time_unit="ns",
        clock_domain="session",
    )
    double = bool(meta.get("cupti_test_double"))
    names: list[str] = [] if double else mod.device_names()
    unnamed = "simulated GPU (CUPTI test double)" if double else "unknown"
    used = sorted({int(d) for d in gpu["device"]})
    meta["devices"] = [{"id": d, "name": names[d] if d < len(names) else unnamed} for d in used]
    return Trace(
        launches=launches,
        gpu=gpu,
        ops=np.zeros(0, dtype=OP_DTYPE),
        regions=regions,
        strings=strings.strings,
        meta=meta,
        waits=waits_from_events(raw["events"], gpu, lossy=lost_any(meta)),
    )
