"""Each rule of SPEC.md §2–3 on a small generated trace with a known answer."""

from __future__ import annotations

import pytest

import skipnative
from kineto_gen import kernel, launch, op, step, write


def metrics(tmp_path, events, region="all", device=None, **top):
    t = skipnative.load(write(tmp_path / "t.json", events, **top))
    rows = [r for r in t.metrics(region=region) if device is None or r.device == device]
    assert len(rows) == 1, rows
    return rows[0].metrics


def test_tklqt_and_its_exact_decomposition(tmp_path):
    # two launches: (api 5, wait 10) and (api 4, wait 1)
    m = metrics(
        tmp_path, [launch(100, 5, 1), kernel(115, 20, 1), launch(200, 4, 2), kernel(205, 3, 2)]
    )
    assert m["tklqt_us"] == 15 + 5
    assert m["launch_api_us"] == 5 + 4
    assert m["launch_wait_us"] == 10 + 1
    assert m["n_kernels"] == m["n_counted_kernels"] == 2
    assert m["akd_us"] == (20 + 3) / 2


def test_graph_launch_counts_once_to_its_first_kernel(tmp_path):
    ev = [
        launch(100, 10, 1, name="cudaGraphLaunch"),
        kernel(150, 5, 1, "g2"),
        kernel(130, 5, 1, "g1"),
        kernel(160, 5, 1, "g3"),
    ]
    m = metrics(tmp_path, ev)
    assert m["n_kernels"] == 3 and m["n_counted_kernels"] == 1
    assert m["tklqt_us"] == 30  # first kernel (ts 130) minus the launch's begin
    assert m["akd_us"] == 5 and m["gpu_busy_us"] == 15


def test_unmatched_kernels_are_left_out_and_counted(tmp_path):
    m = metrics(tmp_path, [launch(100, 5, 1), kernel(110, 5, 1), kernel(120, 5, 99)])
    assert m["n_unmatched_kernels"] == 1
    assert m["n_counted_kernels"] == 1 and m["tklqt_us"] == 10
    assert m["n_kernels"] == 2  # still a kernel of the region


def test_negative_lq_is_counted_reported_and_clamped(tmp_path):
    m = metrics(
        tmp_path, [launch(100, 5, 1), kernel(97, 5, 1), launch(200, 5, 2), kernel(210, 5, 2)]
    )
    assert m["n_negative_lq"] == 1
    assert m["min_negative_lq_us"] == -3
    assert m["tklqt_us"] == 10 and m["launch_api_us"] + m["launch_wait_us"] == 10


def test_early_start_makes_wait_negative_but_keeps_the_identity(tmp_path):
    # kernel starts 2 us into a 5 us launch call: t_lq 2 = api 5 + wait -3
    m = metrics(tmp_path, [launch(100, 5, 1), kernel(102, 5, 1)])
    assert (m["tklqt_us"], m["launch_api_us"], m["launch_wait_us"]) == (2, 5, -3)
    assert m["n_early_start"] == 1


def test_kernel_belongs_to_the_region_of_its_launch(tmp_path):
    # launched inside step 1, runs inside step 2
    ev = [
        step(0, 100, 1),
        step(100, 100, 2),
        launch(90, 5, 1),
        kernel(150, 10, 1),
        launch(120, 5, 2),
        kernel(160, 10, 2),
        kernel(170, 5, 77),
    ]
    t = skipnative.load(write(tmp_path / "t.json", ev))
    by = {r.name: r.metrics for r in t.metrics()}
    assert by["ProfilerStep#1"]["n_kernels"] == 1 and by["ProfilerStep#1"]["tklqt_us"] == 60
    # the unmatched kernel is placed by its own start
    assert by["ProfilerStep#2"]["n_kernels"] == 2
    assert by["all"]["n_kernels"] == 3


def test_il_starts_at_first_top_level_op(tmp_path):
    ev = [op(50, 100, "aten::linear"), op(60, 10, "aten::mm"), launch(70, 5, 1), kernel(80, 20, 1)]
    assert metrics(tmp_path, ev)["il_us"] == 100 - 50


def test_il_without_ops_starts_at_region_marker_or_first_launch(tmp_path):
    ev = [step(10, 200, 1), launch(70, 5, 1), kernel(80, 20, 1)]
    t = skipnative.load(write(tmp_path / "t.json", ev))
    by = {r.name: r.metrics for r in t.metrics()}
    assert by["ProfilerStep#1"]["il_us"] == 100 - 10
    assert by["all"]["il_us"] == 100 - 70


