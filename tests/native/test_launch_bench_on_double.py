"""The launch microbenchmarks end to end on the CUDA driver and runtime doubles.

The doubles replace libcuda.so.1 and libcudart.so.13 for the rest of a process,
so every test runs its own. The simulated GPU runs in real time here (the
benchmarks time calls with the CPU's clock): launch calls spin for their cost,
kernels run on per-stream FIFOs, and a stream holds at most QUEUE_DEPTH
unfinished kernels, so every figure has a floor the simulation guarantees.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

COST, LATENCY, KERNEL, QUEUE_DEPTH = 3000, 4000, 2000, 64

PREAMBLE = f"""
import json, sys
sys.modules["torch"] = None  # torch would link the runtime double as its libcudart
from skipnative.testing import simulate_cuda
sim = simulate_cuda()
sim.reset()
sim.configure(launch_cost_ns={COST}, submit_latency_ns={LATENCY}, real_time=True)
sim.set_kernel_ns({KERNEL})
sim.set_queue_depth({QUEUE_DEPTH})
"""


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", PREAMBLE + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_skip_bench_launch_measures_the_simulated_gpu():
    r = run("""
        from skipnative.cli.main import main
        sys.exit(main(["bench", "launch", "--json", "--iters", "200", "--graph-kernels", "20"]))
    """)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["device"] == "skipnative simulated GPU"
    assert res["runtime"] == "libcudart.so.13"
    assert set(res["apis"]) == {"driver", "runtime"}
    for name, a in res["apis"].items():
        assert a["launch_call"]["n"] == 200
        assert COST <= a["launch_call"]["median"] < COST + 100_000, name
        assert a["throughput"]["median"] >= COST, name
        # a launch, then a synchronize that waits for the kernel to finish
        assert a["roundtrip"]["median"] >= COST + LATENCY + KERNEL, name
        # behind the spin kernel, QUEUE_DEPTH - 1 null kernels fit before a call blocks
        assert a["queue_depth"] == QUEUE_DEPTH - 1, name
        assert a["queue_depth_captured"] == QUEUE_DEPTH - 1, name
    g = res["graph"]
    assert g["kernels"] == 20
    assert g["graph_launch_sync"]["median"] >= 20 * KERNEL
    assert g["stream_launches_sync"]["median"] > g["graph_launch_sync"]["median"]
    # kernel start - call begin on an idle GPU: the call's cost plus the submission latency
    assert COST + LATENCY <= res["launch_to_start_idle"]["median"] < COST + LATENCY + 100_000
    assert res["launch_to_start_idle"]["n"] == 400
    assert set(res["overhead"]) == {
        "unprofiled",
        "unprofiled_before_any_capture",
        "skipnative",
        "skipnative_defaults",
        "skipnative_callbacks_only",
        "skipnative_activity_only",
        "skipnative_launch_activity",
    }
    assert set(res["overhead"]["skipnative"]) == {"driver", "runtime"}
    assert res["overhead_runs"]["skipnative"]["driver"]["n"] == 200  # 5 blocks of 40
    runs, ratio = res["overhead_runs"], res["overhead_ratio"]["skipnative"]["driver"]
    assert ratio == pytest.approx(
        runs["skipnative"]["driver"]["median"] / runs["unprofiled"]["driver"]["median"]
    )
    assert "torch_profiler" not in res["overhead"]  # no torch in this process


def test_each_overhead_line_says_which_capture_it_measured():
    """The double charges nothing for latency timestamps, so the timing pass's
    options and the capture defaults cost the same there: two lines that read as
    one printed twice, unless each says what it measured."""
    from skipnative.profiling.launchbench import OVERHEAD_CAPTURES

    r = run("""
        from skipnative.cli.main import main
        sys.exit(main(["bench", "launch", "--iters", "100", "--graph-kernels", "5"]))
    """)
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if "added CPU time per launch under" in x]
    assert len(lines) == len(set(lines)) == len(OVERHEAD_CAPTURES), r.stdout
    for label, options in OVERHEAD_CAPTURES.items():
        (line,) = [x for x in lines if f" under {label} (" in x]
        for k, v in options.items():
            assert f"{k}={v!r}" in line, line
        if not options:
            assert "capture defaults" in line, line


def test_overhead_loops_never_wait_for_a_full_queue():
    """Kernels slower than launches fill the queue of a long loop and the calls then
    wait for the GPU; the overhead loops drain it often enough that they measure
    the calls alone."""
    slow = 10 * KERNEL
    r = run(f"""
        from skipnative.profiling.launchbench import run
        sim.set_kernel_ns({slow})
        res = run(1000, graph_kernels=5)
        print(json.dumps(res))
    """)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.splitlines()[-1])
    assert res["overhead_drain"] == (QUEUE_DEPTH - 1) // 2
    for name, a in res["apis"].items():
        # 1000 undrained launches: past the queue's depth each call waits a kernel
        assert a["throughput"]["median"] >= slow * 0.9, name
        for label, runs in res["overhead_runs"].items():
            assert runs[name]["median"] < slow / 2, (label, name)


def test_each_launch_is_recorded_once_and_graphs_keep_their_kernels():
    r = run("""
        import numpy as np
        import skipnative
        from skipnative import _native
        from skipnative.analysis.kernels import join_kernels

        b = _native.LaunchBench(0, [])
        with skipnative.capture() as cap:
            b.idle_launches(_native.LaunchApi.runtime, 10)
            b.idle_launches(_native.LaunchApi.driver, 5)
            b.graph_launch(8, 3)
        t = cap.trace
        kt = join_kernels(t)
        k = t.kernels
        print(json.dumps({
            "launches": sorted(t.name(t.launches["name_id"])),
            "kernels": len(k),
            "joined": int((kt.launch >= 0).sum()),
            "graphs": sorted(set(int(x) for x in k["graph_id"] if x)),
            "per_graph": int(np.bincount(k["graph_id"])[k["graph_id"][-1]]),
        }))
    """)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    names = out["launches"]
    # the runtime's inner cuLaunchKernel is not a second launch; the graph's
    # captured launches are API calls without kernels
    assert names.count("cudaLaunchKernel") == 10
    assert names.count("cuLaunchKernel") == 5 + 8
    assert names.count("cuGraphLaunch") == 4  # an upload replay, then 3 timed
    assert out["kernels"] == 10 + 5 + 4 * 8 and out["joined"] == out["kernels"]
    assert len(out["graphs"]) == 4 and out["per_graph"] == 8


@pytest.mark.parametrize(
    ("function", "code", "expected"),
    [
        ("cuInit", 100, "needs a GPU: cuInit failed with CUDA error 100 (no CUDA-capable device)"),
        ("cuModuleLoadData", 218, "cuModuleLoadData failed: a PTX JIT compilation failed"),
        ("cuDevicePrimaryCtxRetain", 101, "cuDevicePrimaryCtxRetain failed: invalid device"),
    ],
)
def test_driver_failures_are_one_line(function, code, expected):
    r = run(f"""
        sim.fail("{function}", {code})
        from skipnative.cli.main import main
        sys.exit(main(["bench", "launch"]))
    """)
    assert r.returncode == 1
    assert expected in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_failing_launch_mid_run_is_one_line():
    r = run("""
        from skipnative import _native
        b = _native.LaunchBench(0, [])
        sim.fail("cuLaunchKernel", 1)
        try:
            b.launch_call(_native.LaunchApi.driver, 10)
        except _native.BenchError as e:
            print(e)
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "cuLaunchKernel failed: invalid argument"


