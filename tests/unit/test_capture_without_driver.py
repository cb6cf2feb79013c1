"""A real libcupti (the nvidia-cuda-cupti wheel, as any torch+CUDA environment
has) on a machine without a CUDA driver: capture() gives available()'s reason,
not CUPTI's CUPTI_ERROR_UNKNOWN."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from skipnative.capturing.loader import wheel_cupti_dirs

CODE = """
import json, skipnative
ok, why = skipnative.available()
try:
    with skipnative.capture():
        pass
    err = None
except skipnative.CaptureError as e:
    err = str(e)
print(json.dumps({"ok": ok, "why": why, "err": err}))
"""


def test_capture_without_a_driver_gives_availables_reason():
    if not wheel_cupti_dirs():
        pytest.skip("no nvidia-cuda-cupti wheel here")
    probe = subprocess.run([sys.executable, "-c", "import ctypes; ctypes.CDLL('libcuda.so.1')"])
    if probe.returncode == 0:
        pytest.skip("a CUDA driver is installed here")
    env = {k: v for k, v in os.environ.items() if k != "SKIPNATIVE_CUPTI_LIBRARY"}
    r = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert not out["ok"] and "no CUDA driver" in out["why"]
    assert out["err"] == out["why"]
