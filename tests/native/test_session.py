"""Capture through the CUPTI test double: exact timestamps in virtual time."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import skipnative
from skipnative import _native
from skipnative.trace import API_KINDS, GPU_KINDS

COST, LATENCY = 2000, 1000


def names(trace, ids):
    return [trace.strings[i] for i in ids]


def test_available_names_the_double(gpu):
    ok, why = skipnative.available()
    assert ok, why
    assert "test double" in why and "libskipnative_cupti_double" in why


def test_cpu_bound_exact_timestamps(gpu):
    # Host work between launches is longer than each kernel: the GPU is idle at
    # every submission, so each kernel starts exactly latency after its call returns.
    with skipnative.capture(clock="library") as cap:
        t0 = gpu.now()
        for i in range(5):
            gpu.launch(f"k{i}", 3000)
            gpu.advance(10000)
    t = cap.trace
    assert len(t.launches) == 5 and len(t.gpu) == 5
    period = COST + 10000
    begins = t0 + period * np.arange(5)
    np.testing.assert_array_equal(t.launches["t_begin"], begins)
    np.testing.assert_array_equal(t.launches["t_end"], begins + COST)
    np.testing.assert_array_equal(t.gpu["t_start"], begins + COST + LATENCY)
    np.testing.assert_array_equal(t.gpu["t_end"], begins + COST + LATENCY + 3000)
    np.testing.assert_array_equal(t.gpu["correlation"], t.launches["correlation"])
    assert names(t, t.gpu["name_id"]) == [f"k{i}" for i in range(5)]
    assert names(t, t.launches["name_id"]) == ["cudaLaunchKernel"] * 5


def test_gpu_bound_exact_timestamps(gpu):
    # Kernels of 50 us launched every 2 us queue behind each other.
    with skipnative.capture(clock="library") as cap:
        t0 = gpu.now()
        for _ in range(4):
            gpu.launch("gemm", 50000)
    t = cap.trace
    first = t0 + COST + LATENCY
    np.testing.assert_array_equal(t.gpu["t_start"], first + 50000 * np.arange(4))
    np.testing.assert_array_equal(t.gpu["t_end"], first + 50000 * np.arange(1, 5))
    # each launch returned long before its kernel could start
    assert (t.gpu["t_start"][1:] > t.launches["t_end"][1:] + LATENCY).all()


def test_latency_timestamps_on_request(gpu):
    with skipnative.capture(clock="library", latency_timestamps=True) as cap:
        assert gpu.latency_enabled
        t0 = gpu.now()
        gpu.launch("k", 1000)
    assert not gpu.latency_enabled  # restored at stop
    k = cap.trace.gpu[0]
    assert k["t_submitted"] == t0 + COST + LATENCY
    assert k["t_queued"] == t0 + COST // 2
    with skipnative.capture(clock="library") as cap2:
        gpu.launch("k", 1000)
    assert cap2.trace.gpu[0]["t_submitted"] == 0 and cap2.trace.gpu[0]["t_queued"] == 0


def test_driver_api_launches(gpu):
    with skipnative.capture(clock="library") as cap:
        gpu.launch("triton_k", 1000, api="cuLaunchKernel")
        gpu.launch("triton_k", 1000, api="cuLaunchKernelEx")
        gpu.launch("aten_k", 1000, api="cudaLaunchKernelExC")
    t = cap.trace
    assert names(t, t.launches["name_id"]) == [
        "cuLaunchKernel",
        "cuLaunchKernelEx",
        "cudaLaunchKernelExC",
    ]
    assert set(t.launches["kind"]) == {API_KINDS.index("kernel")}
    assert np.isin(t.gpu["correlation"], t.launches["correlation"]).all()


def test_graph_launch_one_call_many_kernels(gpu):
    with skipnative.capture(clock="library") as cap:
        t0 = gpu.now()
        corr = gpu.graph_launch("node", 4, 1500)
    t = cap.trace
    assert len(t.launches) == 1 and t.launches["kind"][0] == API_KINDS.index("graph")
    assert (t.gpu["correlation"] == corr).all()
    assert len(set(t.gpu["graph_id"])) == 1 and t.gpu["graph_id"][0] > 0
    np.testing.assert_array_equal(t.gpu["graph_node_id"], [1, 2, 3, 4])
    np.testing.assert_array_equal(t.gpu["t_start"], t0 + COST + LATENCY + 1500 * np.arange(4))


def test_copies_sets_and_syncs(gpu):
    with skipnative.capture(clock="library") as cap:
        gpu.copy(4096, 700)
        gpu.copy(512, 300, memset=True)
        gpu.launch("k", 5000)
        sync_corr = gpu.sync()
    t = cap.trace
    kinds = [GPU_KINDS[k] for k in t.gpu["kind"]]
    assert kinds == ["memcpy", "memset", "kernel"]
    assert t.gpu["bytes"][0] == 4096 and t.gpu["bytes"][1] == 512
    assert names(t, t.gpu["name_id"])[:2] == ["Memcpy HtoD", "Memset (Device)"]
    sync = t.launches[t.launches["correlation"] == sync_corr][0]
    assert API_KINDS[sync["kind"]] == "sync"
    # the synchronising call returns when the GPU is idle
    assert sync["t_end"] == t.gpu["t_end"].max()


def test_multithreaded_launches(gpu):
    n_threads, per = 8, 2000
    tids = {}

    def work(i):
        tids[i] = threading.get_native_id()
        gpu.launch_many(per, f"t{i}", 100, stream=10 + i)

    with skipnative.capture(clock="library") as cap:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    t = cap.trace
    assert len(t.launches) == n_threads * per == len(t.gpu)
    assert cap.metadata["dropped"] == dict.fromkeys(
        ("launches", "cupti", "gpu_rows", "spilled", "incomplete", "unallocated"), 0
    )
    # every kernel joins its launch, and the launch was made on the kernel's thread
    order = np.argsort(t.launches["correlation"])
    idx = np.searchsorted(t.launches["correlation"][order], t.gpu["correlation"])
    joined = t.launches[order][idx]
    assert (joined["correlation"] == t.gpu["correlation"]).all()
    for i in range(n_threads):
        mine = t.gpu["stream"] == 10 + i
        assert mine.sum() == per
        assert set(joined["tid"][mine]) == {tids[i]}
    assert (joined["t_end"] <= t.gpu["t_start"]).all()


def test_activity_buffer_exhaustion_counts_exact_drops(gpu):
    # Buffers of 4096 bytes hold floor(4096 / record size) kernel records; with
    # two buffers at most, every kernel past 2 * capacity is dropped and counted.
    record = 4096 // _kernel_record_slots(gpu)
    per_buffer = 4096 // record
    n = 2 * per_buffer + 37
    with (
        pytest.warns(
            RuntimeWarning, match=f"dropped {n - 2 * per_buffer} records CUPTI had no buffer for"
        ),
        skipnative.capture(
            clock="library", activity_buffer_bytes=4096, max_activity_buffers=2
        ) as cap,
    ):
        gpu.launch_many(n, "k", 10)
    md = cap.metadata
    assert len(cap.trace.gpu) == 2 * per_buffer
    assert md["dropped"]["cupti"] == n - 2 * per_buffer
    assert md["buffers_refused"] >= 1
    assert md["max_buffers_in_use"] == 2
    assert len(cap.trace.launches) == n  # launch records are not affected


def _kernel_record_slots(gpu):
    probe = skipnative.capture(clock="library", activity_buffer_bytes=4096, max_activity_buffers=1)
    with pytest.warns(RuntimeWarning, match="records CUPTI had no buffer for"), probe as cap:
        gpu.launch_many(200, "probe", 10)
    return len(cap.trace.gpu)


def test_recycled_activity_buffers_reach_cupti_zeroed(gpu):
    # CUPTI is told the buffers are zero (so it does not clear them on the launching
    # thread): two 4 KiB buffers, filled and handed back five times over
    per_buffer = _kernel_record_slots(gpu)
    with skipnative.capture(
        clock="library", activity_buffer_bytes=4096, max_activity_buffers=2
    ) as cap:
        assert gpu.zeroed_buffers
        for _ in range(5):
            gpu.launch_many(2 * per_buffer - 3, "k", 10)
            gpu.deliver_buffers()
    assert gpu.dirty_buffers == 0
    assert cap.metadata["buffers_prezeroed"] and cap.metadata["dropped"]["cupti"] == 0
    assert len(cap.trace.gpu) == 5 * (2 * per_buffer - 3)
    assert not gpu.zeroed_buffers  # restored for a later CUPTI user


def test_launch_buffer_cap_counts_exact_drops(gpu):
    # chunks of 16 records, a cap of exactly two chunks: 32 records kept
    capped = skipnative.capture(
        clock="library", launch_chunk_records=16, max_launch_bytes=2 * 16 * 24
    )
    with (
        pytest.warns(RuntimeWarning, match=r"dropped 18 launch calls \(max_launch_bytes\)"),
        capped as cap,
    ):
        gpu.launch_many(50, "k", 10)
    assert len(cap.trace.launches) == 32
    assert cap.metadata["dropped"]["launches"] == 18
    assert len(cap.trace.gpu) == 50


def test_gpu_row_cap_counts_exact_drops(gpu):
    with (
        pytest.warns(RuntimeWarning, match=r"dropped 15 GPU records \(max_gpu_records\)"),
        skipnative.capture(clock="library", max_gpu_records=10) as cap,
    ):
        gpu.launch_many(25, "k", 10)
    assert len(cap.trace.gpu) == 10
    assert cap.metadata["dropped"]["gpu_rows"] == 15


@pytest.mark.parametrize("version,layout", [(130001, 13), (26, 12), (19, 12)])
def test_record_layouts_by_cupti_version(gpu, version, layout):
    gpu.reset(version=version)
    gpu.configure(launch_cost_ns=COST, submit_latency_ns=LATENCY)
    with skipnative.capture(clock="library", latency_timestamps=True) as cap:
        t0 = gpu.now()
        gpu.launch("gemm_bf16", 4000, stream=3)
        gpu.copy(1 << 20, 900, stream=3)
        gpu.graph_launch("node", 2, 100, stream=3)
    t = cap.trace
    assert cap.metadata["record_layout"] == layout
    k = t.gpu[0]
    assert t.strings[k["name_id"]] == "gemm_bf16"
    assert (k["t_start"], k["t_end"]) == (t0 + COST + LATENCY, t0 + COST + LATENCY + 4000)
    assert k["t_submitted"] == t0 + COST + LATENCY and k["stream"] == 3
    assert tuple(k["grid"]) == (128, 1, 1) and tuple(k["block"]) == (256, 1, 1)
    assert t.gpu["bytes"][1] == 1 << 20 and GPU_KINDS[t.gpu["kind"][1]] == "memcpy"
    np.testing.assert_array_equal(t.gpu["graph_node_id"][2:], [1, 2])


# CUPTI API versions 17 and 18 are CUDA 11.6 and 11.8 (cupti_version.h): 19 is 12.0
@pytest.mark.parametrize("version", [14, 17, 18])
def test_cupti_before_cuda_12_is_refused(gpu, version):
    gpu.reset(version=version)
    with pytest.raises(skipnative.CaptureError, match=r"older than CUDA 12\.0"):
        skipnative.capture().start()
    assert not gpu.subscribed


def test_subscriber_conflict_names_the_cause(gpu):
    gpu.hold_subscriber(True)
    ok, why = skipnative.available()
    assert not ok and "another subscriber" in why
    with pytest.raises(skipnative.CaptureError) as e:
        skipnative.capture().start()
    msg = str(e.value)
    assert "MULTIPLE_SUBSCRIBERS" in msg and "torch.profiler" in msg and "own process" in msg
    gpu.hold_subscriber(False)
    with skipnative.capture(clock="library") as cap:  # usable again afterwards
        gpu.launch("k", 10)
    assert len(cap.trace.gpu) == 1


def test_lifecycle_double_start_and_stop_without_start(gpu):
    cap = skipnative.capture(clock="library")
    with pytest.raises(skipnative.CaptureError, match="not capturing"):
        cap.stop()
    cap.start()
    with pytest.raises(skipnative.CaptureError, match="already capturing"):
        cap.start()
    other = skipnative.capture(clock="library")
    with pytest.raises(skipnative.CaptureError, match="another skipnative session"):
        other.start()
    cap.stop()
    with pytest.raises(skipnative.CaptureError, match="finished"):
        cap.start()
    with pytest.raises(skipnative.CaptureError, match="not capturing"):
        cap.stop()


def test_exception_inside_block_stops_cleanly(gpu):
    with pytest.raises(ZeroDivisionError), skipnative.capture(clock="library") as cap:
        gpu.launch("k", 10)
        1 / 0  # noqa: B018
    assert not cap.active and not gpu.subscribed
    assert len(cap.trace.gpu) == 1


def test_stop_leaves_cupti_as_found(gpu):
    with skipnative.capture(clock="library"):
        assert gpu.subscribed
        # launch APIs by cbid, never whole domains
        assert gpu.enabled_callbacks == len(_native.api_table())
        assert gpu.enabled_activity_kinds == 3
    assert not gpu.subscribed
    assert gpu.enabled_callbacks == 0 and gpu.enabled_activity_kinds == 0
    gpu.launch("after", 10)  # no session: nothing is recorded, nothing breaks
    with skipnative.capture(clock="library") as cap:
        gpu.launch("k", 10)
    assert len(cap.trace.launches) == 1 and cap.trace.strings[cap.trace.gpu["name_id"][0]] == "k"


def test_second_session_after_first(gpu):
    for i in range(3):
        with skipnative.capture(clock="library") as cap:
            gpu.launch_many(10 + i, "k", 10)
        assert len(cap.trace.launches) == 10 + i == len(cap.trace.gpu)


def test_markers_make_regions(gpu):
    with skipnative.capture(clock="library") as cap:
        for i in range(3):
            cap.mark(f"iter{i}")
            t = gpu.now()
            gpu.launch("k", 100)
            gpu.advance(5000)
            assert t >= 0
    t = cap.trace
    assert [t.strings[i] for i in t.regions["name_id"]] == ["iter0", "iter1", "iter2"]
    assert (t.regions["t_end"][:-1] == t.regions["t_begin"][1:]).all()
    assert (np.diff(t.regions["t_begin"]) == COST + 5000).all()
    with pytest.raises(skipnative.CaptureError, match="capturing session"):
        cap.mark("late")


def test_timestamp_callback_is_the_session_clock(gpu):
    with skipnative.capture(clock="library"):
        assert gpu.has_timestamp_callback
        assert gpu.call_timestamp_callback() == gpu.now()


# the cycle counter "auto" picks where CUPTI keeps no time of its own (on the
# double "auto" is its simulated clock)
CYCLES = "cntvct" if platform.machine() in ("aarch64", "arm64") else "tsc"


@pytest.mark.parametrize("clock", [CYCLES, "monotonic_raw"])
def test_real_clock_orders_launch_and_kernel(gpu, clock):
    # Real time: the double stamps GPU records through the timestamp callback
    # skipnative registered and spins for the launch cost, as a GPU would.
    gpu.configure(launch_cost_ns=3000, submit_latency_ns=2000, real_time=True)
    with skipnative.capture(clock=clock) as cap:
        for _ in range(50):
            gpu.launch("k", 1000)
    t = cap.trace
    assert cap.metadata["clock"] in ("tsc", "cntvct", "monotonic_raw")
    lq = t.gpu["t_start"] - t.launches["t_begin"]
    assert (lq >= 3000 + 2000).all()
    assert (t.launches["t_end"] - t.launches["t_begin"] >= 3000).all()
    assert (np.diff(t.launches["t_begin"]) > 0).all()


def test_unknown_clock_is_an_error(gpu):
    with pytest.raises(skipnative.CaptureError, match="unknown clock"):
        skipnative.capture(clock="sundial").start()
    assert not gpu.subscribed


def test_unknown_option_is_an_error():
    with pytest.raises(ValueError, match="activity_buffer_bytes"):
        skipnative.capture(activity_buffer_bytes=10)


def test_stop_while_threads_still_launch(gpu):
    stop = threading.Event()
    launched = [0] * 4

    def work(i):
        while not stop.is_set():
            launched[i] += gpu.launch_many(200, "k", 10, stream=i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    cap = skipnative.capture(clock="library").start()
    for th in threads:
        th.start()
    while sum(launched) < 4000:
        pass
    trace = cap.stop()
    stop.set()
    for th in threads:
        th.join()
    n = len(trace.launches)
    assert 0 < n <= sum(launched)
    assert (trace.launches["t_end"] >= trace.launches["t_begin"]).all()
    assert len(np.unique(trace.launches["correlation"])) == n


def test_nested_driver_call_is_not_a_second_launch(gpu):
    # cudaLaunchKernel calls cuLaunchKernel inside; CUPTI reports both with one
    # correlation id. Only the outer call is the launch.
    with skipnative.capture(clock="library") as cap:
        t0 = gpu.now()
        corr = gpu.launch_nested("k", 1000)
        gpu.launch("direct", 1000, api="cuLaunchKernel")  # a driver launch of its own
    t = cap.trace
    assert names(t, t.launches["name_id"]) == ["cudaLaunchKernel", "cuLaunchKernel"]
    outer = t.launches[0]
    assert outer["correlation"] == corr
    assert (outer["t_begin"], outer["t_end"]) == (t0, t0 + COST)


def test_cupti_is_detached_at_stop(gpu):
    with skipnative.capture(clock="library") as cap:
        gpu.launch("k", 10)
    assert gpu.finalized == 1 and cap.metadata["cupti_finalized"]
    assert not gpu.has_timestamp_callback  # finalize dropped CUPTI's state
    with skipnative.capture(clock="library", finalize=False) as cap:
        gpu.launch("k", 10)
    assert gpu.finalized == 1 and not cap.metadata["cupti_finalized"]
    # re-attaching after a finalize works
    with skipnative.capture(clock="library") as cap:
        gpu.launch("k", 10)
    assert len(cap.trace.gpu) == 1 and gpu.finalized == 2


def test_cupti_before_12_6_is_not_detached(gpu):
    gpu.reset(version=23)
    with skipnative.capture(clock="library") as cap:
        gpu.launch("k", 10)
    assert gpu.finalized == 0 and not cap.metadata["cupti_finalized"]


@pytest.mark.parametrize(
    "options,launches,kernels",
    [
        ({"kernel_activity": False}, 2, 0),
        ({"launch_callbacks": False}, 0, 2),
        ({"api_domains": ("driver",)}, 1, 2),
        ({"api_domains": ("runtime",)}, 1, 2),
    ],
)
def test_what_to_record(gpu, options, launches, kernels):
    with skipnative.capture(clock="library", **options) as cap:
        gpu.launch("a", 10)
        gpu.launch("b", 10, api="cuLaunchKernel")
    assert len(cap.trace.launches) == launches and len(cap.trace.kernels) == kernels


def test_latency_split_of_the_wait(gpu):
    # wait = submit (call return -> submission) + queue (submission -> start)
    with skipnative.capture(clock="library", latency_timestamps=True) as cap:
        gpu.launch("a", 50000)
        gpu.launch("b", 1000)  # queued behind a for 50000 - COST - ... ns
    m = cap.trace.metrics(region="all")[0].metrics
    assert m["n_latency_kernels"] == 2
    assert m["launch_submit_us"] == 2 * LATENCY / 1e3
    assert m["launch_submit_us"] + m["launch_queue_us"] == pytest.approx(m["launch_wait_us"])
    assert m["launch_queue_us"] == (50000 - COST) / 1e3


def test_kernel_names_are_demangled(gpu):
    with skipnative.capture(clock="library") as cap:
        gpu.launch("_ZN2at6native4gemmIfEEviPKT_", 10)
        gpu.launch("sm90_xmma_gemm_bf16", 10)
        gpu.launch("_Zbroken", 10)
    assert names(cap.trace, cap.trace.gpu["name_id"]) == [
        "void at::native::gemm<float>(int, float const*)",
        "sm90_xmma_gemm_bf16",
        "_Zbroken",
    ]


def test_device_buffer_size_is_set(gpu):
    with skipnative.capture(clock="library", device_buffer_bytes=64 << 20) as cap:
        gpu.launch("k", 10)
    assert gpu.device_buffer_bytes == 64 << 20
    assert cap.metadata["device_buffer_bytes"] == 64 << 20


def test_hardware_trace_refused_names_cupti_error(gpu):
    gpu.reset(130401)  # a CUPTI where HES is safe, on a GPU without it (the double's default)
    with pytest.raises(
        skipnative.CaptureError, match=r"hw_trace=True refused: not supported on this GPU"
    ):
        skipnative.capture(clock="library", hw_trace=True).start()
    assert not gpu.subscribed


def test_trace_names_its_devices(gpu):
    with skipnative.capture(clock="library") as cap:
        gpu.launch("k", 10, stream=3)
    assert cap.trace.meta["devices"] == [{"id": 0, "name": "simulated GPU (CUPTI test double)"}]


def test_serial_kernel_records_are_captured_like_concurrent_ones(gpu):
    CONCURRENT, SERIAL = 10, 3  # CUpti_ActivityKind
    with skipnative.capture(clock="library", serial_kernels=True) as cap:
        assert gpu.kind_enabled(SERIAL) and not gpu.kind_enabled(CONCURRENT)
        for _ in range(3):
            gpu.launch("k", 10)
    assert not gpu.kind_enabled(SERIAL)
    assert len(cap.trace.kernels) == 3
    assert (cap.trace.kernels["correlation"] > 0).all()
    assert cap.metadata["serial_kernels"] is True


def test_device_buffer_in_pinned_host_memory_is_set_and_reset(gpu):
    with skipnative.capture(clock="library", device_buffer_host_pinned=True) as cap:
        assert gpu.host_pinned
        gpu.launch("k", 10)
    assert not gpu.host_pinned  # CUPTI's default again for the next user
    assert cap.metadata["device_buffer_host_pinned"] is True
    assert len(cap.trace.kernels) == 1
    with skipnative.capture(clock="library"):
        assert not gpu.host_pinned


def test_launch_records_from_cupti_activity_instead_of_callbacks(gpu):
    with skipnative.capture(clock="library", launch_records="activity") as cap:
        assert gpu.callbacks_enabled == 0 and gpu.api_records_enabled > 0
        t0 = gpu.now()
        corr = gpu.launch_nested("nested", 1000)  # runtime call with a driver call inside
        t1 = gpu.now()
        gpu.launch("direct", 1000, api="cuLaunchKernel")
        gpu.launch("rt", 1000)
    assert gpu.api_records_enabled == 0  # disabled at stop
    t = cap.trace
    assert cap.metadata["launch_records"] == "activity"
    # one row per launch: the nested driver call is not a second one
    assert names(t, t.launches["name_id"]) == [
        "cudaLaunchKernel",
        "cuLaunchKernel",
        "cudaLaunchKernel",
    ]
    outer = t.launches[0]
    assert outer["correlation"] == corr
    assert (outer["t_begin"], outer["t_end"]) == (t0, t0 + COST)
    assert t.launches["t_begin"][1] == t1
    m = t.metrics(region="all")[0].metrics
    assert m["n_unmatched_kernels"] == 0 and m["n_counted_kernels"] == 3
    assert m["tklqt_us"] * 1e3 == pytest.approx(3 * (COST + LATENCY))


def test_launch_records_matches_callbacks_on_the_same_work(gpu):
    def run(source):
        gpu.reset()
        gpu.configure(launch_cost_ns=COST, submit_latency_ns=LATENCY)
        with skipnative.capture(clock="library", launch_records=source) as cap:
            for i in range(50):
                gpu.launch_nested(f"k{i % 3}", 500 + 100 * (i % 7))
        return cap.trace

    a, b = run("callbacks"), run("activity")
    for col in ("t_begin", "t_end", "correlation", "cbid"):
        np.testing.assert_array_equal(a.launches[col], b.launches[col])
    assert a.metrics(region="all")[0].metrics == b.metrics(region="all")[0].metrics


def test_launch_records_rejects_an_unknown_source():
    expected = "launch_records: expected 'callbacks', 'activity' or 'hook'"
    with pytest.raises(ValueError, match=expected):
        skipnative.capture(launch_records="tracepoints")


def test_launch_records_from_activity_keep_to_the_launch_memory_cap(gpu):
    cap_rows = (64 << 10) // 32  # max_launch_bytes / one launch row
    with (
        pytest.warns(RuntimeWarning, match="dropped 500 launch calls"),
        skipnative.capture(
            clock="library", launch_records="activity", max_launch_bytes=64 << 10
        ) as cap,
    ):
        gpu.launch_many(cap_rows + 500, "k", 10)
    assert len(cap.trace.launches) == cap_rows
    assert cap.metadata["dropped"]["launches"] == 500


def test_fidelity_times_the_same_work_unprofiled_and_captured(gpu):
    """measure_fidelity (SPEC.md section 6) on the double: alternating blocks, the
    capture with the options it is given, medians of each side."""
    from skipnative.capturing.session import _running
    from skipnative.profiling import measure_fidelity

    seen = []

    def fn():
        gpu.launch("k", 100)

    def timer(f):
        f()
        captured = bool(_running)
        seen.append((captured, gpu.latency_enabled))
        return 11.0 if captured else 10.0  # ms: the capture costs 10 %

    fid = measure_fidelity(
        fn, 21, {"clock": "library", "latency_timestamps": True}, timer=timer, floor=False
    )
    assert fid == {
        "reps": 21,
        "il_unprofiled_ms": 10.0,
        "il_profiled_ms": 11.0,
        "perturbation": pytest.approx(0.1),
    }
    # blocks of 11 and 10: unprofiled, captured (with the options), unprofiled, captured
    expected = [(False, False)] * 11 + [(True, True)] * 11 + [(False, False)] * 10
    assert seen == expected + [(True, True)] * 10
    assert not _running  # every capture stopped
    with pytest.raises(ValueError, match="reps must be >= 1"):
        measure_fidelity(fn, 0, {})


def test_info_lists_the_optional_cupti_features(gpu, capsys):
    from skipnative.cli.main import main

    assert _native.cupti_features() == {
        "latency_timestamps": True,
        "finalize": True,
        "activity_attributes": True,
        "api_records_by_cbid": True,
        "hw_trace": True,
        "hook_join_external": True,
        "hook_join_order": True,
    }
    assert main(["info", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cupti_features"]["api_records_by_cbid"] is True
    assert main(["info"]) == 0
    assert "cupti:    latency_timestamps, finalize" in capsys.readouterr().out


def test_cupti_overhead_records_are_summed_by_kind_when_asked_for(gpu):
    with skipnative.capture(clock="library", overhead_records=True) as cap:
        for _ in range(8):
            gpu.launch("k", 1000)
        gpu.sync()
        enabled = gpu.kind_enabled(17)  # CUPTI_ACTIVITY_KIND_OVERHEAD
    assert enabled
    # the double reports 150 ns of instrumentation a kernel launch and a full
    # command buffer every fourth (untimed)
    assert cap.metadata["cupti_overhead"] == {
        "CUPTI_INSTRUMENTATION": {"count": 8, "ns": 1200},
        "COMMAND_BUFFER_FULL": {"count": 2, "ns": 0},
    }
    assert cap.metadata["records_ignored"] == 0
    with skipnative.capture(clock="library") as cap:
        gpu.launch("k", 1000)
        assert not gpu.kind_enabled(17)
    assert cap.metadata["cupti_overhead"] == {}


def test_a_capture_that_drops_records_says_so(gpu, tmp_path):
    # past max_gpu_records the rows are counted, not kept: the metrics miss them
    with (
        pytest.warns(RuntimeWarning, match=r"dropped 49 GPU records \(max_gpu_records\)"),
        skipnative.capture(clock="library", max_gpu_records=1) as cap,
    ):
        for _ in range(50):
            gpu.launch("k", 1000)
        gpu.sync()
    assert len(cap.trace.gpu) == 1
    cap.trace.save(tmp_path / "lossy.skip")
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", "analyze", str(tmp_path / "lossy.skip"), "--json"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and json.loads(r.stdout)["dropped"] == {"gpu_rows": 49}
    assert r.stderr.strip().splitlines() == [
        f"skip: warning: {tmp_path / 'lossy.skip'}: the capture dropped 49 GPU records "
        "(max_gpu_records); its metrics miss that work"
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a capture within its caps warns of nothing
        with skipnative.capture(clock="library") as cap:
            gpu.launch("k", 1000)
            gpu.sync()


def test_records_delivered_unfinished_are_counted_not_kept(gpu, tmp_path):
    # a forced flush at stop may deliver a record of work still running (CUPTI:
    # incomplete records); one with an end of 0 was kept, its duration negative,
    # and the .skip saved from it refused as corrupted
    with (
        pytest.warns(RuntimeWarning, match=r"dropped 2 GPU records delivered unfinished"),
        skipnative.capture(clock="library") as cap,
    ):
        gpu.incomplete_next(2)
        for _ in range(5):
            gpu.launch("k", 1000)
        gpu.sync()
    t = cap.trace
    assert len(t.gpu) == 3 and (t.gpu["t_end"] >= t.gpu["t_start"]).all()
    assert cap.metadata["dropped"]["incomplete"] == 2
    t.save(tmp_path / "t.skip")
    assert len(skipnative.load(tmp_path / "t.skip").gpu) == 3
