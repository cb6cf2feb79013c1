"""Batch sweep of the default decoder on a GPU: per batch size, in a fresh
subprocess, a timing pass (skipnative only, one marked region per iteration,
saved as .skip) and then one iteration under torch.profiler (saved as a Kineto
trace). Prints native and Kineto metrics side by side; writes sweep.json.

    python bench/gpu_sweep.py --out DIR [--batch-sizes 1,2,4,8,16,32,64] [--seq-len 512]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def child(args) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile, schedule

    import skipnative
    from skipnative import workloads as wl

    b = args.child
    model = wl.build_decoder(model_path=args.model)
    fn = (
        wl.prefill(model, b, args.seq_len)
        if args.phase == "prefill"
        else wl.decode(model, b, args.seq_len)
    )
    for _ in range(args.warmup):
        fn()
    torch.cuda.synchronize()
    if args.graphs:  # the same work as one CUDA graph per iteration
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        fn = graph.replay
        fn()
        torch.cuda.synchronize()
    with skipnative.capture(latency_timestamps=True) as cap:  # timing pass: first CUPTI user
        for i in range(args.iters):
            cap.mark(f"iter{i}")
            fn()
            torch.cuda.synchronize()  # one request per iteration: no backlog between them
    native = cap.trace
    skip_path = os.path.join(args.out, f"b{b}.skip")
    native.save(skip_path, overwrite=True)

    if args.graphs or args.no_kineto:
        rows = [r for r in native.metrics(top=0) if r.name.startswith("iter")]
        keys = ("tklqt_us", "il_us", "n_kernels", "queued_fraction")
        print(
            json.dumps(
                {
                    "batch": b,
                    "native": {k: sum(r.metrics[k] for r in rows) / len(rows) for k in keys},
                    "kineto": None,
                    "dropped": cap.metadata["dropped"],
                }
            )
        )
        return
    kineto_path = os.path.join(args.out, f"b{b}_kineto.json.gz")
    with profile(
        activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA],
        schedule=schedule(wait=0, warmup=1, active=1, repeat=1),
        on_trace_ready=lambda p: p.export_chrome_trace(kineto_path),
    ) as prof:
        for _ in range(2):
            fn()
            torch.cuda.synchronize()
            prof.step()
    kineto = skipnative.load(kineto_path)

    def summary(rows):
        keys = (
            "tklqt_us",
            "launch_api_us",
            "launch_wait_us",
            "akd_us",
            "il_us",
            "n_kernels",
            "queued_fraction",
            "launch_submit_us",
            "launch_queue_us",
        )
        return {k: sum(r.metrics[k] for r in rows) / len(rows) for k in keys}

    n_rows = [r for r in native.metrics(top=0) if r.name.startswith("iter")]
    k_rows = [r for r in kineto.metrics(top=0) if r.name.startswith("ProfilerStep")]
    print(
        json.dumps(
            {
                "batch": b,
                "native": summary(n_rows),
                "kineto": summary(k_rows),
                "dropped": cap.metadata["dropped"],
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch-sizes", default="1,2,4,8,16,32,64")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--phase", choices=["prefill", "decode"], default="prefill")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--model")
    ap.add_argument("--graphs", action="store_true", help="run each iteration as a CUDA graph")
    ap.add_argument("--no-kineto", action="store_true", help="timing pass only")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.child is not None:
        child(args)
        return
    import torch

    card = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    points = []
    print(f"{args.phase} sweep on {card}, seq {args.seq_len}")
    print(
        f"{'batch':>5} {'native TKLQT us':>16} {'kineto TKLQT us':>16} {'ratio':>6} "
        f"{'native IL us':>13} {'kineto IL us':>13} {'qfrac':>6} {'s':>5}"
    )
    for b in [int(x) for x in args.batch_sizes.split(",")]:
        t = time.time()
        cmd = [
            sys.executable,
            __file__,
            "--out",
            args.out,
            "--seq-len",
            str(args.seq_len),
            "--phase",
            args.phase,
            "--iters",
            str(args.iters),
            "--warmup",
            str(args.warmup),
            "--child",
            str(b),
        ] + (["--model", args.model] if args.model else [])
        cmd += ["--graphs"] if args.graphs else []
        cmd += ["--no-kineto"] if args.no_kineto else []
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"batch {b}: failed\n{r.stderr[-3000:]}")
            break
        p = json.loads(r.stdout.strip().splitlines()[-1])
        points.append(p)
        n, k = p["native"], p["kineto"] or {"tklqt_us": float("nan"), "il_us": float("nan")}
        print(
            f"{b:>5} {n['tklqt_us']:>16.1f} {k['tklqt_us']:>16.1f} "
            f"{k['tklqt_us'] / max(n['tklqt_us'], 1e-9):>6.2f} {n['il_us']:>13.1f} "
            f"{k['il_us']:>13.1f} {n['queued_fraction']:>6.2f} {time.time() - t:>5.0f}",
            flush=True,
        )
    with open(os.path.join(args.out, "sweep.json"), "w") as f:
        json.dump(
            {"card": card, "phase": args.phase, "seq_len": args.seq_len, "points": points},
            f,
            indent=2,
        )


if __name__ == "__main__":
    main()
