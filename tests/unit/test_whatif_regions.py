"""What-if replay keeps every region's kernels, and its predictions physically
possible, at any CPU scale and launch cost the command accepts.

Nothing here is read from the replay's own output as an expected value: a
region's kernels are the measured ones (a CPU-scale or launch-cost change
neither adds nor removes a kernel nor moves one to another step), and a region's
IL (from its start to its last kernel's end) can never be shorter than the time
the GPU was busy running that region's kernels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import skipnative
from realdata import CUDA, ROCM
from skipnative.analysis.kernels import join_kernels
from skipnative.analysis.whatif import replay

B1 = Path(skipnative.__file__).parent / "data" / "h100_llama1b_prefill" / "b1.skip"
TRACES = [B1, ROCM, *CUDA]

# (cpu_scale, launch_add_ns): the extremes the command accepts, and in between
CHANGES = [
    (1e-6, 0),
    (1e-3, 0),
    (0.5, 0),
    (3.0, 0),
    (1e3, 0),
    (1.0, -1_000_000_000),  # launch calls "a second shorter": they cannot go below zero
    (0.5, 1_000_000),  # a millisecond more per launch call
    (1e-6, -1_000_000_000),
]


def _busy_ns(starts: np.ndarray, ends: np.ndarray) -> int:
    """Length of the union of [start, end) intervals: the time the GPU was busy."""
    if len(starts) == 0:
        return 0
    o = np.argsort(starts, kind="stable")
    s, e = starts[o], ends[o]
    reach = np.maximum.accumulate(e)
    # a new busy stretch starts where a kernel starts after everything before ended
    new = np.r_[True, s[1:] > reach[:-1]]
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(s) - 1]
    return int((reach[last] - s[first]).sum())


def _kernel_counts(trace) -> dict:
    return {(r.name, r.device): r.metrics["n_kernels"] for r in trace.metrics(top=0)}


@pytest.fixture(scope="module", params=TRACES, ids=[p.name for p in TRACES])
def measured(request):
    t = skipnative.load(request.param)
    return t, _kernel_counts(t)


@pytest.mark.parametrize("scale,add", CHANGES, ids=[f"x{s:g}{a:+d}ns" for s, a in CHANGES])
def test_every_region_keeps_its_kernels(measured, scale, add):
    t, counts = measured
    p = replay(t, cpu_scale=scale, launch_add_ns=add)
    assert _kernel_counts(p) == counts


@pytest.mark.parametrize("scale,add", CHANGES, ids=[f"x{s:g}{a:+d}ns" for s, a in CHANGES])
def test_predicted_latency_covers_the_gpu_time_of_its_kernels(measured, scale, add):
    t, _ = measured
    p = replay(t, cpu_scale=scale, launch_add_ns=add)
    kt = join_kernels(p)
    il = {(r.name, r.device): r.metrics["il_us"] for r in p.metrics(top=0)}
    windows = [("all", None, None)] + [
        (p.strings[int(r["name_id"])], int(r["t_begin"]), int(r["t_end"])) for r in p.iterations
    ]
    for name, t0, t1 in windows:
        inr = np.ones(len(kt.anchor), bool) if t0 is None else (kt.anchor >= t0) & (kt.anchor < t1)
        for d in np.unique(kt.device[inr]):
            k = inr & (kt.device == d)
            busy_us = _busy_ns(kt.t_start[k], kt.t_end[k]) / 1e3
            assert il[(name, int(d))] >= busy_us - 1e-3, (name, int(d))


def test_a_million_times_faster_cpu_keeps_the_step_of_the_h100_trace():
    # the newcomer's case: one step of 637 kernels and a final synchronize
    t = skipnative.load(B1)
    m = {r.name: r.metrics for r in t.metrics(top=0)}
    p = {r.name: r.metrics for r in replay(t, cpu_scale=1e-6).metrics(top=0)}
    step = next(n for n in m if n != "all")
    assert p[step]["n_kernels"] == m[step]["n_kernels"] == m["all"]["n_kernels"]
    # the step begins at or before its first launch ("all" begins there), and both
    # end with the same last kernel: the step cannot be the shorter one
    assert p[step]["il_us"] >= p["all"]["il_us"]


@pytest.mark.parametrize("path", [B1, ROCM], ids=["b1", "mi250"])
def test_predicted_latency_never_falls_as_the_cpu_slows_down_to_extremes(path):
    t = skipnative.load(path)
    scales = (1e-6, 1e-3, 0.1, 1.0, 10.0, 1e3, 1e6)
    il = []
    for s in scales:
        il.append({r.name: r.metrics["il_us"] for r in replay(t, cpu_scale=s).metrics(top=0)})
    for name in il[0]:
        series = [x[name] for x in il]
        assert series == sorted(series), name


def test_a_schedule_beyond_64_bit_nanoseconds_is_refused():
    t = skipnative.load(B1)
    for kw in ({"cpu_scale": 1e300}, {"launch_add_ns": 10**300}, {"launch_add_ns": -(10**300)}):
        with pytest.raises(ValueError, match="64-bit"):
            replay(t, **kw)
