"""What the next GPU run measures, checked here before device time is spent on it:
every configuration bench/gpu_check.sh's fidelity stage names exists in
bench/gpu_overhead.py, covers what fidelity.json must hold, and starts and stops
a capture (a misspelt option would be refused on the GPU and the row lost)."""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import pytest

import skipnative

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _bench_module(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(BENCH))


def _fidelity_stage_configs() -> list[str]:
    m = re.search(r"^\s*FIDELITY_CONFIGS=(\S+)", (BENCH / "gpu_check.sh").read_text(), re.M)
    assert m, "gpu_check.sh names no FIDELITY_CONFIGS"
    return m.group(1).split(",")


def test_the_fidelity_stage_names_configurations_that_exist():
    configs = _bench_module("gpu_overhead").configurations(16)
    named = _fidelity_stage_configs()
    assert set(named) - set(configs) <= {"unprofiled", "torch_profiler"}
    required = _bench_module("fidelity_file").REQUIRED
    assert set(required) <= set(named)


@pytest.mark.parametrize("label", _fidelity_stage_configs())
def test_each_configuration_captures_on_the_double(gpu, label):
    configs = _bench_module("gpu_overhead").configurations(2)
    if label not in configs:
        pytest.skip(f"{label}: not a skipnative configuration")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the hook's fallback, not preloaded here
        with skipnative.capture(clock="library", **configs[label]) as cap:
            gpu.launch("k", 1000)
    assert len(cap.trace.gpu) == 1


def test_what_the_fidelity_stage_reads_off_its_captures(gpu):
    # the stage's hook join counts and the order-join replay, on a capture of
    # the timing pass's options: a mistake here would cost the GPU run its rows
    m = _bench_module("gpu_overhead")
    opts = m.configurations(2)["timing_pass"]
    with skipnative.capture(clock="library", **opts) as cap:
        for _ in range(4):
            gpu.launch("gemm", 3000)
            gpu.launch("relu", 1000, stream=9)
        gpu.sync()
    replay = m.order_replay(cap.trace)
    assert replay["queued"]["work_calls"] == replay["queued"]["agreed"] == 8
    assert replay["queued"]["pairs_checked"] == 8 and replay["order_only"]["wrong"] == 0
    counts = m.hook_join_counts(cap)
    assert counts["kernels"] == counts["kernels_joined"] == 8
    assert counts["hook_join"] == "external" and counts["launches"] == 9
