"""`skip run` against the in-process timing pass, on a GPU.

The same torch workload (a loop of one-kernel ops and a few small matmuls) runs
in fresh processes:

- plain: no profiler (the per-launch baseline of the runs below);
- inprocess: under ``skipnative.capture()``, with its own unprofiled baseline
  in the same process;
- skip run: under ``skip run`` (the whole process captured from cuInit);
- on-demand: under ``skip run --on-demand`` with no trigger (should cost nothing).

It prints one JSON object: per-launch CPU time of each, the added time per
launch of ``skip run`` and of the in-process capture (the issue asks for the
former within 10 % of the latter), and whether the workload's kernels (name and
count) recorded by ``skip run`` match the in-process capture's.

    python bench/run_check.py [--launches 20000] [--reps 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter

from _gpu import loop_ns_per_launch


def workload(n: int, reps: int) -> dict:
    """Runs in the measured process: ns per launch of the loop (median of reps)."""
    import torch

    x = torch.zeros(1024, device="cuda")
    a = torch.randn(256, 256, device="cuda")
    ns = loop_ns_per_launch(x, n, reps)
    for _ in range(10):
        a = torch.tanh(a @ a)
    torch.cuda.synchronize()
    return {"ns_per_launch": ns}


def inprocess(n: int, reps: int) -> dict:
    import skipnative

    base = workload(n, reps)["ns_per_launch"]
    with skipnative.capture() as cap:
        timed = workload(n, reps)["ns_per_launch"]
    t = cap.trace
    kernels = Counter(t.name(t.kernels["name_id"]))
    return {"ns_per_launch": timed, "baseline_ns": base, "kernels": dict(kernels)}


def _child(mode: str, args, prefix: list[str]) -> dict:
    with tempfile.NamedTemporaryFile("r", suffix=".json") as f:
        cmd = [*prefix, sys.executable, __file__, "--child", mode, "--result", f.name]
        cmd += ["--launches", str(args.launches), "--reps", str(args.reps)]
        subprocess.run(cmd, check=True, timeout=600)
        return json.load(open(f.name))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--launches", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--child", choices=["workload", "inprocess"])
    ap.add_argument("--result")
    args = ap.parse_args()
    if args.child:
        fn = workload if args.child == "workload" else inprocess
        with open(args.result, "w") as f:
            json.dump(fn(args.launches, args.reps), f)
        return

    import skipnative

    skip = [sys.executable, "-m", "skipnative", "run", "--force", "--out"]
    with tempfile.TemporaryDirectory() as d:
        plain = _child("workload", args, [])
        inproc = _child("inprocess", args, [])
        run = _child("workload", args, [*skip, os.path.join(d, "run"), "--"])
        idle = _child("workload", args, [*skip, os.path.join(d, "idle"), "--on-demand", "--"])
        with open(os.path.join(d, "run", "run.json")) as f:
            files = json.load(f)["files"]
        t = skipnative.load(os.path.join(d, "run", files[0]))
        recorded = Counter(t.name(t.kernels["name_id"]))
    added_run = run["ns_per_launch"] - plain["ns_per_launch"]
    added_inproc = inproc["ns_per_launch"] - inproc["baseline_ns"]
    missing = {k: c for k, c in inproc["kernels"].items() if recorded.get(k, 0) < c}
    result = {
        "ns_per_launch": {
            "plain": plain["ns_per_launch"],
            "inprocess_baseline": inproc["baseline_ns"],
            "inprocess_captured": inproc["ns_per_launch"],
            "skip_run": run["ns_per_launch"],
            "skip_run_on_demand_idle": idle["ns_per_launch"],
        },
        "added_ns_per_launch": {"skip_run": added_run, "inprocess": added_inproc},
        "skip_run_over_inprocess": added_run / added_inproc if added_inproc else None,
        "on_demand_idle_added_ns": idle["ns_per_launch"] - plain["ns_per_launch"],
        "kernels_missing_from_skip_run": missing,
        "kernels_only_in_skip_run": {
            k: c for k, c in recorded.items() if k not in inproc["kernels"]
        },
        "files": files,
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
