"""What-if against reality on real data: the H200 sweep measured twice.

Every point of that sweep ran the same work twice: natively, and under
torch.profiler, whose per-op bookkeeping makes the host slower. So the Kineto
pass is the same workload on a slower "CPU". Calibrated at batch 1 only (a
CPU-bound point, where IL is proportional to host time), the replay of the
native captures must predict where the Kineto pass turned GPU-bound at every
other batch size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import skipnative
from skipnative.analysis.sweep import run_summary, series
from skipnative.analysis.whatif import replay

ROOT = Path(__file__).resolve().parents[2]
FULL = ROOT / "bench" / "results" / "h200-2026-11-26" / "sweep"  # five iterations a point
# each point's first iteration
FIRST = ROOT / "bench" / "results" / "h200-2026-11-26" / "first_iteration"


def test_replay_predicts_where_the_profiled_run_turns_gpu_bound():
    doc = json.loads((FULL / "sweep.json").read_text())
    batches = [p["batch"] for p in doc["points"]]
    kineto = [p["kineto"] for p in doc["points"]]
    # batch 1 is CPU-bound and its iterations do not queue behind each other: the
    # later ones (the first carries CUPTI's setup) give the native host time
    il = {r.name: r.metrics["il_us"] for r in skipnative.load(FULL / "b1.skip").metrics(top=0)}
    native_il = np.median([il[f"iter{i}"] for i in range(1, 5)])
    scale = kineto[0]["il_us"] / native_il
    assert 1.3 < scale < 1.5  # torch.profiler: about 40 % more host time per iteration

    runs = [skipnative.load(FIRST / f"b{b}.skip") for b in batches]
    measured = series([run_summary(t) for t in runs], batches)
    p = series([run_summary(replay(t, cpu_scale=scale)) for t in runs], batches)
    k = series(kineto, batches)
    assert measured["queue_transition"] == 4  # natively
    assert p["queue_transition"] == k["queue_transition"] == 8
    assert p["knee"] == k["knee"] == 4
    assert p["queued_fraction"] == pytest.approx(k["queued_fraction"], abs=0.1)


NATIVE = sorted((ROOT / "bench" / "results").glob("*/*/b*.skip"))


@pytest.mark.parametrize(
    "path", NATIVE, ids=[f"{p.parent.parent.name}/{p.parent.name}/{p.name}" for p in NATIVE]
)
def test_unchanged_replay_reproduces_every_time_to_the_nanosecond(path):
    # including graph kernels that started before their predecessor ended (the
    # H100 graph captures hold such overlaps of 64 to 96 ns)
    t = skipnative.load(path)
    p = replay(t)
    assert np.array_equal(p.launches["t_begin"], t.launches["t_begin"])
    assert np.array_equal(p.launches["t_end"], t.launches["t_end"])
    assert np.array_equal(p.gpu["t_start"], t.gpu["t_start"])
    assert np.array_equal(p.gpu["t_end"], t.gpu["t_end"])
