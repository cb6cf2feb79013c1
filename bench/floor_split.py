"""Where kernel tracing's cost lands: the floor of any CUPTI kernel timer, split.

Kernel activity alone (FLOOR_OPTIONS) perturbs the batch-1 decoder more per
launch than it costs a launch loop. This splits that cost, for the batch-1
decode step and a one-op loop, in one process started with the launch hooks
preloaded (they time launch calls without any CUPTI callback):

- CPU inside the launch calls: the hooks time every launch call of the same
  work with CUPTI recording nothing, then with kernel activity on; the median
  launch call of each, and what kernel activity adds to it;
- GPU time added to the kernels: the work captured once as a CUDA graph (its
  kernels run back to back, no launch between them), timed by CUDA events
  unprofiled and under kernel activity alone: the GPU time added per kernel;
- what CUPTI reports of its own overhead (overhead records, by kind, per step);
- the eager work's inference latency unprofiled and under kernel activity
  alone, per launch, beside the two parts.

Blocks are interleaved, medians quoted.

    LD_PRELOAD=$(python -c "import skipnative; print(skipnative.launch_hooks_library())") \\
        python bench/floor_split.py [--reps 20] [--blocks 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
from _gpu import require_cuda

import skipnative
from skipnative.profiling.passes import FLOOR_OPTIONS

# launch calls timed by the hooks, CUPTI recording nothing; then with kernel activity
HOOKS_ALONE = {
    "launch_records": "hook",
    "hook_join": "order",
    "kernel_activity": False,
    "memcpy": False,
    "memset": False,
    "latency_timestamps": False,
}
HOOKS_AND_FLOOR = {**HOOKS_ALONE, "kernel_activity": True}
HOOK_CONFIGS = {"hooks_alone": HOOKS_ALONE, "with_kernel_activity": HOOKS_AND_FLOOR}
FLOOR_WITH_OVERHEAD = {**FLOOR_OPTIONS, "overhead_records": True}
KERNEL = 0  # API_KINDS.index("kernel")


def timed(fn, reps: int) -> list[float]:
    from skipnative.profiling import cuda_event_ms

    return [cuda_event_ms(fn) for _ in range(reps)]


def _launch_calls_under(opts: dict, fn, reps: int) -> tuple[list[int], int]:
    """Launch-call durations of `reps` runs of `fn` under a hook capture with
    `opts`, and launch calls a run."""
    import torch

    with skipnative.capture(**opts) as cap:
        fn()  # CUPTI's first-launch setup, left out below
        torch.cuda.synchronize()
        for i in range(reps):
            cap.mark(f"rep{i}")
            fn()
            torch.cuda.synchronize()
    if cap.metadata.get("launch_source") != "hook":
        raise SystemExit(
            "floor_split.py: the launch hooks are not loaded: start it with "
            "LD_PRELOAD=$(python -c 'import skipnative; print(skipnative.launch_hooks_library())')"
        )
    t = cap.trace
    timed_runs = t.launches[t.launches["t_begin"] >= t.regions["t_begin"].min()]
    d = (timed_runs["t_end"] - timed_runs["t_begin"])[timed_runs["kind"] == KERNEL]
    return d.astype(np.int64).tolist(), len(d) // reps


def _timed_under(opts: dict, fn, reps: int) -> tuple[list[float], np.ndarray]:
    """CUDA-event IL of `reps` runs of `fn` under a capture with `opts` (after one
    untimed run), and the capture's kernels."""
    import torch

    with skipnative.capture(**opts) as cap:
        fn()
        torch.cuda.synchronize()
        il = timed(fn, reps)
    return il, cap.trace.kernels


def _overhead_under(fn, reps: int) -> dict[str, dict[str, float]]:
    """CUPTI's overhead records of `reps` runs of `fn`, by kind, per run."""
    import torch

    with skipnative.capture(**FLOOR_WITH_OVERHEAD) as cap:
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
    return {
        kind: {"count": v["count"] / reps, "ns": v["ns"] / reps}
        for kind, v in cap.metadata.get("cupti_overhead", {}).items()
    }


