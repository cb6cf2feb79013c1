"""On a machine with a CUDA device the GPU tier is not collected beside the
native tier (whose doubles would stand in for the real CUPTI and driver): it
runs in a pytest process of its own. A stand-in libcuda that reports one device
plays the GPU machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
FAKE = "int cuInit(unsigned f) { return 0; }\nint cuDeviceGetCount(int *n) { *n = 1; return 0; }\n"


def _collect(env: dict[str, str]) -> str:
    args = [
        str(TESTS / "native" / "test_session.py"),
        str(TESTS / "gpu"),
        str(TESTS / "test_tiers.py"),
    ]
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_gpu_tier_runs_apart_only_where_a_device_is(tmp_path):
    lib = tmp_path / "libcuda.so.1"
    src = tmp_path / "fake.c"
    src.write_text(FAKE)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "SKIPNATIVE_TEST_TIER"}

    with_device = _collect(dict(env, LD_LIBRARY_PATH=str(tmp_path)))
    assert "test_gpu_tier_in_its_own_process" in with_device
    assert "test_capture_gpu.py" not in with_device
    assert "test_session.py::" in with_device

    # no libcuda that sees a device: both tiers in one process, the GPU one skipping
    without = _collect(dict(env, LD_LIBRARY_PATH=str(tmp_path / "none")))
    assert "test_capture_gpu.py::" in without
