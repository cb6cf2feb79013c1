"""The figures README.md and bench/results/h200-2026-11-26/README.md quote from
the committed H200 captures, recomputed from those captures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import skipnative
from skipnative.analysis.metrics import api_summary

ROOT = Path(__file__).resolve().parents[2]
FULL = ROOT / "bench" / "results" / "h200-2026-11-26" / "sweep"
FIRST = ROOT / "bench" / "results" / "h200-2026-11-26" / "first_iteration"
BATCHES = [1, 2, 4, 8, 16, 32, 64]


@pytest.mark.parametrize("batch", BATCHES)
def test_the_first_launch_of_every_capture_carries_cuptis_setup(batch):
    t = skipnative.load(FULL / f"b{batch}.skip")
    ln = t.launches[np.argsort(t.launches["t_begin"], kind="stable")]
    first = (ln["t_end"][0] - ln["t_begin"][0]) / 1e3
    assert 2000 < first < 2300  # us
    assert t.name([ln["name_id"][0]])[0] == "cudaLaunchKernel"


def test_batch_one_without_and_with_the_setup():
    t = skipnative.load(FULL / "b1.skip")
    il = {r.name: r.metrics["il_us"] / 1e3 for r in t.metrics(top=0)}
    later = [il[f"iter{i}"] for i in range(1, 5)]
    assert min(later) > 12.8 and max(later) < 13.6  # ms
    assert il["iter0"] == pytest.approx(15.76, abs=0.01)
    # in the cut first iteration, beside the first call no kernel launch took 30 us
    first = skipnative.load(FIRST / "b1.skip")
    calls = {a["name"]: a for a in api_summary(first)}
    assert calls["cudaLaunchKernel"]["max_at_us"] == 0
    d = first.launches["t_end"] - first.launches["t_begin"]
    kernel = first.launches["kind"] == 0
    assert np.sort(d[kernel])[-2] < 30_000


def test_where_the_gpu_idles_at_batch_one():
    m = skipnative.load(FIRST / "b1.skip").metrics(region="iter0")[0].metrics
    assert m["gpu_idle_us"] / 1e3 == pytest.approx(11.8, abs=0.05)
    assert m["gpu_idle_host_us"] / 1e3 == pytest.approx(7.0, abs=0.05)
    assert m["gpu_idle_launch_us"] / 1e3 == pytest.approx(4.8, abs=0.05)