def test_gpu_idle_paper_definition_goes_negative_with_overlap(tmp_path):
    ev = [
        launch(0, 1, 1),
        kernel(10, 50, 1, stream=7),
        launch(2, 1, 2),
        kernel(20, 50, 2, stream=8),
    ]
    m = metrics(tmp_path, ev)
    assert m["il_us"] == 70
    assert m["gpu_idle_us"] == 70 - 100  # sum of durations exceeds IL
    assert m["gpu_busy_us"] == 60  # union [10, 70]
    assert m["gpu_idle_union_us"] == 10


def test_queued_fraction_and_bound(tmp_path):
    # k2 is launched (returns at 11) while k1 runs until 100: queued.
    # k3 is launched after k2 ended: not queued. 1 of 3 -> CPU-bound.
    ev = [
        launch(0, 5, 1),
        kernel(6, 94, 1),
        launch(10, 1, 2),
        kernel(100, 10, 2),
        launch(200, 1, 3),
        kernel(202, 10, 3),
    ]
    m = metrics(tmp_path, ev)
    assert m["queued_fraction"] == pytest.approx(1 / 3)
    assert m["bound"] == "cpu"
    ev += [launch(203, 1, 4), kernel(212, 10, 4)]  # queued behind k3: 2 of 4 -> GPU-bound
    m = metrics(tmp_path, ev)
    assert m["queued_fraction"] == 0.5 and m["bound"] == "gpu"


def test_per_device_rows(tmp_path):
    ev = [launch(0, 1, 1), kernel(5, 10, 1, device=0), launch(2, 1, 2), kernel(9, 30, 2, device=1)]
    t = skipnative.load(write(tmp_path / "t.json", ev))
    rows = {r.device: r.metrics for r in t.metrics(region="all")}
    assert set(rows) == {0, 1}
    assert rows[0]["tklqt_us"] == 5 and rows[1]["tklqt_us"] == 7


def test_top_kernels_sorted_by_total_then_count(tmp_path):
    ev = [
        launch(0, 1, 1),
        kernel(1, 10, 1, "a"),
        launch(20, 1, 2),
        kernel(21, 5, 2, "b"),
        launch(40, 1, 3),
        kernel(41, 5, 3, "b"),
        launch(60, 1, 4),
        kernel(61, 10, 4, "c"),
    ]
    t = skipnative.load(write(tmp_path / "t.json", ev))
    top = t.metrics(region="all")[0].top_kernels
    assert [k["name"] for k in top] == ["b", "a", "c"]  # b, a and c all total 10; b runs twice
    assert top[0] == {"name": "b", "count": 2, "total_us": 10.0, "mean_us": 5.0}


def test_driver_launches_count(tmp_path):
    m = metrics(tmp_path, [launch(0, 3, 1, name="cuLaunchKernel"), kernel(10, 1, 1)])
    assert m["n_counted_kernels"] == 1 and m["tklqt_us"] == 10


def test_copy_launches_do_not_count_their_kernels(tmp_path):
    # a kernel whose correlation belongs to a memcpy call is matched but not counted
    m = metrics(tmp_path, [launch(0, 3, 1, name="cudaMemcpyAsync"), kernel(10, 1, 1)])
    assert m["n_kernels"] == 1 and m["n_counted_kernels"] == 0 and m["n_unmatched_kernels"] == 0


def test_trace_without_kernels(tmp_path):
    m = metrics(tmp_path, [launch(0, 3, 1)])
    assert m["n_kernels"] == 0 and m["tklqt_us"] == 0 and m["bound"] == "none"


def test_latency_split_leaves_early_starts_apart():
    import numpy as np

    from skipnative.trace import GPU_DTYPE, LAUNCH_DTYPE, OP_DTYPE, REGION_DTYPE, Trace

    ln = np.zeros(2, LAUNCH_DTYPE)
    ln["t_begin"], ln["t_end"], ln["correlation"] = [0, 100], [10, 110], [1, 2]
    g = np.zeros(2, GPU_DTYPE)
    # k1: call 0-10, submitted 14, start 20 -> submit 4, queue 6
    # k2: call 100-110, starts at 105 (before the call returned): wait -5
    g["t_start"], g["t_end"], g["correlation"] = [20, 105], [30, 115], [1, 2]
    g["t_submitted"] = [14, 104]
    t = Trace(ln, g, np.zeros(0, OP_DTYPE), np.zeros(0, REGION_DTYPE), [""])
    m = t.metrics(region="all")[0].metrics
    assert m["tklqt_us"] == (20 + 5) / 1e3
    assert (m["launch_submit_us"], m["launch_queue_us"]) == (4 / 1e3, 6 / 1e3)
    assert m["launch_early_us"] == -5 / 1e3 and m["n_latency_kernels"] == 1
    parts = m["launch_api_us"] + m["launch_submit_us"] + m["launch_queue_us"] + m["launch_early_us"]
    assert parts == pytest.approx(m["tklqt_us"])


