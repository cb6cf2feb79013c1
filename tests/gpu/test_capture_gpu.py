"""The real CUPTI path on a GPU: joins, clock, counts against torch.profiler."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import skipnative
from skipnative.trace import KIND_GRAPH

HERE = Path(__file__).parent
ITERS = 5


@pytest.fixture(scope="module")
def captured():
    import torch

    sys.path.insert(0, str(HERE))
    from workload import make

    step = make()
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    with skipnative.capture(latency_timestamps=True) as cap:
        for i in range(ITERS):
            cap.mark(f"iter{i}")
            step()
    return cap


def test_capture_is_available():
    ok, why = skipnative.available()
    assert ok, why


def test_every_kernel_joins_its_launch(captured):
    t = captured.trace
    import torch

    assert t.meta["devices"][0]["name"] == torch.cuda.get_device_name(0)
    assert len(t.kernels) >= ITERS * 8 * 3
    m = t.metrics(region="all")[0].metrics
    assert m["n_unmatched_kernels"] == 0
    assert m["n_counted_kernels"] == m["n_kernels"] == len(t.kernels)
    assert captured.metadata["dropped"] == dict.fromkeys(
        ("launches", "cupti", "gpu_rows", "spilled", "incomplete", "unallocated"), 0
    )


def test_no_negative_launch_to_start(captured):
    t = captured.trace
    m = t.metrics(region="all")[0].metrics
    assert m["n_negative_lq"] == 0
    lc = t.launches
    order = np.argsort(lc["correlation"])
    idx = np.searchsorted(lc["correlation"][order], t.kernels["correlation"])
    begins = lc["t_begin"][order][idx]
    assert (t.kernels["t_start"] >= begins).all()
    # and the launch call itself has positive duration
    assert (lc["t_end"] > lc["t_begin"]).all()


def test_latency_timestamps_are_ordered(captured):
    k = captured.trace.kernels
    assert (k["t_submitted"] > 0).all() and (k["t_queued"] > 0).all()
    assert (k["t_queued"] <= k["t_submitted"]).all()
    assert (k["t_submitted"] <= k["t_start"]).all()


def test_regions_hold_the_same_kernels(captured):
    rows = [r for r in captured.trace.metrics() if r.name.startswith("iter")]
    counts = {r.metrics["n_kernels"] for r in rows}
    assert len(rows) == ITERS and len(counts) == 1


def test_kernel_count_equals_torch_profiler(captured, tmp_path):
    out = tmp_path / "kineto.json"
    subprocess.run(
        [sys.executable, str(HERE / "workload.py"), str(out), str(ITERS)], check=True, timeout=300
    )
    kineto = skipnative.load(out)
    native = captured.trace
    assert len(kineto.kernels) == len(native.kernels)
    assert sorted(kineto.name(kineto.kernels["name_id"])) == sorted(
        native.name(native.kernels["name_id"])
    )


@pytest.mark.parametrize(
    "option", [{"serial_kernels": True}, {"device_buffer_host_pinned": True}], ids=str
)
def test_kernel_record_options_capture_the_same_kernels(captured, option):
    """The cheaper-record candidates (bench/gpu_overhead.py measures their cost)
    must record what the default does."""
    import torch

    sys.path.insert(0, str(HERE))
    from workload import make

    step = make()
    step()
    torch.cuda.synchronize()
    with skipnative.capture(**option) as cap:
        for _ in range(ITERS):
            step()
    t, ref = cap.trace, captured.trace
    assert sorted(t.name(t.kernels["name_id"])) == sorted(ref.name(ref.kernels["name_id"]))
    m = t.metrics(region="all")[0].metrics
    assert m["n_unmatched_kernels"] == 0 and m["n_negative_lq"] == 0
    assert cap.metadata[next(iter(option))] is True


def test_launch_records_from_activity_match_the_callbacks():
    """The same work captured with launch times from callbacks and from CUPTI's
    API activity records: the same launches, threads and kernels, and call times
    on the same clock (no kernel starts before its call)."""
    import torch

    sys.path.insert(0, str(HERE))
    from workload import make

    step = make()
    step()
    torch.cuda.synchronize()
    traces = {}
    for source in ("callbacks", "activity"):
        with skipnative.capture(launch_records=source) as cap:
            for _ in range(ITERS):
                step()
        traces[source] = cap.trace
    a, b = traces["callbacks"], traces["activity"]
    assert len(a.launches) == len(b.launches) and len(a.kernels) == len(b.kernels)
    assert set(a.launches["tid"].tolist()) == set(b.launches["tid"].tolist())
    assert sorted(a.name(a.launches["name_id"])) == sorted(b.name(b.launches["name_id"]))
    m = b.metrics(region="all")[0].metrics
    assert m["n_unmatched_kernels"] == 0 and m["n_negative_lq"] == 0
    da = np.median(a.launches["t_end"] - a.launches["t_begin"])
    db = np.median(b.launches["t_end"] - b.launches["t_begin"])
    assert 0.3 < db / da < 3


def test_profile_measures_its_own_perturbation():
    import torch

    sys.path.insert(0, str(HERE))
    from workload import make

    from skipnative.profiling import profile

    prof = profile(make(), iters=2, attribution=False, fidelity_reps=10)
    fid = prof.summary()["fidelity"]
    assert fid["reps"] == 10
    assert fid["il_unprofiled_ms"] > 0 and fid["il_profiled_ms"] > 0
    # a capture cannot make the same work several times faster, nor 10x slower
    assert -0.5 < fid["perturbation"] < 10
    assert torch.cuda.is_available()


def test_cuda_graph_replay_counts_once_per_launch():
    sys.path.insert(0, str(HERE))
    from workload import make

    from skipnative.profiling.workloads import as_cuda_graph

    replay = as_cuda_graph(make())
    with skipnative.capture() as cap:
        for _ in range(4):
            replay()
    t = cap.trace
    graph_launches = t.launches[t.launches["kind"] == KIND_GRAPH]
    assert len(graph_launches) == 4
    m = t.metrics(region="all")[0].metrics
    assert m["n_counted_kernels"] == 4
    assert m["n_kernels"] == len(t.kernels) >= 4 * 8 * 3
    assert (t.kernels["graph_id"] > 0).all()


def test_torch_profiler_first_is_a_clear_error():
    code = textwrap.dedent("""
        import torch, skipnative
        from torch.profiler import profile, ProfilerActivity
        x = torch.ones(8, device="cuda")
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]):
            (x + 1).sum().item()
        try:
            skipnative.capture().start()
        except skipnative.CaptureError as e:
            print("ERROR:", e)
        else:
            print("STARTED")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "ERROR:" in r.stdout and "torch.profiler" in r.stdout, r.stdout


