"""Records of work still running at a stop, on a GPU.

CUPTI documents that a forced flush (every stop ends with one) may deliver
records of GPU work that has not finished. skipnative counts such records as
``dropped.incomplete`` and keeps none of them. This checks that on a real card:

- stop: ``capture(synchronize=False)`` stopped while spin kernels
  (``torch.cuda._sleep``) are queued and running: how many kernels were kept,
  how many counted incomplete, none with an end before its start, all accounted
  for (kept + incomplete + never delivered = launched), and the .skip written
  and read back;
- after: a second capture of finished work in the same process keeps every
  kernel (the session is healthy after an early stop);
- window: ``skip run --on-demand`` with a window closed by ``skip trigger
  --duration`` while spin kernels run; the run folder reads back.

Prints one JSON object.

    python bench/gpu_incomplete.py [--kernels 20] [--ms 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from skipnative.trace import losses


def _spin_cycles(ms: float) -> int:
    import torch

    hz = torch.cuda.get_device_properties(0).clock_rate * 1000  # kHz
    return int(hz * ms / 1000)


def _kernels(trace, name_part: str) -> int:
    names = trace.name(trace.kernels["name_id"])
    return sum(1 for n in names if name_part in n)


def stop_while_running(n: int, ms: float) -> dict:
    import torch

    import skipnative

    cycles = _spin_cycles(ms)
    torch.cuda._sleep(1000)
    torch.cuda.synchronize()
    with skipnative.capture(synchronize=False) as cap:
        for _ in range(n):
            torch.cuda._sleep(cycles)
        time.sleep(ms / 1000 * 1.5)  # the first is done, the second running, the rest queued
    t = cap.trace
    torch.cuda.synchronize()
    kept = _kernels(t, "spin")
    lost = losses(t.meta)
    durations = t.kernels["t_end"] - t.kernels["t_start"]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "stop.skip")
        t.save(path)
        back = skipnative.load(path)
        reread = len(back.kernels) == len(t.kernels)
    # the session after an early stop: finished work, every kernel kept
    with skipnative.capture() as cap2:
        for _ in range(5):
            torch.cuda._sleep(1000)
    after = _kernels(cap2.trace, "spin")
    return {
        "launched": n,
        "kept": kept,
        "dropped": lost,
        "negative_durations": int((durations < 0).sum()),
        "unaccounted": n - kept - lost.get("incomplete", 0),
        "saved_and_read_back": reread,
        "after_early_stop_kept_of_5": after,
    }


def child(n: int, ms: float, seconds: float) -> None:
    import torch

    cycles = _spin_cycles(ms)
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        for _ in range(n):
            torch.cuda._sleep(cycles)
        torch.cuda.synchronize()


def window_while_running(n: int, ms: float) -> dict:
    import skipnative

    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "run")
        cmd = [sys.executable, "-m", "skipnative", "run", "--on-demand", "--out", out, "--"]
        cmd += [sys.executable, __file__, "--child", str(n), str(ms), "6"]
        proc = subprocess.Popen(cmd)
        time.sleep(3.0)  # CUDA up, the loop running
        trig = [sys.executable, "-m", "skipnative", "trigger", "--duration", "0.3", "--wait", out]
        trig_rc = subprocess.run(trig, timeout=60).returncode
        rc = proc.wait(timeout=120)
        with open(os.path.join(out, "run.json")) as f:
            run = json.load(f)
        result: dict = {"run_rc": rc, "trigger_rc": trig_rc, "processes": run.get("processes")}
        files = run.get("files") or []
        if files:
            t = skipnative.load(os.path.join(out, files[0]))
            durations = t.kernels["t_end"] - t.kernels["t_start"]
            result.update(
                kept=_kernels(t, "spin"),
                dropped=losses(t.meta),
                negative_durations=int((durations < 0).sum()),
                regions=len(t.regions),
            )
        return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernels", type=int, default=20)
    ap.add_argument("--ms", type=float, default=50.0)
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        child(int(args.child[0]), float(args.child[1]), float(args.child[2]))
        return
    result = {"stop": stop_while_running(args.kernels, args.ms)}
    try:
        result["window"] = window_while_running(4, args.ms)
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        result["window"] = {"error": str(e)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
