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

    res: dict = {
        "device": dev,
        "reps": args.reps,
        "launches": args.launches,
        "workloads": {k: {} for k in workloads},
        "launch_loop": {},
    }

    def measure(label, cm=None):
        """Loop and IL medians, under the context manager `cm` if given."""
        if cm is None:
            loop = loop_ns_per_launch(x, args.launches, 5)
            il = {k: il_ms(f, args.reps) for k, f in workloads.items()}
        else:
            with cm as c:
                mark = getattr(c, "mark", None)
                loop = loop_ns_per_launch(x, args.launches, 5)
                il = {k: il_ms(f, args.reps, mark) for k, f in workloads.items()}
        res["launch_loop"][label] = loop
        for k, v in il.items():
            res["workloads"][k][label] = v
        return c if cm is not None else None

    measure("unprofiled")
    cap = measure("skipnative", skipnative.capture())
    res["skipnative_launch_records"] = len(cap.trace.launches)
    res["skipnative_metadata"] = {
        k: v
        for k, v in cap.metadata.items()
        if k
        in ("cupti_version", "cupti_path", "cupti_origin", "clock", "dropped", "cupti_finalized")
    }
    measure("after_skipnative")
    # where the cost is: CUPTI's callbacks alone, kernel activity alone, driver domain only
    measure(
        "skipnative_callbacks_only",
        skipnative.capture(kernel_activity=False, memcpy=False, memset=False),
    )
    measure("skipnative_activity_only", skipnative.capture(launch_callbacks=False))
    measure("skipnative_driver_domain_only", skipnative.capture(api_domains=("driver",)))
    measure("skipnative_no_finalize", skipnative.capture(finalize=False))
    measure("after_no_finalize")
    measure("torch_profiler", profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]))

    base_loop = res["launch_loop"]["unprofiled"]
    res["added_ns_per_launch"] = {k: v - base_loop for k, v in res["launch_loop"].items()}
    res["perturbation"] = {
        w: {k: v / r["unprofiled"] - 1 for k, v in r.items()} for w, r in res["workloads"].items()
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
    labels = list(res["launch_loop"])
    print(f"capture fidelity on {dev} (medians; IL by CUDA events over {args.reps} reps)")
    print(
        f"{'configuration':<32}{'ns/launch':>10}{'added ns':>10}"
        + "".join(f"{w[:22]:>24}" for w in workloads)
    )
    for lab in labels:
        row = f"{lab:<32}{res['launch_loop'][lab]:>10.0f}{res['added_ns_per_launch'][lab]:>+10.0f}"
        for w in workloads:
            row += f"{res['workloads'][w][lab]:>14.3f} ms {res['perturbation'][w][lab]:>+6.1%}"
        print(row)


if __name__ == "__main__":
    main()
