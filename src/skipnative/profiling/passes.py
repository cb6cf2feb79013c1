"""Profiling a PyTorch workload: a timing pass and an attribution pass.

1. Timing pass: skipnative's own CUPTI session and nothing else, ``iters``
   iterations, one region each. These are the numbers reported.
2. Attribution pass: one more iteration under torch.profiler. Its kernels are
   aligned to each timing-pass iteration per stream by order and name
   (skipnative.analysis.alignment), which gives every timed kernel its ATen op
   and top-level op (skipnative.analysis.attribution). The same pass is Kineto's
   measurement of the work, reported beside the native one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np

from skipnative.analysis.attribution import Profile, attribute
from skipnative.capturing.session import CaptureError, capture
from skipnative.io import load

FIDELITY_BLOCKS = 2  # alternating unprofiled / captured blocks of measure_fidelity


def cuda_event_ms(fn: Callable[[], Any]) -> float:
    """One run of `fn`, timed on the GPU by CUDA events around it (ms)."""
    import torch

    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b)


# The floor: what any CUPTI-based kernel timer pays, kernel activity and nothing
# else (no launch records, copies, sets or latency timestamps).
FLOOR_OPTIONS: dict[str, Any] = {
    "kernel_activity": True,
    "launch_callbacks": False,
    "memcpy": False,
    "memset": False,
    "latency_timestamps": False,
}


def measure_fidelity(
    fn: Callable[[], Any],
    reps: int,
    capture_options: dict[str, Any],
    *,
    timer: Callable[[Callable[[], Any]], float] = cuda_event_ms,
    floor: bool = True,
) -> dict[str, Any]:
    """SPEC.md section 6's perturbation of a capture with `capture_options` on `fn`:
    inference latency timed by CUDA events (`timer`), `reps` runs unprofiled and
    `reps` under the capture, in alternating blocks so drift hits both alike
    (each capture first runs `fn` once, untimed: CUPTI's first-launch setup);
    medians. The captures' traces are discarded.

    With `floor`, as many runs again under a kernel-activity-only capture
    (FLOOR_OPTIONS) in the same blocks: ``floor_perturbation`` is the cost any
    CUPTI kernel timer pays, the number the timing pass's is to be read against."""
    if reps < 1:
        raise ValueError("measure_fidelity: reps must be >= 1")
    per = [reps // FIDELITY_BLOCKS + (i < reps % FIDELITY_BLOCKS) for i in range(FIDELITY_BLOCKS)]
    unprofiled: list[float] = []
    profiled: list[float] = []
    floored: list[float] = []
    for n in per:
        unprofiled += [timer(fn) for _ in range(n)]
        profiled += _timed_under(fn, n, capture_options, timer)
        if floor:
            floored += _timed_under(fn, n, FLOOR_OPTIONS, timer)
    un, pr = float(np.median(unprofiled)), float(np.median(profiled))
    out: dict[str, Any] = {
        "reps": reps,
        "il_unprofiled_ms": un,
        "il_profiled_ms": pr,
        "perturbation": pr / un - 1 if un > 0 else None,
    }
    if floor:
        fl = float(np.median(floored))
        out["il_floor_ms"] = fl
        out["floor_perturbation"] = fl / un - 1 if un > 0 else None
    return out


def _timed_under(fn, n: int, options: dict[str, Any], timer) -> list[float]:
    with capture(**options):
        fn()
        _synchronize()
        return [timer(fn) for _ in range(n)]


def measure_kineto_perturbation(
    fn: Callable[[], Any], reps: int, *, timer: Callable[[Callable[[], Any]], float] = cuda_event_ms
) -> float | None:
    """torch.profiler's perturbation of `fn` (CPU and CUDA activities), as
    measure_fidelity's: `reps` runs unprofiled, then `reps` under the profiler
    (after its first, untimed run), medians. Kineto keeps its CUPTI subscriber,
    so this runs after every skipnative capture of the process."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    un = float(np.median([timer(fn) for _ in range(reps)]))
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]):
        fn()
        _synchronize()
        pr = float(np.median([timer(fn) for _ in range(reps)]))
    return pr / un - 1 if un > 0 else None


def _require_cuda_torch(attribution: bool, fidelity_reps: int) -> None:
    """The attribution pass (torch.profiler's CUDA activity) and the fidelity timer
    (CUDA events) need torch with a CUDA device; say so before anything runs."""
    needs = [
        what
        for what, wanted in (
            ("the attribution pass (torch.profiler on the GPU)", attribution),
            ("the fidelity measurement (CUDA events)", fidelity_reps > 0),
        )
        if wanted
    ]
    if not needs:
        return
    why: str | None
    try:
        import torch
    except ImportError:
        why = "torch is not installed"
    else:
        why = (
            None if torch.cuda.is_available() else f"torch {torch.__version__} sees no CUDA device"
        )
    if why is not None:
        raise CaptureError(
            f"{' and '.join(needs)} need{'s' * (len(needs) == 1)} torch with a CUDA device,"
            f" and {why}: profile without them (profile(attribution=False,"
            " fidelity_reps=0); skip profile/sweep "
            "--no-attribution and no --fidelity)"
        )


def profile(
    fn: Callable[[], Any],
    *,
    warmup: int = 3,
    iters: int = 5,
    attribution: bool = True,
    fidelity_reps: int = 0,
    **capture_options: Any,
) -> Profile:
    """Profiles `fn` (one inference iteration) on the current CUDA device.

    The timing pass runs one more iteration than it times, first and unmarked:
    CUPTI sets up activity tracing at the first launch after a session starts
    (that one call took about 2 ms on an H200, 60-85 us on an H100), which would
    otherwise land in the first timed iteration. Only the marked iterations are
    reported.

    With `fidelity_reps` (SPEC.md asks for at least 20), the timing pass's own
    perturbation of `fn` is measured too (measure_fidelity) and reported in
    `Profile.fidelity`, beside the kernel-activity-only floor and, with
    `attribution`, torch.profiler's perturbation of the same work."""
    if not callable(fn):
        raise TypeError(f"profile: fn must be a callable (one iteration), not {fn!r}")
    _count("warmup", warmup, 0)  # a negative one ran no warmup, said nowhere
    _count("iters", iters, 1)  # a trace of no iteration, said nowhere
    _count("fidelity_reps", fidelity_reps, 0)
    _require_cuda_torch(attribution, fidelity_reps)
    for _ in range(warmup):
        fn()
    _synchronize()
    capture_options.setdefault("latency_timestamps", True)
    with capture(**capture_options) as cap:  # the timing pass: before any torch.profiler use
        fn()  # absorbs CUPTI's first-launch setup; not in any iteration region
        _synchronize()
        for i in range(iters):
            cap.mark(f"iter{i}")
            fn()
            # each iteration is one request: without the sync, the next one would
            # queue behind this one's kernels and its IL and TKLQT would include them
            _synchronize()
    native = cap.trace
    fidelity = measure_fidelity(fn, fidelity_reps, capture_options) if fidelity_reps else None
    if not attribution:
        return Profile(native, None, None, fidelity=fidelity)
    import torch
    from torch.profiler import ProfilerActivity, schedule
    from torch.profiler import profile as torch_profile

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "kineto.json")
        with torch_profile(
            activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
            schedule=schedule(wait=0, warmup=1, active=1, repeat=1),
            on_trace_ready=lambda p: p.export_chrome_trace(path),
        ) as prof:
            for _ in range(2):
                fn()
                torch.cuda.synchronize()
                prof.step()
        kineto = load(path)
    if fidelity is not None:  # last: torch.profiler has the subscriber from here on
        fidelity["kineto_perturbation"] = measure_kineto_perturbation(fn, fidelity_reps)
    prof = attribute(native, kineto)
    prof.fidelity = fidelity
    return prof


def _count(name: str, value: Any, least: int) -> None:
    """An int (a numpy one too; not a bool, a float, a str) of at least `least`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"profile: {name} must be an int, not {value!r}")
    if value < least:
        raise ValueError(f"profile: {name} must be >= {least}, not {value}")


def _synchronize() -> None:
    """Waits for the GPU through torch when it drives one (a workload without torch
    synchronises itself)."""
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.synchronize()
