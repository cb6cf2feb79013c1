"""hw_trace=True as CUPTI documents it, on the CUPTI double (no Blackwell here:
the double answers cuptiActivityEnableHWTrace as told)."""

from __future__ import annotations

import ctypes
import threading

import pytest

import skipnative

SAFE = 130401  # a CUPTI API version at or past 13.4


def hw(gpu, result: int) -> ctypes.CDLL:
    lib = gpu._lib
    lib.skipnative_double_set_hw_trace.argtypes = [ctypes.c_int]
    lib.skipnative_double_set_hw_trace(result)
    lib.skipnative_double_hw_trace.restype = ctypes.c_int
    lib.skipnative_double_flush_period.restype = ctypes.c_uint32
    return lib


def test_enabled_with_periodic_flushing_and_disabled_at_stop(gpu):
    gpu.reset(SAFE)
    lib = hw(gpu, 0)
    with skipnative.capture(clock="library", hw_trace=True) as cap:
        assert lib.skipnative_double_hw_trace() == 1
        assert lib.skipnative_double_flush_period() > 0  # HES's fixed buffer is drained
        gpu.launch("k", 1000)
    assert lib.skipnative_double_hw_trace() == 0
    assert lib.skipnative_double_flush_period() == 0
    assert len(cap.trace.gpu) == 1


def test_never_with_latency_timestamps(gpu):
    gpu.reset(SAFE)
    hw(gpu, 0)
    with pytest.raises(skipnative.CaptureError, match="latency timestamps"):
        skipnative.capture(hw_trace=True, latency_timestamps=True).start()
    assert not gpu.latency_enabled


def test_refused_on_cupti_before_13_4_update_1(gpu):
    gpu.reset(130001)
    lib = hw(gpu, 0)
    with pytest.raises(skipnative.CaptureError, match=r"13\.4 Update 1"):
        skipnative.capture(hw_trace=True).start()
    assert lib.skipnative_double_hw_trace() == 0


def test_refused_under_mps(gpu, monkeypatch):
    gpu.reset(SAFE)
    hw(gpu, 0)
    monkeypatch.setenv("CUDA_MPS_PIPE_DIRECTORY", "/tmp/some-mps")
    with pytest.raises(skipnative.CaptureError, match="MPS"):
        skipnative.capture(hw_trace=True).start()


def test_refused_on_a_mig_instance(gpu, monkeypatch):
    gpu.reset(SAFE)
    hw(gpu, 0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-0b8c1a2e-1111-2222-3333-444455556666")
    with pytest.raises(skipnative.CaptureError, match="MIG"):
        skipnative.capture(hw_trace=True).start()


@pytest.mark.parametrize(
    ("code", "reason"),
    [(43, "MIG"), (41, "confidential computing"), (33, "virtualised"), (27, "Blackwell")],
)
def test_cupti_refusals_are_named(gpu, code, reason):
    gpu.reset(SAFE)
    hw(gpu, code)
    with pytest.raises(skipnative.CaptureError, match=reason):
        skipnative.capture(hw_trace=True).start()
    assert not gpu.subscribed


def test_buffer_knobs_are_reported(gpu):
    opts = dict(
        device_buffer_pre_allocate=2,
        device_buffer_pool_limit=4,
        activity_buffers_pooled=3,
        completion_cpu=0,
        activity_buffer_bytes=8 << 20,
    )
    with skipnative.capture(clock="library", **opts) as cap:
        gpu.launch("k", 1000)
        # completed on a thread of its own, as CUPTI's (stop() completes the
        # rest on this thread, which completion_cpu leaves where it is)
        completer = threading.Thread(target=gpu.deliver_buffers)
        completer.start()
        completer.join()
    meta = cap.metadata
    for k, v in opts.items():
        assert meta[k] == v, k
    assert meta["completion_pinned"] is True
    assert len(cap.trace.gpu) == 1
