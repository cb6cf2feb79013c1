"""Launch-latency microbenchmarks with null kernels (csrc/bench/launch_bench.cpp).

Each measurement is a distribution (median, p10, p90) in nanoseconds:

- ``launch_call``: CPU time of one launch call (driver, runtime);
- ``launch_to_start``: kernel start minus call begin on an idle GPU, from a
  skipnative capture;
- ``throughput``: per-launch time of back-to-back launches;
- ``queue_depth``: behind a long-running kernel, how many launches return
  before one blocks (the CPU starts to wait for the GPU);
- ``roundtrip``: launch plus synchronize;
- ``graph``: one graph launch of N kernels against N launches (each + sync);
- ``overhead``: the same launch loop unprofiled, under skipnative's timing
  session (the two alternating in blocks) and then under torch.profiler (which
  keeps CUPTI once used, so it comes last), in one run (SPEC.md §6): added CPU
  time per launch and the ratio, median against median.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# The queue probe: behind a kernel spinning QUEUE_SPIN_MS, the call that finds
# the queue full waits for that kernel, far longer than any preemption of the
# launching thread; a quarter of the spin tells the two apart.
QUEUE_SPIN_MS = 200.0
QUEUE_PROBE_LAUNCHES = 4096
BLOCK_NS = QUEUE_SPIN_MS * 1e6 / 4
OVERHEAD_BLOCKS = 5  # alternating unprofiled / skipnative blocks
IDLE_LAUNCHES = 200  # per API, for launch-to-start on an idle GPU


def stats(samples) -> dict[str, float]:
    a = np.asarray(samples, dtype=float)
    if a.size == 0:
        return {"n": 0, "median": float("nan"), "p10": float("nan"), "p90": float("nan")}
    p10, med, p90 = np.percentile(a, [10, 50, 90])
    return {"n": int(a.size), "median": float(med), "p10": float(p10), "p90": float(p90)}


def queue_depth(call_ns, block_ns: float = BLOCK_NS) -> int | None:
    """Launches that returned before the first one that blocked; None if none did."""
    over = np.flatnonzero(np.asarray(call_ns) > block_ns)
    return int(over[0]) if len(over) else None


def run(
    iters: int = 2000, *, graph_kernels: int = 100, device: int = 0, profilers: bool = True
) -> dict[str, Any]:
    import skipnative
    from skipnative import _native
    from skipnative._loader import wheel_cupti_dirs

    runtime_dirs = wheel_cupti_dirs()  # nvidia/cu13/lib holds libcudart too
    b = _native.LaunchBench(device, runtime_dirs)
    apis = {"driver": _native.LaunchApi.driver}
    if b.has_runtime:
        apis["runtime"] = _native.LaunchApi.runtime
    for api in apis.values():  # warm-up: JIT, module load, first launches
        b.launch_call(api, 200)
    out: dict[str, Any] = {
        "device": b.device_name,
        "iters": iters,
        "runtime": b.runtime_path or None,
        "apis": {},
    }
    for name, api in apis.items():
        probe = b.queue_probe(api, QUEUE_PROBE_LAUNCHES, QUEUE_SPIN_MS)
        out["apis"][name] = {
            "launch_call": stats(b.launch_call(api, iters)),
            "throughput": stats(b.throughput(api, iters, 10)),
            "roundtrip": stats(b.roundtrip(api, max(iters // 4, 10))),
            "queue_depth": queue_depth(probe),
        }
    out["graph"] = {
        "kernels": graph_kernels,
        "graph_launch_sync": stats(b.graph_launch(graph_kernels, 50)),
        "stream_launches_sync": stats(b.stream_launches(graph_kernels, 50)),
    }
    if not profilers:
        return out
    # skipnative's added cost: unprofiled and captured blocks alternate, so drift
    # between blocks (clock boost, other load) hits both alike
    per_block = max(iters // OVERHEAD_BLOCKS, 10)
    base: dict[str, list[float]] = {n: [] for n in apis}
    prof: dict[str, list[float]] = {n: [] for n in apis}
    first: dict[str, list[float]] = {}
    for block in range(OVERHEAD_BLOCKS):
        for n, a in apis.items():
            base[n] += b.launch_call(a, per_block)
        if block == 0:  # before any capture: does the process run as fast after one?
            first = {n: list(v) for n, v in base.items()}
        with skipnative.capture():
            for n, a in apis.items():
                prof[n] += b.launch_call(a, per_block)
    # launch-to-start on an idle GPU: each launch waits for the previous kernel
    with skipnative.capture() as cap:
        for a in apis.values():
            b.idle_launches(a, IDLE_LAUNCHES)
    from skipnative.metrics import join_kernels

    kt = join_kernels(cap.trace)
    idle = (kt.t_start - kt.l_begin)[kt.launch >= 0]
    out["launch_to_start_idle"] = stats(idle)
    over = {"unprofiled": base, "unprofiled_before_any_capture": first, "skipnative": prof}
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile

        if torch.cuda.is_available():
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]):
                over["torch_profiler"] = {n: b.launch_call(a, iters) for n, a in apis.items()}
    except ImportError:
        pass
    runs = {k: {n: stats(v[n]) for n in apis} for k, v in over.items()}
    out["overhead"] = {
        k: {n: v[n]["median"] - runs["unprofiled"][n]["median"] for n in apis}
        for k, v in runs.items()
    }
    out["overhead_ratio"] = {
        k: {n: v[n]["median"] / runs["unprofiled"][n]["median"] for n in apis}
        for k, v in runs.items()
    }
    out["overhead_runs"] = runs
    return out


def table(res: dict[str, Any]) -> str:
    """A readable table of a result (also for recorded ones)."""
    lines = [
        f"null-kernel launches on {res['device']} ({res['iters']} iterations; ns: "
        "median [p10, p90])"
    ]

    def cell(s):
        return f"{s['median']:>9.0f} [{s['p10']:.0f}, {s['p90']:.0f}]"

    for name, r in res["apis"].items():
        lines.append(
            f"  {name:<8} launch call {cell(r['launch_call'])}   back-to-back "
            f"{cell(r['throughput'])}   launch+sync {cell(r['roundtrip'])}   "
            f"queue depth {r['queue_depth'] if r['queue_depth'] is not None else '-'}"
        )
    g = res["graph"]
    lines.append(
        f"  graph of {g['kernels']}: launch+sync {cell(g['graph_launch_sync'])}  vs "
        f"{g['kernels']} launches+sync {cell(g['stream_launches_sync'])}  "
        f"({g['stream_launches_sync']['median'] / g['graph_launch_sync']['median']:.1f}x)"
    )
    if "launch_to_start_idle" in res:
        lines.append(f"  launch-to-start, idle GPU {cell(res['launch_to_start_idle'])}")
    overhead = res.get("overhead", {})
    for prof, per_api in overhead.items():
        if prof.startswith("unprofiled"):
            continue
        ratio = res.get("overhead_ratio", {}).get(prof, {})
        added = ", ".join(
            f"{n} {v:+.0f} ns" + (f" (x{ratio[n]:.2f})" if n in ratio else "")
            for n, v in per_api.items()
        )
        lines.append(f"  added CPU time per launch under {prof}: {added}")
    if "unprofiled_before_any_capture" in overhead:
        after = ", ".join(
            f"{n} {-v:+.0f} ns" for n, v in overhead["unprofiled_before_any_capture"].items()
        )
        lines.append(f"  unprofiled launch calls after captures, against before any: {after}")
    return "\n".join(lines)