def test_without_a_usable_runtime_the_driver_is_measured_alone():
    r = run("""
        sim.fail("cudaLibraryLoadData", 1)
        from skipnative.cli.main import main
        sys.exit(main(["bench", "launch", "--json", "--iters", "50", "--no-profilers"]))
    """)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert list(res["apis"]) == ["driver"] and res["runtime"] is None
    assert "overhead" not in res


def test_a_bench_releases_what_it_loaded_unless_kept():
    r = run("""
        from skipnative import _native
        b = _native.LaunchBench(0, [])
        loaded = sim.live()
        del b
        released = sim.live()
        b = _native.LaunchBench(0, [])
        b.keep_loaded()
        del b
        print(json.dumps([loaded, released, sim.live()]))
    """)
    assert r.returncode == 0, r.stderr
    loaded, released, kept = json.loads(r.stdout.splitlines()[-1])
    assert loaded == {"modules": 2, "context_refs": 1}  # the driver module, the runtime library
    assert released == {"modules": 0, "context_refs": 0}
    assert kept == loaded


def test_a_capture_option_this_cupti_refuses_is_reported_not_fatal():
    r = run("""
        import skipnative.profiling.launchbench as lb
        lb.OVERHEAD_CAPTURES = {**lb.OVERHEAD_CAPTURES, "skipnative_hw_trace": {"hw_trace": True}}
        res = lb.run(100, graph_kernels=5)
        print(json.dumps(res))
    """)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.splitlines()[-1])
    assert "hw_trace=True refused" in res["refused"]["skipnative_hw_trace"]
    assert "skipnative_hw_trace" not in res["overhead"]
    assert "skipnative_launch_activity" in res["overhead"]  # the others measured
    from skipnative.profiling.launchbench import table

    assert "skipnative_hw_trace: not measured, this CUPTI refused it" in table(res)
