"""GPU tests: marked `gpu` (`-m "not gpu"` leaves them out), and skipped cleanly
where torch or a CUDA device is missing."""

from __future__ import annotations

import pytest


def _gpu_reason() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device"
    return None


def pytest_collection_modifyitems(config, items):
    gpu_items = [i for i in items if "tests/gpu" in str(i.fspath).replace("\\", "/")]
    reason = _gpu_reason() if gpu_items else None
    for item in gpu_items:
        item.add_marker(pytest.mark.gpu)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"GPU test: {reason}"))