def test_legacy_category_names(tmp_path):
    # torch 1.8-1.10 wrote "Runtime", "Kernel", "Operator", "Memcpy", "Memset"
    ev = [launch(0, 5, 1), kernel(10, 5, 1), op(-2, 20), launch(30, 2, 2, name="cudaMemcpyAsync")]
    ev.append(
        {
            "ph": "X",
            "cat": "gpu_memcpy",
            "name": "Memcpy HtoD",
            "pid": 0,
            "tid": 7,
            "ts": 40,
            "dur": 3,
            "args": {"correlation": 2, "device": 0, "stream": 7},
        }
    )
    new = skipnative.load(write(tmp_path / "new.json", ev))
    legacy_names = {
        "cuda_runtime": "Runtime",
        "kernel": "Kernel",
        "cpu_op": "Operator",
        "gpu_memcpy": "Memcpy",
    }
    for e in ev:
        e["cat"] = legacy_names.get(e["cat"], e["cat"])
    old = skipnative.load(write(tmp_path / "old.json", ev))
    for name in ("launches", "gpu", "ops"):
        assert len(getattr(old, name)) == len(getattr(new, name)) > 0
    assert old.metrics()[0].metrics == new.metrics()[0].metrics


def test_gpu_idle_splits_at_each_launch_begin(tmp_path):
    # op at 100; kernel 1 launched at 110 (api 5), runs 120-130; kernel 2 launched
    # at 150 (host work after kernel 1 ended), runs 160-170; kernel 3 launched at
    # 155 while kernel 2 is still to run, starts 175 (5 us after kernel 2 ended).
    ev = [
        op(100, 80, "aten::work"),
        launch(110, 5, 1),
        kernel(120, 10, 1),
        launch(150, 3, 2),
        kernel(160, 10, 2),
        launch(155, 3, 3),
        kernel(175, 5, 3),
    ]
    m = metrics(tmp_path, ev)
    # gaps: 100->120 (host 10, launch 10), 130->160 (host 20, launch 10), 170->175 (launch 5)
    assert m["gpu_idle_host_us"] == 10 + 20
    assert m["gpu_idle_launch_us"] == 10 + 10 + 5
    assert m["gpu_idle_us"] == m["gpu_idle_host_us"] + m["gpu_idle_launch_us"]


@pytest.mark.parametrize("shift", [0, -100, -(10**9)])
def test_every_metric_is_the_same_wherever_the_clock_starts(tmp_path, shift):
    # a trace's clock may start anywhere, negative included: moving every event
    # by the same amount moves no metric (the GPU's busy union was clamped at 0)
    ev = [
        launch(0, 1, 1),
        kernel(10, 50, 1, stream=7),
        launch(2, 1, 2),
        kernel(20, 50, 2, stream=8),
        launch(80, 1, 3),
        kernel(90, 5, 3, stream=7),
    ]
    for e in ev:
        e["ts"] += shift
    m = metrics(tmp_path, ev)
    assert m["gpu_busy_us"] == 60 + 5  # union [10, 70] and [90, 95]
    assert m["il_us"] == 95 and m["gpu_idle_union_us"] == 95 - 65


def test_sums_past_int64_are_not_wrapped(tmp_path):
    """Three launch-to-start times of about 2**63 - 904 ns each fit int64 (and the
    trace's span check); their int64 sum wrapped, so TKLQT read 9.2e15 us, less
    than three times its median."""
    big = 4611686018427387  # us: launches at -big - 0.904, kernels at +big
    ev = []
    for c in (1, 2, 3):
        ev += [launch(-big - 0.904, 0, c), kernel(big, 0, c)]
    m = metrics(tmp_path, ev)
    lq_ns = 2 * big * 1000 + 904
    assert m["tklqt_us"] == pytest.approx(3 * lq_ns / 1e3, rel=1e-12)
    assert m["launch_wait_us"] == pytest.approx(3 * lq_ns / 1e3, rel=1e-12)
    assert m["mean_lq_us"] == pytest.approx(m["median_lq_us"], rel=1e-12)
