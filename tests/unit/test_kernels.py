"""Kernel selection (one helper for metrics, fusion, what-if and the alignment)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import skipnative
from kineto_gen import kernel, launch, step, write
from skipnative.analysis.kernels import (
    ANY_REGION,
    in_regions,
    join_kernels,
    queued_at_return,
    select_kernels,
)
from skipnative.trace import GPU_DTYPE


@pytest.fixture
def trace(tmp_path):
    """Six kernels launched 100 us apart, alternating devices 0 and 1; steps
    cover the first two and the next two launches."""
    ev = [step(0, 200, 1), step(200, 200, 2)]
    for i in range(6):
        ev.append(launch(i * 100 + 1, 5, i + 1))
        ev.append(kernel(i * 100 + 20, 5, i + 1, f"k{i}", device=i % 2))
    return skipnative.load(write(tmp_path / "t.json", ev))


def names(t, kt, sel):
    return [t.strings[n] for n in kt.name_id[sel]]


def test_select_by_region_device_window_and_rank(trace):
    kt = join_kernels(trace)
    assert names(trace, kt, select_kernels(trace, kt)) == [f"k{i}" for i in range(6)]
    assert names(trace, kt, select_kernels(trace, kt, region="ProfilerStep#2")) == ["k2", "k3"]
    assert names(trace, kt, select_kernels(trace, kt, region=ANY_REGION)) == [
        "k0",
        "k1",
        "k2",
        "k3",
    ]
    assert in_regions(trace, kt).tolist() == select_kernels(trace, kt, region=ANY_REGION).tolist()
    assert names(trace, kt, select_kernels(trace, kt, region=ANY_REGION, device=1)) == ["k1", "k3"]
    lb = np.sort(trace.launches["t_begin"])
    window = (int(lb[3]), int(lb[5]))
    assert names(trace, kt, select_kernels(trace, kt, window=window)) == ["k3", "k4"]
    assert select_kernels(trace, kt, rank=0).all()  # a trace without a rank is rank 0
    assert not select_kernels(trace, kt, rank=1).any()
    ranked = replace(trace, meta={**trace.meta, "rank": 1})
    assert select_kernels(ranked, kt, rank=1).all()
    with pytest.raises(ValueError, match="no region named 'x'"):
        select_kernels(trace, kt, region="x")


def test_any_region_of_a_trace_without_regions_is_every_kernel(trace):
    bare = replace(trace, regions=trace.regions[:0])
    kt = join_kernels(bare)
    assert in_regions(bare, kt).all()


def test_queued_means_the_stream_predecessor_outlived_the_launch_call():
    g = np.zeros(3, dtype=GPU_DTYPE)
    g["t_start"], g["t_end"] = [0, 100, 300], [200, 250, 400]
    launched = np.array([True, True, False])
    l_end = np.array([0, 150, 260])  # the second returns while the first still runs
    so, prev_end, queued = queued_at_return(g, launched, l_end)
    assert so.tolist() == [0, 1, 2]
    assert prev_end[1:].tolist() == [200, 250] and prev_end[0] == np.iinfo(np.int64).min
    assert queued.tolist() == [False, True, False]  # the third has no launch