def _median_of(blocks: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    kinds = sorted({k for b in blocks for k in b})
    return {
        k: {f: statistics.median(b.get(k, {}).get(f, 0.0) for b in blocks) for f in ("count", "ns")}
        for k in kinds
    }


def split(name: str, fn, reps: int, blocks: int) -> dict:
    """The split for one workload `fn` (eager), its parts interleaved in `blocks`."""
    from skipnative.profiling import workloads as wl

    out: dict = {"workload": name}
    try:
        graph = wl.as_cuda_graph(fn)
    except Exception as e:  # a workload that cannot be captured: no graph part
        graph = None
        out["graph_error"] = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
    calls: dict[str, list[int]] = {label: [] for label in HOOK_CONFIGS}
    il: dict[str, list[float]] = {"unprofiled": [], "floor": []}
    gil: dict[str, list[float]] = {"unprofiled": [], "floor": []}
    overhead, graph_kernel_ms = [], []
    launches = kernels = graph_kernels = 0
    for _ in range(blocks):
        for label, opts in HOOK_CONFIGS.items():
            d, launches = _launch_calls_under(opts, fn, reps)
            calls[label] += d
        il["unprofiled"] += timed(fn, reps)
        floor_il, k = _timed_under(FLOOR_OPTIONS, fn, reps)
        il["floor"] += floor_il
        kernels = len(k) // (reps + 1)
        overhead.append(_overhead_under(fn, reps))
        if graph is not None:
            gil["unprofiled"] += timed(graph, reps)
            floor_il, k = _timed_under(FLOOR_OPTIONS, graph, reps)
            gil["floor"] += floor_il
            graph_kernels = len(k) // (reps + 1)
            graph_kernel_ms.append(float((k["t_end"] - k["t_start"]).sum()) / 1e6 / (reps + 1))

    med = {k: statistics.median(v) for k, v in calls.items()}
    out["launch_calls_per_step"] = launches
    out["launch_call_ns"] = {**med, "added": med["with_kernel_activity"] - med["hooks_alone"]}
    ilm = {k: statistics.median(v) for k, v in il.items()}
    out["eager"] = {
        "kernels_per_step": kernels,
        "il_ms": ilm,
        "perturbation": ilm["floor"] / ilm["unprofiled"] - 1,
        "added_ns_per_kernel": (ilm["floor"] - ilm["unprofiled"]) * 1e6 / max(kernels, 1),
    }
    if graph is not None:
        gm = {k: statistics.median(v) for k, v in gil.items()}
        added = (gm["floor"] - gm["unprofiled"]) * 1e6 / max(graph_kernels, 1)
        out["graph"] = {
            "kernels_per_replay": graph_kernels,
            "il_ms": gm,
            "gpu_ns_added_per_kernel": added,
            "cupti_kernel_time_ms": statistics.median(graph_kernel_ms),
        }
    out["cupti_overhead_per_step"] = _median_of(overhead)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument("--no-model", action="store_true", help="the one-op loop only")
    args = ap.parse_args()
    require_cuda("floor_split.py")
    import torch

    x = torch.zeros(1024, device="cuda")

    def one_op_loop():  # 200 launches of one tiny kernel each
        for _ in range(200):
            x.add_(1.0)

    works = {"one_op_x200": one_op_loop}
    if not args.no_model:
        from skipnative.profiling import workloads as wl

        works["llama1b_decode_b1_ctx512"] = wl.decode(wl.build_decoder(), 1, 512)
    for fn in works.values():  # warm-up
        for _ in range(3):
            fn()
    torch.cuda.synchronize()
    res = {
        "device": torch.cuda.get_device_name(),
        "reps": args.reps,
        "blocks": args.blocks,
        "workloads": [split(name, fn, args.reps, args.blocks) for name, fn in works.items()],
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    print(f"where kernel activity's cost lands on {res['device']} (medians)")
    for w in res["workloads"]:
        c, e = w["launch_call_ns"], w["eager"]
        print(
            f"{w['workload']}: launch call {c['hooks_alone']:.0f} -> "
            f"{c['with_kernel_activity']:.0f} ns (+{c['added']:.0f} CPU ns a launch); "
            f"IL {e['il_ms']['unprofiled']:.3f} -> {e['il_ms']['floor']:.3f} ms "
            f"({e['perturbation']:+.1%}, {e['added_ns_per_kernel']:+.0f} ns a kernel)"
        )
        if "graph" in w:
            g = w["graph"]
            print(
                f"  as a graph: {g['il_ms']['unprofiled']:.3f} -> {g['il_ms']['floor']:.3f} ms "
                f"({g['gpu_ns_added_per_kernel']:+.0f} GPU ns a kernel, "
                f"{g['kernels_per_replay']} kernels)"
            )
        elif "graph_error" in w:
            print(f"  as a graph: not captured ({w['graph_error']})")
        for kind, o in sorted(w["cupti_overhead_per_step"].items()):
            per = f"{o['count']:.1f} records, {o['ns'] / 1e3:.1f} us a step"
            print(f"  CUPTI overhead {kind}: {per}")


if __name__ == "__main__":
    main()
