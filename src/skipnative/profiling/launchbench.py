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
- ``queue_depth_captured``: the same probe under a skipnative capture (CUPTI's
  kernel tracing puts more work per launch into the queue);
- ``overhead``: the same launch loop unprofiled, under skipnative's sessions
  (the timing pass's options, the capture defaults, launch callbacks alone,
  kernel activity alone; all alternating in blocks) and then under
  torch.profiler (which keeps CUPTI once used, so it comes last), in one run
  (SPEC.md §6): added CPU time per launch and the ratio, median against median.
  The loops synchronise every OVERHEAD_DRAIN launches, or half the smallest
  queue depth measured if that is less (outside the timed calls), so the queue
  never fills: a profiler that slows the GPU's side of a launch must not read
  as CPU time.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# The queue probe: behind a kernel spinning QUEUE_SPIN_MS, the call that finds
# the queue full waits for that kernel, far longer than any preemption of the
# launching thread; a quarter of the spin tells the two apart.
QUEUE_SPIN_MS = 200.0
QUEUE_PROBE_LAUNCHES = 4096
BLOCK_NS = QUEUE_SPIN_MS * 1e6 / 4
OVERHEAD_BLOCKS = 5  # alternating unprofiled / skipnative blocks
OVERHEAD_DRAIN = 100  # launches between synchronisations in the overhead loops
# skipnative configurations of the overhead loops: label -> capture options
OVERHEAD_CAPTURES: dict[str, dict[str, Any]] = {
    "skipnative": {"latency_timestamps": True},  # what skipnative.profile's timing pass uses
    "skipnative_defaults": {},
    "skipnative_callbacks_only": {"kernel_activity": False, "memcpy": False, "memset": False},
    "skipnative_activity_only": {"launch_callbacks": False},
    # the timing pass's options with launch times from CUPTI's API activity records
    "skipnative_launch_activity": {"latency_timestamps": True, "launch_records": "activity"},
}
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
    from skipnative import _native
    from skipnative.capturing.loader import wheel_cupti_dirs
    from skipnative.capturing.session import capture

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
    for name, api in apis.items():
        with capture():
            probe = b.queue_probe(api, QUEUE_PROBE_LAUNCHES, QUEUE_SPIN_MS)
        out["apis"][name]["queue_depth_captured"] = queue_depth(probe)
    depths = [
        d for a in out["apis"].values() for d in (a["queue_depth"], a["queue_depth_captured"]) if d
    ]
    drain = max(1, min([OVERHEAD_DRAIN] + [d // 2 for d in depths]))
    out["overhead_drain"] = drain
    over, refused = _overhead_blocks(b, apis, max(iters // OVERHEAD_BLOCKS, 10), drain)
    # each configuration's capture options, which the table names: two of them can
    # cost the same (the CUPTI test double charges nothing for latency timestamps)
    out["overhead_options"] = {k: dict(v) for k, v in OVERHEAD_CAPTURES.items()}
    if refused:
        out["refused"] = refused
    out["launch_to_start_idle"] = stats(_idle_launch_to_start(b, apis))
    torch_runs = _under_torch_profiler(b, apis, iters, drain)
    if torch_runs is not None:
        over["torch_profiler"] = torch_runs
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


def _overhead_blocks(b, apis: dict, per_block: int, drain: int):
    """skipnative's added cost: unprofiled and captured blocks alternate, so drift
    between blocks (clock boost, other load) hits all alike. (samples per label and
    API, the configurations this CUPTI refused)."""
    from skipnative.capturing.session import CaptureError, capture

    over: dict[str, dict[str, list[float]]] = {
        label: {n: [] for n in apis} for label in ("unprofiled", *OVERHEAD_CAPTURES)
    }
    first: dict[str, list[float]] = {}
    refused: dict[str, str] = {}
    for block in range(OVERHEAD_BLOCKS):
        for n, a in apis.items():
            over["unprofiled"][n] += b.launch_call(a, per_block, drain)
        if block == 0:  # before any capture: does the process run as fast after one?
            first = {n: list(v) for n, v in over["unprofiled"].items()}
        for label, opts in OVERHEAD_CAPTURES.items():
            if label in refused:
                continue
            session = capture(**opts)
            try:
                session.start()
            except CaptureError as e:  # e.g. an older CUPTI without the option
                refused[label] = str(e)
                continue
            try:
                for n, a in apis.items():
                    over[label][n] += b.launch_call(a, per_block, drain)
            finally:
                session.__exit__(None, None, None)  # stops it; the trace is not built
    for label in refused:
        del over[label]
    over["unprofiled_before_any_capture"] = first
    return over, refused


def _idle_launch_to_start(b, apis: dict) -> np.ndarray:
    """Launch-to-start on an idle GPU: each launch waits for the previous kernel."""
    from skipnative.analysis.kernels import join_kernels
    from skipnative.capturing.session import capture

    with capture() as cap:
        for a in apis.values():
            b.idle_launches(a, IDLE_LAUNCHES)
    kt = join_kernels(cap.trace)
    return (kt.t_start - kt.l_begin)[kt.launch >= 0]


def _under_torch_profiler(b, apis: dict, iters: int, drain: int) -> dict | None:
    """Launch-call samples under torch.profiler; None without torch or a GPU."""
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]):
        runs = {n: b.launch_call(a, iters, drain) for n, a in apis.items()}
    # torch.profiler leaves CUPTI attached for the life of the process.
    # Unloading the bench's module and library under it was followed by
    # a heap-corruption abort at exit in 3 of 6 runs on an H100 (none in
    # 3 runs without torch.profiler): leave them to the process's end.
    b.keep_loaded()
    return runs


def _options_text(options: dict[str, Any]) -> str:
    """A configuration's skipnative.capture() arguments, as written in a call."""
    return ", ".join(f"{k}={v!r}" for k, v in options.items()) or "capture defaults"


def _signed_ns(v: float) -> str:
    """A difference in whole ns with its sign; one that rounds to 0 is "+0", never
    "-0"; "-" where there is none (NaN: no run to take a median of)."""
    return "-" if not math.isfinite(v) else f"{round(float(v)):+d}"


def _depth(d: int | None) -> str:
    return "-" if d is None else str(d)


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
            f"queue depth {_depth(r['queue_depth'])}"
            + (
                f" ({_depth(r['queue_depth_captured'])} under a capture)"
                if "queue_depth_captured" in r
                else ""
            )
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
    options = res.get("overhead_options", {})
    for prof, per_api in overhead.items():
        if prof.startswith("unprofiled"):
            continue
        ratio = res.get("overhead_ratio", {}).get(prof, {})
        added = ", ".join(
            f"{n} {_signed_ns(v)} ns" + (f" (x{ratio[n]:.2f})" if n in ratio else "")
            for n, v in per_api.items()
        )
        name = prof if prof not in options else f"{prof} ({_options_text(options[prof])})"
        lines.append(f"  added CPU time per launch under {name}: {added}")
    for label, why in res.get("refused", {}).items():
        lines.append(f"  {label}: not measured, this CUPTI refused it ({why})")
    if "unprofiled_before_any_capture" in overhead:
        after = ", ".join(
            f"{n} {_signed_ns(-v)} ns" for n, v in overhead["unprofiled_before_any_capture"].items()
        )
        lines.append(f"  unprofiled launch calls after captures, against before any: {after}")
    return "\n".join(lines)
