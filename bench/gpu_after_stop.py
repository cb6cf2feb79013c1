"""Does a process run as fast after a skipnative session as before one?

Each sample is a fresh process that times a torch launch loop (median ns per
launch of `x.add_(1)`), either untouched or after a skipnative session has
started and stopped (with and without cuptiFinalize). Processes alternate, so
machine drift hits all three alike. Prints medians over processes and ratios.

    python bench/gpu_after_stop.py [--processes 8] [--launches 20000] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from _gpu import require_cuda

CHILD = """
import sys, time, statistics, torch
mode = sys.argv[1]
x = torch.zeros(1024, device="cuda")
for _ in range(2000):
    x.add_(1.0)
torch.cuda.synchronize()
if mode != "none":
    import skipnative
    with skipnative.capture(finalize=(mode == "finalize")):
        for _ in range(2000):
            x.add_(1.0)
def loop(n):
    torch.cuda.synchronize()
    t = time.perf_counter_ns()
    for _ in range(n):
        x.add_(1.0)
    torch.cuda.synchronize()
    return (time.perf_counter_ns() - t) / n
print(statistics.median(loop(int(sys.argv[2])) for _ in range(5)))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=8)
    ap.add_argument("--launches", type=int, default=20000)
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    require_cuda("gpu_after_stop.py")
    modes = ("none", "finalize", "no_finalize")
    samples: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.processes):
        for m in modes:
            r = subprocess.run(
                [sys.executable, "-c", CHILD, m, str(args.launches)],
                capture_output=True,
                text=True,
                check=True,
            )
            samples[m].append(float(r.stdout.strip().splitlines()[-1]))
    med = {m: statistics.median(v) for m, v in samples.items()}
    print(f"ns per launch, median over {args.processes} processes each")
    for m in modes:
        print(
            f"  {m:<12} {med[m]:8.0f}  ({med[m] / med['none'] - 1:+.1%})  "
            f"range {min(samples[m]):.0f}-{max(samples[m]):.0f}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"samples": samples, "median": med}, f, indent=1)


if __name__ == "__main__":
    main()
