"""Capture fidelity on a GPU (SPEC.md §6), all in one process run:

- perturbation: inference latency (IL, CUDA events, median of --reps) of a
  launch-bound workload and of the default decoder at batch 1, unprofiled,
  under skipnative's timing session and under torch.profiler;
- per-launch overhead: added CPU time per launch of a one-kernel op loop;
- after stop: the unprofiled loop again after skipnative's session ended
  (a session must leave the process as fast as before it started).

torch.profiler runs last: it keeps CUPTI once used (DESIGN.md).

    python bench/gpu_overhead.py [--reps 30] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import skipnative


def il_ms(fn, reps, mark=None):
    import torch

    out = []
    for i in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        if mark:
            mark(f"rep{i}")
        a.record()
        fn()
        b.record()
        b.synchronize()
        out.append(a.elapsed_time(b))
    return statistics.median(out)


def loop_ns_per_launch(x, n, reps):
    import torch

    out = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t = time.perf_counter_ns()
        for _ in range(n):
            x.add_(1.0)
        torch.cuda.synchronize()
        out.append((time.perf_counter_ns() - t) / n)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--launches", type=int, default=20000)
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument("--no-model", action="store_true", help="skip the decoder workload")
    args = ap.parse_args()

    import torch
    from torch.profiler import ProfilerActivity, profile

    dev = torch.cuda.get_device_name()
    x = torch.zeros(1024, device="cuda")

    def small_ops():  # launch-bound: 300 tiny kernels
        y = x
        for _ in range(100):
            y = (y * 1.0001 + 0.5).relu()
        return y

    workloads = {"small_ops_x300": small_ops}
    if not args.no_model:
        from skipnative import workloads as wl

        model = wl.build_decoder()
        workloads["llama1b_prefill_b1_s512"] = wl.prefill(model, 1, 512)

    for fn in workloads.values():  # warm-up
        for _ in range(5):
            fn()
    torch.cuda.synchronize()

    res: dict = {"device": dev, "reps": args.reps, "launches": args.launches, "workloads": {}}
    base_loop = loop_ns_per_launch(x, args.launches, 5)
    base = {k: il_ms(f, args.reps) for k, f in workloads.items()}

    with skipnative.capture() as cap:
        sk_loop = loop_ns_per_launch(x, args.launches, 5)
        sk = {k: il_ms(f, args.reps, cap.mark) for k, f in workloads.items()}
    n_launch_records = len(cap.trace.launches)
    after_loop = loop_ns_per_launch(x, args.launches, 5)
    after = {k: il_ms(f, args.reps) for k, f in workloads.items()}

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]):
        tp_loop = loop_ns_per_launch(x, args.launches, 5)
        tp = {k: il_ms(f, args.reps) for k, f in workloads.items()}

    for k in workloads:
        res["workloads"][k] = {
            "il_ms_unprofiled": base[k],
            "il_ms_skipnative": sk[k],
            "il_ms_torch_profiler": tp[k],
            "il_ms_after_skipnative": after[k],
            "perturbation_skipnative": sk[k] / base[k] - 1,
            "perturbation_torch_profiler": tp[k] / base[k] - 1,
            "after_stop_ratio": after[k] / base[k],
        }
    res["launch_loop"] = {
        "ns_per_launch_unprofiled": base_loop,
        "ns_per_launch_skipnative": sk_loop,
        "ns_per_launch_torch_profiler": tp_loop,
        "ns_per_launch_after_skipnative": after_loop,
        "added_ns_skipnative": sk_loop - base_loop,
        "added_ns_torch_profiler": tp_loop - base_loop,
        "after_stop_ratio": after_loop / base_loop,
    }
    res["skipnative_launch_records"] = n_launch_records
    res["skipnative_metadata"] = {
        k: v
        for k, v in cap.metadata.items()
        if k in ("cupti_version", "cupti_path", "cupti_origin", "clock", "dropped")
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    print(f"capture fidelity on {dev} (medians; IL by CUDA events over {args.reps} reps)")
    print(f"{'workload':<26}{'IL ms':>10}{'skipnative':>12}{'torch.prof':>12}{'after stop':>12}")
    for k, r in res["workloads"].items():
        print(
            f"{k:<26}{r['il_ms_unprofiled']:>10.3f}{r['perturbation_skipnative']:>+11.1%} "
            f"{r['perturbation_torch_profiler']:>+11.1%} {r['after_stop_ratio'] - 1:>+11.1%}"
        )
    ll = res["launch_loop"]
    print(
        f"launch loop ({args.launches} x add_): {ll['ns_per_launch_unprofiled']:.0f} ns/launch; "
        f"added: skipnative {ll['added_ns_skipnative']:+.0f} ns, "
        f"torch.profiler {ll['added_ns_torch_profiler']:+.0f} ns; "
        f"after stop {ll['after_stop_ratio'] - 1:+.1%}"
    )


if __name__ == "__main__":
    main()
