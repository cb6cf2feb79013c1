"""The rules SPEC.md v1.1 added or changed, each on a small generated trace with
its answer worked out by hand (times in µs as written in the trace)."""

from __future__ import annotations

import json

import skipnative
from kineto_gen import PID, kernel, launch, op, step, write
from test_cli import skip


def load(tmp_path, events, **top):
    return skipnative.load(write(tmp_path / "t.json", events, **top))


def only(rows):
    assert len(rows) == 1, rows
    return rows[0].metrics


def test_the_four_counts_add_up_to_n_kernels(tmp_path):
    ev = [
        launch(100, 5, 1),
        kernel(110, 5, 1),  # counted
        launch(200, 10, 2, name="cudaGraphLaunch"),
        kernel(220, 5, 2),  # counted: the graph launch's first
        kernel(230, 5, 2),  # graph extra
        kernel(240, 5, 2),  # graph extra
        kernel(300, 5, 99),  # unmatched
        launch(400, 5, 3, name="cudaMemcpyAsync"),
        kernel(410, 5, 3),  # joined to a copy call
        launch(500, 5, 4, name="cudaFuncGetAttributes"),
        kernel(510, 5, 4),  # joined to an unknown call
    ]
    m = only(load(tmp_path, ev).metrics())
    assert m["n_kernels"] == 7
    assert m["n_counted_kernels"] == 2
    assert m["n_graph_extra_kernels"] == 2
    assert m["n_unmatched_kernels"] == 1
    assert m["n_other_call_kernels"] == 2
    assert m["tklqt_us"] == 10 + 20


def test_hip_calls_are_the_same_kinds(tmp_path):
    """A ROCm trace: hipLaunchKernel / hipExtModuleLaunchKernel are kernel launches,
    hipGraphLaunch a graph launch, string-valued args of a copy call are not read."""
    copy = launch(50, 20, 5, name="hipMemcpyWithStream")
    copy["args"] |= {"stream": "0x0", "size": "2560", "kind": "1"}
    ev = [
        copy,
        launch(100, 5, 1, name="hipLaunchKernel"),
        kernel(110, 5, 1),
        launch(200, 5, 2, name="hipExtModuleLaunchKernel"),
        kernel(215, 5, 2),
        launch(300, 5, 3, name="hipGraphLaunch"),
        kernel(320, 5, 3),
        kernel(330, 5, 3),
    ]
    t = load(tmp_path, ev, deviceProperties=[{"id": 0, "name": "AMD Instinct MI250X"}])
    m = only(t.metrics())
    assert (m["n_counted_kernels"], m["n_graph_extra_kernels"]) == (3, 1)
    assert m["tklqt_us"] == 10 + 15 + 20
    assert m["il_us"] == 335 - 50  # from the copy call: a launch of §1
    from skipnative.trace import vendor

    assert vendor(t) == "AMD"


def test_negative_lq_contributes_zero_to_every_sum(tmp_path):
    ev = [launch(100, 5, 1), kernel(112, 3, 1), launch(200, 10, 2), kernel(190, 3, 2)]
    m = only(load(tmp_path, ev).metrics())
    assert m["n_negative_lq"] == 1 and m["min_negative_lq_us"] == -10
    assert (m["tklqt_us"], m["launch_api_us"], m["launch_wait_us"]) == (12, 5, 7)
    assert m["n_counted_kernels"] == 2  # still counted, contributing 0


def test_il_fallback_starts_at_the_first_launch_not_any_call(tmp_path):
    ev = [
        launch(0, 50, 9, name="cudaDeviceSynchronize"),
        launch(10, 2, 8, name="cudaGetDeviceProperties"),
        launch(100, 5, 1, name="cudaMemcpyAsync"),
        launch(200, 5, 2),
        kernel(210, 40, 2),
    ]
    m = only(load(tmp_path, ev).metrics())
    assert m["il_us"] == 250 - 100


def test_regions_are_cpu_side_profiler_steps_only(tmp_path):
    gpu_copy = step(100, 300, 1) | {"cat": "gpu_user_annotation", "pid": 0, "tid": 7}
    old_style = step(500, 300, 2) | {"cat": "cpu_op"}
    ev = [step(100, 300, 1), gpu_copy, old_style, op(520, 50, "aten::mm")]
    ev += [launch(150, 5, 1), kernel(160, 10, 1), launch(530, 5, 2), kernel(540, 10, 2)]
    t = load(tmp_path, ev)
    names = [r.name for r in t.metrics()]
    assert names == ["all", "ProfilerStep#1", "ProfilerStep#2"]  # no gpu_user_annotation copy
    assert len(t.ops) == 1  # a ProfilerStep (even a cpu_op one) is never an ATen op
    steps = {r.name: r.metrics for r in t.metrics()}
    assert steps["ProfilerStep#1"]["il_us"] == 170 - 100  # its marker: no ops inside
    assert steps["ProfilerStep#2"]["il_us"] == 550 - 520  # its first top-level op


