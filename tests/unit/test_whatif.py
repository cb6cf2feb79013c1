"""What-if replay: reproduces measured traces; responds to the CPU as it should."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import skipnative
from kineto_gen import kernel, launch, step, write
from realdata import CUDA
from skipnative.analysis.sweep import queue_transition, run_summary, series, tklqt_knee
from skipnative.analysis.whatif import predict, replay

REAL = CUDA


@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_unchanged_replay_reproduces_every_region(path):
    t = skipnative.load(path)
    for r in predict(t, cpu_scale=1.0):
        assert r["predicted_il_us"] == pytest.approx(r["measured_il_us"], rel=0.05)
        assert r["predicted_il_us"] == pytest.approx(r["measured_il_us"], rel=1e-6)
        assert r["predicted_tklqt_us"] == pytest.approx(r["measured_tklqt_us"], rel=1e-6)


@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_predicted_latency_never_falls_as_the_cpu_slows(path):
    t = skipnative.load(path)
    il = [predict(t, cpu_scale=s)[0]["predicted_il_us"] for s in (0.5, 0.8, 1.0, 1.5, 3.0)]
    assert il == sorted(il)


def run_trace(tmp_path, batch, *, n=40, host=20, api=5, per_batch_ns=2000, name="t"):
    """One inference iteration: n launches every host+api us, kernels of
    per_batch_ns * batch, a device sync at the end (as .item() would)."""
    ev, t = [step(0, 0, 1)], 10
    start = {}
    free = 0
    for i in range(n):
        ev.append(launch(t, api, i + 1))
        ready = t + api + 2
        s = max(ready, free)
        d = per_batch_ns * batch / 1000
        ev.append(kernel(s, d, i + 1))
        free = s + d
        start[i] = s
        t += api + host
    end = max(t, free) + 3
    ev.append(launch(t, end - t, 999, name="cudaDeviceSynchronize"))
    ev[0] = step(0, end + 5, 1)
    return skipnative.load(write(tmp_path / f"{name}{batch}.json", ev))


def test_cpu_bound_scales_gpu_bound_does_not(tmp_path):
    cpu = run_trace(tmp_path, 1)
    gpu = run_trace(tmp_path, 64)
    assert run_summary(cpu)["bound"] == "cpu" and run_summary(gpu)["bound"] == "gpu"
    r_cpu = predict(cpu, cpu_scale=2.0)[1]
    r_gpu = predict(gpu, cpu_scale=2.0)[1]
    assert r_cpu["predicted_il_us"] / r_cpu["measured_il_us"] == pytest.approx(2.0, rel=0.1)
    assert r_gpu["predicted_il_us"] / r_gpu["measured_il_us"] == pytest.approx(1.0, abs=0.05)


def test_a_slower_cpu_lengthens_the_launch_calls_inside_tklqt(tmp_path):
    # CPU-bound: no kernel queues, so each kernel starts its measured 2 us after its
    # (now twice as long) call returned: TKLQT gains exactly the added call time
    cpu = run_trace(tmp_path, 1)
    m = cpu.metrics(region="ProfilerStep#1")[0].metrics
    p = replay(cpu, cpu_scale=2.0).metrics(region="ProfilerStep#1")[0].metrics
    assert p["launch_api_us"] == pytest.approx(2 * m["launch_api_us"])
    assert p["tklqt_us"] == pytest.approx(m["tklqt_us"] + m["launch_api_us"])
    assert p["launch_wait_us"] == pytest.approx(m["launch_wait_us"])


def test_added_launch_cost(tmp_path):
    # 40 launches: 3 us more per call delays a CPU-bound run by ~120 us; a GPU-bound
    # one (the GPU is busy behind the calls) barely moves
    cpu, gpu = run_trace(tmp_path, 1), run_trace(tmp_path, 64)
    for t, lo, hi in ((cpu, 115, 125), (gpu, -1, 5)):
        m = t.metrics(region="ProfilerStep#1")[0].metrics
        p = replay(t, launch_add_ns=3000).metrics(region="ProfilerStep#1")[0].metrics
        assert lo <= p["il_us"] - m["il_us"] <= hi
        assert p["launch_api_us"] == pytest.approx(m["launch_api_us"] + 40 * 3)
    # a negative change never makes a call shorter than nothing
    p = replay(cpu, launch_add_ns=-(10**9))
    k = p.launches[p.launches["kind"] == 0]
    assert (k["t_end"] == k["t_begin"]).all()


def test_transition_moves_with_the_cpu(tmp_path):
    batches = [1, 2, 4, 8, 16, 32, 64]
    runs = [run_trace(tmp_path, b) for b in batches]
    measured = series([run_summary(r) for r in runs], batches)
    slower = series([run_summary(replay(r, cpu_scale=2.0)) for r in runs], batches)
    faster = series([run_summary(replay(r, cpu_scale=0.5)) for r in runs], batches)
    # launches every 25 us: kernels of 2 us x batch queue from batch 16 (32 us)
    assert measured["queue_transition"] == 16
    assert slower["queue_transition"] == 32 and faster["queue_transition"] == 8


def test_fusing_a_chain_saves_launch_time_when_cpu_bound(tmp_path):
    t = run_trace(tmp_path, 1)
    chain = (t.strings[t.kernels["name_id"][0]],) * 2
    fused = replay(t, fuse=[chain])
    assert len(fused.kernels) == 20 and len(fused.launches) == len(t.launches) - 20
    base = t.metrics(region="ProfilerStep#1")[0].metrics["il_us"]
    after = fused.metrics(region="ProfilerStep#1")[0].metrics["il_us"]
    assert after < base - 20 * 5 * 0.9  # 20 launch calls of 5 us gone from the critical path


def test_graphs_remove_host_work(tmp_path):
    t = run_trace(tmp_path, 1)
    g = replay(t, graphs=True)
    m = g.metrics(region="ProfilerStep#1")[0].metrics
    assert m["n_counted_kernels"] == 1 and m["n_kernels"] == 40
    assert m["il_us"] < t.metrics(region="ProfilerStep#1")[0].metrics["il_us"] / 5


def test_knee_and_transition_definitions():
    assert tklqt_knee([1, 2, 4, 8, 16], [10, 11, 10, 30, 80]) == 8
    assert tklqt_knee([1, 2, 4, 8], [10, 16, 14, 30]) == 8  # 2 does not stay above 15
    assert tklqt_knee([1, 2, 4], [10, 11, 12]) is None
    assert tklqt_knee([4, 1, 2], [30, 10, 11]) == 4  # order of the input does not matter
    assert tklqt_knee([1, 2, 4], [10, 13, 20], tau=0.2) == 2
    assert queue_transition([1, 2, 4, 8], [0.1, 0.6, 0.4, 0.9]) == 8
    assert queue_transition([1, 2], [0.1, 0.2]) is None


def test_cli_on_a_sweep_folder(tmp_path):
    batches = [1, 4, 16, 64]
    for b in batches:
        run_trace(tmp_path, b).save(tmp_path / f"b{b}.skip")
    (tmp_path / "sweep.json").write_text(
        json.dumps(
            {"card": "generated", "phase": "prefill", "points": [{"batch": b} for b in batches]}
        )
    )
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", "whatif", str(tmp_path), "--json", "--cpu-scale", "2"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["measured"]["queue_transition"] == 16
    assert out["predicted"]["queue_transition"] == 64
    # with CUDA graphs, one launch per iteration: no transition or knee to predict,
    # as the report says (the text gave a knee of the graph run's TKLQT curve)
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", "whatif", str(tmp_path), "--graphs"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.count("predicted not applicable (one launch per iteration)") == 2, last
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", "whatif", str(tmp_path / "b1.skip"), "--json"],
        capture_output=True,
        text=True,
    )
    regions = json.loads(r.stdout)["regions"]
    assert {"name", "measured_il_us", "predicted_il_us", "predicted_tklqt_us"} <= set(regions[0])


def test_cli_launch_cost_and_bad_numbers(tmp_path):
    run_trace(tmp_path, 1).save(tmp_path / "b1.skip")

    def whatif(*args):
        return subprocess.run(
            [sys.executable, "-m", "skipnative", "whatif", str(tmp_path / "b1.skip"), *args],
            capture_output=True,
            text=True,
        )

    r = whatif("--launch-add-us", "3", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["launch_add_us"] == 3
    step = next(x for x in out["regions"] if x["name"] == "ProfilerStep#1")
    assert 115 <= step["predicted_il_us"] - step["measured_il_us"] <= 125
    refused = [
        ["--cpu-scale", "nan"],
        ["--cpu-scale", "0"],
        ["--cpu-scale", "-1"],
        ["--cpu-scale", "1e300"],  # was an internal OverflowError
        ["--cpu-scale", "2e6"],
        ["--launch-add-us", "inf"],
        ["--launch-add-us", "1e300"],  # was an internal OverflowError
        ["--launch-add-us=-1e300"],
        ["--launch-add-us", "2e6"],
    ]
    for bad in refused:
        r = whatif(*bad)
        assert r.returncode == 2, (bad, r.stderr)
        assert r.stderr.count("\n") == 1 and "internal" not in r.stderr, bad
        assert bad[0].split("=")[0] in r.stderr and r.stdout == "", bad
    # the limits themselves are accepted, and print no number that is not finite
    for edge in (["--cpu-scale", "1e6"], ["--cpu-scale", "1e-9"], ["--launch-add-us=-1e6"]):
        r = whatif(*edge, "--json")
        assert r.returncode == 0, (edge, r.stderr)
        for x in json.loads(r.stdout)["regions"]:
            assert x["predicted_il_us"] >= 0 and x["predicted_il_us"] < float("inf"), edge
    h = whatif("--help").stdout
    assert "1e+06" in h or "1e6" in h or "1,000,000" in h


def test_cli_refuses_a_change_the_trace_cannot_hold(tmp_path, monkeypatch, capsys):
    # within the parser's bounds, but beyond 64-bit ns for this trace: one line, exit 1
    from skipnative.cli.main import main

    run_trace(tmp_path, 1).save(tmp_path / "b1.skip")
    monkeypatch.setattr("skipnative.analysis.whatif._TIME_LIMIT", 10**6)
    assert main(["whatif", str(tmp_path / "b1.skip"), "--cpu-scale", "1e6"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("skip: error:") and err.count("\n") == 1 and "64-bit" in err


def _copy_behind_kernel(tmp_path, copy_dur):
    """A 200 us kernel, then a cudaMemcpyAsync on its stream whose GPU copy runs after
    it (217-219 us); the call lasts `copy_dur` us from 20 us; then a second kernel."""
    copy = kernel(217, 2, 2, name="Memcpy DtoH (Device -> Pageable)")
    copy["cat"] = "gpu_memcpy"
    after = 20 + copy_dur + 10
    ev = [
        step(0, after + 20, 1),
        launch(10, 5, 1),
        kernel(17, 200, 1),
        launch(20, copy_dur, 2, name="cudaMemcpyAsync"),
        copy,
        launch(after, 5, 3),
        kernel(after + 7, 3, 3),
    ]
    return skipnative.load(write(tmp_path / f"copy{copy_dur}.json", ev))


def test_a_copy_call_that_waited_for_its_copy_still_waits_on_a_faster_cpu(tmp_path):
    # the call returned 1 us after its copy ended (a copy to pageable memory): on a
    # CPU twice as fast it still cannot return before the copy, which waits for the
    # kernel ahead of it; the next launch follows it
    t = _copy_behind_kernel(tmp_path, 200)
    p = replay(t, cpu_scale=0.5)
    ln, g = p.launches, p.gpu
    copy_call = ln[ln["correlation"] == 2][0]
    copy_row = g[g["correlation"] == 2][0]
    assert copy_row["t_start"] == g[g["correlation"] == 1][0]["t_end"]  # behind the kernel
    assert copy_call["t_end"] == copy_row["t_end"] + 1_000
    assert ln[ln["correlation"] == 3][0]["t_begin"] >= copy_call["t_end"]


def test_a_copy_call_that_returned_before_its_copy_scales_with_the_cpu(tmp_path):
    t = _copy_behind_kernel(tmp_path, 50)  # returned at 70 us, the copy ran at 217 us
    p = replay(t, cpu_scale=0.5)
    copy_call = p.launches[p.launches["correlation"] == 2][0]
    assert copy_call["t_end"] - copy_call["t_begin"] == 25_000


def test_a_quick_copy_on_an_idle_stream_is_not_held_for_its_copy(tmp_path):
    # the call (20-40 us) returned after its copy (25-30 us) ended, but nothing ran
    # before it on the stream: nothing says the call waited, so on a CPU twice as
    # fast it takes half the time, as any call
    copy = kernel(25, 5, 1, name="Memcpy HtoD (Pinned -> Device)")
    copy["cat"] = "gpu_memcpy"
    ev = [step(0, 60, 1), launch(20, 20, 1, name="cudaMemcpyAsync"), copy]
    t = skipnative.load(write(tmp_path / "idle_copy.json", ev))
    call = replay(t, cpu_scale=0.5).launches[0]
    assert call["t_end"] - call["t_begin"] == 10_000


def test_which_copies_can_wait_by_their_names():
    from skipnative.analysis.whatif import _asynchronous_copy

    # torch.profiler's names on CUDA, its name on ROCm (host memory of unknown kind),
    # a native capture's (no memory kinds)
    assert _asynchronous_copy("Memcpy HtoD (Pinned -> Device)")
    assert _asynchronous_copy("Memcpy DtoD (Device -> Device)")
    assert not _asynchronous_copy("Memcpy DtoH (Device -> Pageable)")
    assert not _asynchronous_copy("Memcpy HtoD (Host -> Device)")
    assert not _asynchronous_copy("Memcpy DtoH")
