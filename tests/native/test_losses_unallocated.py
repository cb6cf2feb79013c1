"""Records lost because memory could not be allocated (a thread's launch buffer, a
launch chunk, an activity buffer, a decoded row) are counted as such, not under
a cap's count: the warning tells the user to raise a cap only where one was
reached. The double fails skipnative's allocations on request
(SimulatedGpu.fail_allocations)."""

from __future__ import annotations

import threading
import warnings

import pytest
from test_run import LAUNCHER, skip_run

import skipnative
from skipnative.io import runfolder

UNALLOCATED = "records no memory could be allocated for (out of memory, not a cap)"


def captured(work, **options):
    """The capture of work() and the loss warnings its stop gave."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with skipnative.capture(clock="library", **options) as cap:
            work()
    return cap, [str(w.message) for w in said if "dropped" in str(w.message)]


def only(n: int) -> list[str]:
    return [f"the capture dropped {n} {UNALLOCATED}; its metrics miss that work"]


def test_a_launch_chunk_not_allocated_is_no_cap_reached(gpu):
    # 16 chunks of 16 records are allocated at the start; none can be added
    gpu.fail_allocations("launch_chunk")
    cap, said = captured(lambda: gpu.launch_many(300, "k", 10), launch_chunk_records=16)
    assert len(cap.trace.launches) == 256 and len(cap.trace.gpu) == 300
    assert cap.metadata["dropped"]["launches"] == 0
    assert cap.metadata["dropped"]["unallocated"] == 44
    assert said == only(44)


def test_a_thread_buffer_not_allocated_loses_its_records_until_one_is(gpu):
    gpu.fail_allocations("launch_thread", 3)
    cap, said = captured(lambda: gpu.launch_many(20, "k", 10))
    assert len(cap.trace.launches) == 17
    assert cap.metadata["dropped"]["launches"] == 0
    assert cap.metadata["dropped"]["unallocated"] == 3
    assert said == only(3)


def test_activity_buffers_not_allocated_are_not_blamed_on_max_activity_buffers(gpu):
    gpu.fail_allocations("activity_buffer")
    cap, said = captured(lambda: gpu.launch_many(50, "k", 10), activity_buffer_bytes=4096)
    md = cap.metadata
    assert len(cap.trace.gpu) == 0 and len(cap.trace.launches) == 50
    assert md["dropped"]["cupti"] == 0 and md["dropped"]["unallocated"] == 50
    assert md["buffers_refused"] >= 1 and md["buffers_unallocated"] == md["buffers_refused"]
    assert said == only(50)


def test_an_old_cupti_is_asked_once_more_not_handed_a_spill_buffer(gpu):
    # refusing a buffer may crash a CUPTI before 12.9: an allocation that fails
    # is tried again, and the buffer is a pool buffer, whose records are kept
    gpu.reset(version=26)
    gpu.fail_allocations("activity_buffer", 1)
    cap, said = captured(lambda: gpu.launch_many(50, "k", 10))
    assert len(cap.trace.gpu) == 50 and said == []
    assert cap.metadata["buffers_spilled"] == 0 and cap.metadata["dropped"]["spilled"] == 0
    # no memory at all: nothing to hand out, refused; not spilled records of a cap
    gpu.reset(version=26)
    gpu.fail_allocations("activity_buffer")
    cap, said = captured(lambda: gpu.launch_many(50, "k", 10))
    d = cap.metadata["dropped"]
    assert len(cap.trace.gpu) == 0 and d["spilled"] == d["cupti"] == 0
    assert d["unallocated"] == 50 and said == only(50)


def test_a_capture_past_a_cap_and_out_of_memory_names_both(gpu):
    gpu.fail_allocations("gpu_row", 3)  # the first three kernels: then the cap of 10
    cap, said = captured(lambda: gpu.launch_many(25, "k", 10), max_gpu_records=10)
    d = cap.metadata["dropped"]
    assert len(cap.trace.gpu) == 10 and d["gpu_rows"] == 12 and d["unallocated"] == 3
    assert said == [
        f"the capture dropped 12 GPU records (max_gpu_records), 3 {UNALLOCATED}; its metrics "
        "miss that work (raise the cap named)"
    ]


def test_skip_run_says_records_were_lost_for_want_of_memory(tmp_path):
    r = skip_run(tmp_path, "--", *LAUNCHER, "10", "--fail-allocations", "gpu_row")
    assert r.returncode == 0, r.stderr
    (p,) = runfolder.read_run(tmp_path)["processes"]
    assert p["kernels"] == 0 and p["dropped"] == {"unallocated": 10}
    assert f"the capture dropped 10 {UNALLOCATED}; its metrics miss that work" in r.stderr
    assert "max_" not in r.stderr and "raise" not in r.stderr


def test_a_launch_lost_for_want_of_its_threads_flag_is_counted(gpu):
    """A thread's first record takes a 64-byte flag (what keeps a stop from
    freeing the buffer it writes). Where none could be had, the launch was lost
    and counted nowhere."""

    def work():
        gpu.fail_allocations("launch_flag", 3)  # a new thread's first three records
        t = threading.Thread(target=lambda: gpu.launch_many(20, "k", 10))
        t.start()
        t.join()

    cap, said = captured(work)
    assert len(cap.trace.launches) == 17 and len(cap.trace.gpu) == 20
    assert cap.metadata["dropped"]["unallocated"] == 3
    assert said == only(3)


def test_an_allocation_the_double_cannot_fail_is_refused(gpu):
    # a misspelt name failed nothing, silently, and a test of it proved nothing
    with pytest.raises(ValueError, match="no allocation of skipnative is named 'launch_flags'"):
        gpu.fail_allocations("launch_flags")
