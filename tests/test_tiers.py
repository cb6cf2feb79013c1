"""The GPU tier in a process of its own where the native tier's doubles would
stand in front of the real CUPTI and CUDA driver (see conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tiers import GPU_TIER_ENV, TESTS, gpu_tier_apart


def test_gpu_tier_in_its_own_process(request):
    if not gpu_tier_apart(request.config):
        pytest.skip("the GPU tier runs in this process (no CUDA device, or no native tier here)")
    env = dict(os.environ, **{GPU_TIER_ENV: "gpu"})
    r = subprocess.run(
        [sys.executable, "-m", "pytest", str(TESTS / "gpu"), "-p", "no:cacheprovider", "-q"],
        env=env,
        capture_output=True,
        text=True,
    )
    print(r.stdout[-4000:], r.stderr[-2000:])
    assert r.returncode == 0, f"the GPU tier failed:\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
