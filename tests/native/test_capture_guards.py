"""A capture's tables, and what a running capture refuses, on the CUPTI test double."""

from __future__ import annotations

import numpy as np
import pytest

import skipnative
from skipnative import _native


def test_raw_refused_while_capturing(gpu):
    # The buffer callbacks append to (and reallocate) the tables until stop():
    # a view handed out before then would change, or dangle, under its reader.
    cap = skipnative.capture(clock="library").start()
    gpu.launch("k", 1000)
    gpu.deliver_buffers()  # a completed buffer decoded while capturing
    with pytest.raises(skipnative.CaptureError, match="after stop"):
        cap.raw()
    cap.stop()
    assert len(cap.raw()["kernels"]) == 1


def test_raw_tables_carry_each_value_in_its_field(gpu):
    # Known values through the whole path: a field read at the wrong offset
    # (or two swapped fields) gives a different value here.
    with skipnative.capture(clock="library", latency_timestamps=True) as cap:
        corr = gpu.launch("gemm", 5000, stream=11)
        gpu.copy(4096, 700, stream=12)
        gpu.copy(512, 300, stream=13, memset=True)
        cap.mark("step")
    raw = cap.raw()
    dtypes = _native.record_dtypes()
    for table, arr in raw.items():
        assert arr.dtype == dtypes[table]
    (launch,) = [r for r in raw["launches"] if r["correlation"] == corr]
    (kernel,) = raw["kernels"]
    assert kernel["correlation"] == corr and kernel["stream"] == 11
    assert kernel["t_end"] - kernel["t_start"] == 5000
    assert kernel["t_submitted"] - launch["t_end"] == 1000  # the double's submit latency
    assert list(kernel["grid"]) == [128, 1, 1] and list(kernel["block"]) == [256, 1, 1]
    assert launch["t_end"] - launch["t_begin"] == 2000 and launch["domain"] == 0
    copies = raw["copies"]
    assert sorted(copies["stream"]) == [12, 13]
    by_stream = {int(c["stream"]): c for c in copies}
    assert by_stream[12]["bytes"] == 4096 and by_stream[12]["is_set"] == 0
    assert by_stream[12]["copy_kind"] == 1  # HtoD
    assert by_stream[13]["bytes"] == 512 and by_stream[13]["is_set"] == 1
    assert by_stream[13]["t_end"] - by_stream[13]["t_start"] == 300
    (marker,) = raw["markers"]
    assert cap.trace.strings[marker["name_id"]] == "step"
    assert marker["t"] >= launch["t_end"] and isinstance(marker["tid"], np.integer)


def test_metadata_reports_every_option_as_given(gpu):
    given = {
        "latency_timestamps": True,
        "memset": False,
        "launch_records": "activity",
        "api_domains": ["driver"],
        "finalize": False,
        "max_activity_buffers": 7,
        "launch_chunk_records": 1024,
    }
    with skipnative.capture(clock="library", **given) as cap:
        gpu.launch("k", 100, api="cuLaunchKernel")
    md = cap.metadata
    for name, default in _native.capture_options().items():
        if name == "clock":
            assert md["clock"] == "library"  # the clock used
        else:
            assert md[name] == given.get(name, default), name
    assert not md["cupti_finalized"]
    assert md["dropped"]["spilled"] == 0 and md["buffers_spilled"] == 0


def test_a_fallback_warning_raised_as_an_error_leaves_no_capture_running(gpu):
    # Under `-W error` the hook fallback's warning is an exception out of
    # start() (so out of `with`'s __enter__, with no __exit__ to stop it): the
    # session it started must not be left capturing with no handle to stop it.
    import warnings

    first = skipnative.capture(clock="library", launch_records="hook")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(RuntimeWarning, match="launch_records='hook' not possible"):
            first.start()
    assert not first.active
    with skipnative.capture(clock="library") as cap:
        gpu.launch("k", 1000)
    assert len(cap.trace.gpu) == 1


def test_a_chunk_of_more_launch_records_than_32_bits_count_is_refused(gpu):
    # a chunk's record count is 32 bits: one past it would wrap to a tiny chunk
    # (after asking for its full size in memory)
    with pytest.raises(skipnative.CaptureError, match=r"launch_chunk_records .*4294967295"):
        skipnative.capture(clock="library", launch_chunk_records=2**32 + 1).start()
    assert not gpu.subscribed
