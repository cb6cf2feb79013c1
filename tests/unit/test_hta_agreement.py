"""The per-kernel table against HolisticTraceAnalysis 0.5.0's
get_cuda_kernel_launch_stats, where their definitions meet.

HTA (hta/analyzers/cuda_kernel_analysis.py, cuda_kernel_launch_stats) keeps the
CPU events named cudaLaunchKernel or cudaLaunchKernelExC (and, by default,
cudaMemcpyAsync/cudaMemsetAsync), joins them to the GPU events of the same
correlation id, and reports per correlation: cpu_duration (the call's dur),
gpu_duration (the kernel's dur) and launch_delay = max(0, kernel ts - call ts -
call dur). That definition is reimplemented here from the raw JSON, independent
of skipnative's reader; README "Checking numbers against HTA" explains each
difference from TKLQT.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

import skipnative
from realdata import CUDA
from skipnative.analysis.kernel_rows import kernel_rows

HTA_LAUNCH = {"cudaLaunchKernel", "cudaLaunchKernelExC"}


def hta_launch_stats(path) -> dict[int, tuple[float, float, float]]:
    """{correlation: (cpu_duration, gpu_duration, launch_delay)} in µs, HTA's way,
    kernels only (include_memory_events=False)."""
    doc = json.loads(gzip.decompress(path.read_bytes()))
    events = [e for e in doc["traceEvents"] if e.get("ph") == "X"]
    cpu = {}
    for e in events:
        if e.get("name") in HTA_LAUNCH and "correlation" in (e.get("args") or {}):
            cpu[e["args"]["correlation"]] = e
    out = {}
    for e in events:
        if e.get("cat") != "kernel":
            continue
        c = (e.get("args") or {}).get("correlation")
        if c in cpu:
            call = cpu[c]
            delay = max(0.0, e["ts"] - call["ts"] - call["dur"])
            out[c] = (float(call["dur"]), float(e["dur"]), delay)
    return out


@pytest.mark.parametrize("path", CUDA[:3], ids=lambda p: p.name)
def test_kernel_table_agrees_with_hta_launch_stats(path):
    hta = hta_launch_stats(path)
    cols = kernel_rows(skipnative.load(path))
    mine = np.isin(cols["api"].astype(str), list(HTA_LAUNCH))
    assert mine.sum() == len(hta)  # the same kernels, by HTA's launch-name filter
    for i in np.flatnonzero(mine):
        cpu, gpu, delay = hta[int(cols["correlation"][i])]
        assert cols["api_us"][i] == pytest.approx(cpu, abs=1e-3)
        assert cols["dur_us"][i] == pytest.approx(gpu, abs=1e-3)
        # HTA's launch delay is skipnative's wait, clipped at 0 ...
        assert max(0.0, cols["wait_us"][i]) == pytest.approx(delay, abs=1e-3)
        # ... and TKLQT's t_lq adds the call itself: lq = api + wait
        assert cols["lq_us"][i] == pytest.approx(cols["api_us"][i] + cols["wait_us"][i])
    # what skipnative counts that HTA leaves out: other launch APIs' kernels
    other = (cols["count"] == "counted") & ~mine
    assert set(cols["api"][other].astype(str)).isdisjoint(HTA_LAUNCH)
