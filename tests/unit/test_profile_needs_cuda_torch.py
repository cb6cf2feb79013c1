"""skipnative.profile() on a machine whose torch has no CUDA device (or no torch):
the passes that need one are named before anything runs, with the way round them."""

from __future__ import annotations

import sys
import types

import pytest

import skipnative


def _no_cuda_torch() -> types.ModuleType:
    torch = types.ModuleType("torch")
    torch.__version__ = "2.13.0+cpu"
    torch.cuda = types.SimpleNamespace(is_available=lambda: False)
    return torch


@pytest.mark.parametrize("torch", [None, "cpu"], ids=["no torch", "CPU-only torch"])
def test_profile_names_what_needs_a_cuda_device(monkeypatch, torch):
    monkeypatch.setitem(sys.modules, "torch", None if torch is None else _no_cuda_torch())
    calls = []
    with pytest.raises(skipnative.CaptureError) as e:
        skipnative.profile(lambda: calls.append(1), fidelity_reps=20)
    msg = str(e.value)
    assert "attribution pass" in msg and "fidelity" in msg and "--no-attribution" in msg
    assert ("not installed" if torch is None else "sees no CUDA device") in msg
    assert calls == []  # refused before the workload ran


def test_without_attribution_or_fidelity_no_cuda_is_asked_for(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", _no_cuda_torch())
    from skipnative.profiling import passes

    passes._require_cuda_torch(attribution=False, fidelity_reps=0)  # no error