def test_stream_predecessor_may_lie_in_an_earlier_region(tmp_path):
    # step 1's kernel runs long; step 2's launch returns (at 215) while it still runs
    ev = [step(100, 100, 1), step(200, 100, 2)]
    ev += [launch(150, 5, 1), kernel(160, 100, 1), launch(210, 5, 2), kernel(260, 5, 2)]
    rows = {r.name: r.metrics for r in load(tmp_path, ev).metrics()}
    assert rows["ProfilerStep#2"]["queued_fraction"] == 1.0
    assert rows["ProfilerStep#2"]["bound"] == "gpu"
    assert rows["ProfilerStep#1"]["queued_fraction"] == 0.0


def test_bound_is_none_with_nothing_counted(tmp_path):
    ev = [launch(100, 5, 1, name="cudaMemcpyAsync"), kernel(110, 5, 1), kernel(200, 5, 77)]
    m = only(load(tmp_path, ev).metrics())
    assert m["n_counted_kernels"] == 0 and m["bound"] == "none"
    out = skip("analyze", write(tmp_path / "n.json", ev))
    assert "not classified" in out.stdout and "NONE-bound" not in out.stdout


def test_annotation_regions_each_occurrence_its_own(tmp_path):
    fwd = [step(t, 50, 0) | {"name": "## forward ##"} for t in (100, 300)]
    ev = fwd + [launch(110, 5, 1), kernel(120, 10, 1), launch(310, 5, 2), kernel(330, 10, 2)]
    ev += [launch(200, 5, 3), kernel(205, 10, 3)]  # outside both
    t = load(tmp_path, ev)
    assert [r.name for r in t.metrics()] == ["all"]  # not a region unless named
    rows = t.metrics(region="## forward ##")
    assert [r.metrics["n_kernels"] for r in rows] == [1, 1]
    assert [r.metrics["il_us"] for r in rows] == [130 - 100, 340 - 300]
    assert [r.metrics["tklqt_us"] for r in rows] == [10, 20]


def test_unknown_region_lists_the_names_there_are(tmp_path):
    ev = [step(100, 50, 1), step(150, 50, 2), step(100, 20, 0) | {"name": "## forward ##"}]
    ev += [launch(110, 5, 1), kernel(120, 10, 1)]
    r = skip("analyze", write(tmp_path / "t.json", ev), "--region", "nope", ok=False)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "no region named 'nope'" in r.stderr
    assert "ProfilerStep#1 .. ProfilerStep#2" in r.stderr and "## forward ##" in r.stderr


def test_window_restricts_every_metric_to_launches_inside_it(tmp_path):
    # trace starts at 1000 µs; the window 100:300 is [1100, 1300)
    ev = [launch(1000, 5, 1), kernel(1010, 5, 1)]  # before: left out
    ev += [launch(1150, 5, 2), kernel(1160, 20, 2), launch(1250, 5, 3), kernel(1290, 20, 3)]
    ev += [launch(1300, 5, 4), kernel(1310, 5, 4)]  # at END: left out
    path = write(tmp_path / "t.json", ev)
    out = json.loads(skip("analyze", path, "--json", "--window", "100:300").stdout)
    (r,) = out["regions"]
    m = r["metrics"]
    assert out["window_us"] == [100, 300]
    assert m["n_kernels"] == 2 and m["tklqt_us"] == 10 + 40
    assert m["il_us"] == 1310 - 1150  # from the first launch inside the window
    open_end = json.loads(skip("analyze", path, "--json", "--window", "200:").stdout)
    assert open_end["regions"][0]["metrics"]["n_kernels"] == 2
    bad = skip("analyze", path, "--window", "300:100", ok=False)
    assert bad.returncode == 2 and "--window" in bad.stderr  # a bad argument: exit status 2


def test_idle_split_over_several_streams_is_said_and_given_per_stream(tmp_path):
    # two streams each idle 90 µs before its kernel: 180 summed, IL only 110
    ev = [launch(0, 1, 9, name="cudaMemsetAsync"), launch(80, 5, 1), kernel(90, 20, 1)]
    ev += [launch(85, 5, 2), kernel(90, 20, 2, stream=8)]
    path = write(tmp_path / "t.json", ev)
    out = json.loads(skip("analyze", path, "--json").stdout)
    (r,) = out["regions"]
    m = r["metrics"]
    assert m["il_us"] == 110 and m["gpu_idle_streams"] == 2
    assert m["gpu_idle_host_us"] + m["gpu_idle_launch_us"] == 180 > m["il_us"]
    per = {s["stream"]: (s["host_us"], s["launch_us"]) for s in r["idle_by_stream"]}
    assert per == {7: (80, 10), 8: (85, 5)}
    text = skip("analyze", path).stdout
    assert "summed over 2 streams" in text and "exceed il_us" in text


def test_two_devices_per_device_rows(tmp_path):
    ev = [launch(100, 5, 1), kernel(110, 10, 1, device=0)]
    ev += [launch(105, 5, 2, tid=2), kernel(130, 10, 2, device=1)]
    rows = {r.device: r.metrics for r in load(tmp_path, ev).metrics()}
    assert sorted(rows) == [0, 1]
    assert (rows[0]["tklqt_us"], rows[1]["tklqt_us"]) == (10, 25)
    assert rows[0]["il_us"] == 120 - 100 and rows[1]["il_us"] == 140 - 100
    assert PID == 100  # both launched from one process
