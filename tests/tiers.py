"""Which tier runs where: the native tier's test doubles and the GPU tier's real
CUPTI and CUDA driver cannot share a process (see conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
GPU_TIER_ENV = "SKIPNATIVE_TEST_TIER"

_PROBE = """
import ctypes, sys
try:
    lib = ctypes.CDLL("libcuda.so.1")
except OSError:
    sys.exit(1)
n = ctypes.c_int(0)
ok = lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(n)) == 0 and n.value > 0
sys.exit(0 if ok else 1)
"""


@lru_cache(maxsize=1)
def cuda_device_present() -> bool:
    """Whether the real CUDA driver sees a device, asked in a child process: the
    real libcuda loaded here would stand in front of the driver double."""
    try:
        return subprocess.run([sys.executable, "-c", _PROBE], timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _covers(config: pytest.Config, folder: Path) -> bool:
    for arg in config.args:
        p = Path(arg.split("::")[0]).resolve()
        if p == folder or p in folder.parents or folder in p.parents:
            return True
    return False


def gpu_tier_apart(config: pytest.Config) -> bool:
    """True when this run holds the native tier and the GPU tier must run apart."""
    if os.environ.get(GPU_TIER_ENV) == "gpu":
        return False
    return _covers(config, TESTS / "native") and cuda_device_present()
