"""Launch microbenchmarks without a GPU: statistics, table and JSON on recorded
numbers, and the loader's error paths."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from skipnative.profiling.launchbench import queue_depth, stats, table

RECORDED = {  # the shape of a result; numbers chosen for the test, not measured
    "device": "Test GPU",
    "iters": 100,
    "runtime": "libcudart.so.13",
    "apis": {
        "driver": {
            "launch_call": stats([2000] * 50 + [2500] * 50),
            "throughput": stats([1800] * 10),
            "roundtrip": stats([9000] * 25),
            "queue_depth": 1022,
        },
        "runtime": {
            "launch_call": stats([2300] * 100),
            "throughput": stats([2100] * 10),
            "roundtrip": stats([9500] * 25),
            "queue_depth": None,
        },
    },
    "graph": {
        "kernels": 100,
        "graph_launch_sync": stats([60000] * 50),
        "stream_launches_sync": stats([240000] * 50),
    },
    "launch_to_start_idle": stats([4000] * 200),
    "overhead_ratio": {"skipnative": {"driver": 1.06, "runtime": 1.061}},
    "overhead": {
        "unprofiled": {"driver": 0.0, "runtime": 0.0},
        "unprofiled_before_any_capture": {"driver": -30.0, "runtime": 10.0},
        "skipnative": {"driver": 120.0, "runtime": 140.0},
        "torch_profiler": {"driver": 3500.0, "runtime": 3600.0},
    },
}


def test_stats():
    s = stats(np.arange(1, 101))
    assert s["n"] == 100 and s["median"] == 50.5
    assert s["p10"] == pytest.approx(10.9) and s["p90"] == pytest.approx(90.1)
    assert stats([])["n"] == 0 and np.isnan(stats([])["median"])


def test_queue_depth():
    # a preempted call (2 ms) is not the queue filling up (the 150 ms wait behind the spin)
    calls = [2000] * 5 + [2_000_000] + [2000] * 3 + [150_000_000] + [2000] * 3
    assert queue_depth(calls) == 9
    assert queue_depth([2000] * 10) is None


def test_table_of_a_recorded_result():
    t = table(RECORDED)
    assert "Test GPU" in t
    assert "driver   launch call      2250 [2000, 2500]" in t
    assert "queue depth 1022" in t and "queue depth -" in t
    assert "(4.0x)" in t  # 100 launches take 4x one graph of 100
    assert "skipnative: driver +120 ns (x1.06), runtime +140 ns (x1.06)" in t
    assert "torch_profiler: driver +3500 ns" in t
    assert "after captures, against before any: driver +30 ns, runtime -10 ns" in t
    assert "under unprofiled" not in t
    assert json.loads(json.dumps(RECORDED)) == RECORDED


def test_cli_without_a_driver_is_one_clear_line(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", "bench", "launch"],
        capture_output=True,
        text=True,
        env={**os.environ, "LD_LIBRARY_PATH": str(tmp_path)},
    )
    if r.returncode == 0:
        pytest.skip("a CUDA driver is present")
    assert r.returncode == 1 and "needs a GPU" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_a_driver_missing_entry_points_is_named(tmp_path):
    src = tmp_path / "fake.c"
    src.write_text(
        "int cuInit(unsigned f) { return 0; }\nint cuDeviceGetCount(int* n) { *n = 1; return 0; }\n"
    )
    lib = tmp_path / "libcuda.so.1"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", "bench", "launch"],
        capture_output=True,
        text=True,
        env={**os.environ, "LD_LIBRARY_PATH": str(tmp_path)},
    )
    assert r.returncode == 1
    assert "libcuda.so.1 lacks cuDeviceGet" in r.stderr and "cuLaunchKernel" in r.stderr


def test_ptx_is_embedded():
    from skipnative import _native

    ptx = _native.null_kernel_ptx()
    assert ".entry skipnative_null" in ptx and ".entry skipnative_spin" in ptx


def test_a_difference_that_rounds_to_nothing_reads_as_no_negative_zero():
    # medians of differences can be fractional: -0.4 ns is no "-0 ns"
    res = json.loads(json.dumps(RECORDED))
    res["overhead"]["skipnative"] = {"driver": -0.4, "runtime": 0.3}
    res["overhead"]["unprofiled_before_any_capture"] = {"driver": 0.4, "runtime": -0.0}
    res["overhead"]["torch_profiler"] = {"driver": float("nan"), "runtime": -0.5}
    t = table(res)
    numbers = re.findall(r"(\S+) ns(?=[ ,]|$)", t, re.M)
    assert len(numbers) == 6, t
    assert [n for n in numbers if n.lstrip("+-") == "0" and n.startswith("-")] == [], t
    assert "nan" not in t.lower()
    assert "skipnative: driver +0 ns" in t


def test_numbers_that_read_as_zero_carry_no_minus_sign():
    from skipnative.cli._common import fmt_ratio, fmt_value

    assert fmt_value(-0.0) == fmt_value(0.0) == "0.000"
    assert fmt_value(-0.0004) == "0.000" and fmt_value(-0.0005) == "-0.001"
    assert fmt_value(-1234.56) == "-1,234.6" and fmt_value(-0.04) == "-0.040"
    assert fmt_ratio(-0.0) == fmt_ratio(-0.0001) == "0.000" and fmt_ratio(-0.25) == "-0.250"
    assert fmt_ratio(None) == fmt_ratio(float("nan")) == "-"