def test_torch_profiler_after_a_session_sees_every_kernel_intact(tmp_path):
    # skipnative tells CUPTI its activity buffers come zeroed, and must undo that at
    # stop: Kineto's buffers are not zeroed, and its records must come out whole.
    out = tmp_path / "after.json"
    code = textwrap.dedent(f"""
        import sys, json, torch, skipnative
        sys.path.insert(0, {str(HERE)!r})
        from workload import make
        from torch.profiler import profile, ProfilerActivity
        step = make()
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        with skipnative.capture() as cap:
            for _ in range({ITERS}):
                step()
            torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range({ITERS}):
                step()
            torch.cuda.synchronize()
        prof.export_chrome_trace({str(out)!r})
        print(json.dumps({{"prezeroed": cap.metadata["buffers_prezeroed"],
                           "kernels": len(cap.trace.kernels)}}))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["prezeroed"]
    kineto = skipnative.load(out)
    assert len(kineto.kernels) == res["kernels"]
    assert all(kineto.name(kineto.kernels["name_id"]))
    dur = kineto.kernels["t_end"] - kineto.kernels["t_start"]
    assert ((dur >= 0) & (dur < 1_000_000_000)).all()  # no garbage records


def test_skip_bench_launch_on_the_gpu():
    import torch

    r = subprocess.run(
        [sys.executable, "-m", "skipnative", "bench", "launch", "--json", "--iters", "200",
         "--graph-kernels", "20"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["device"] == torch.cuda.get_device_name(0)
    assert "driver" in res["apis"]
    for name, a in res["apis"].items():
        assert 300 < a["launch_call"]["median"] < 100_000, name
        assert a["roundtrip"]["median"] > a["launch_call"]["median"], name
        assert a["queue_depth"] is None or a["queue_depth"] > 0, name
    assert res["launch_to_start_idle"]["n"] == 200 * len(res["apis"])
    assert res["launch_to_start_idle"]["median"] > 0
    g = res["graph"]
    assert g["stream_launches_sync"]["median"] > g["graph_launch_sync"]["median"]
    assert {"skipnative", "torch_profiler"} <= set(res["overhead"])
