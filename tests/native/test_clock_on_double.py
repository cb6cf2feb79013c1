"""On the CUPTI test double the default clock is the simulation's own, so a
capture as the README writes it has no negative launch-to-start times; a capture
whose clock disagrees with CUPTI's timestamps says so instead of reporting them."""

from __future__ import annotations

import warnings

import pytest

import skipnative


def _capture(gpu, **options):
    with skipnative.capture(**options) as cap:
        for _ in range(20):
            gpu.launch("gemm", 5_000)
        gpu.sync()
    return cap


def test_the_default_clock_on_the_double_is_its_own(gpu):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cap = _capture(gpu)
        m = cap.trace.metrics()[0].metrics
    assert cap.metadata["clock"] == "library"
    assert m["n_negative_lq"] == 0 and m["n_counted_kernels"] == 20
    assert m["il_us"] > 0


def test_a_clock_that_disagrees_with_cuptis_warns_with_the_count(gpu):
    cap = _capture(gpu, clock="monotonic_raw")
    with pytest.warns(RuntimeWarning, match=r"^20 of 20 GPU records start before"):
        cap.trace  # noqa: B018 - the trace is built (and checked) on first access
