"""What the GPU benchmarks need, checked before they start: one line and exit
status 1 where it is missing, not a traceback."""

from __future__ import annotations

import statistics
import sys
import time


def require_cuda(script: str) -> None:
    try:
        import torch
    except ImportError:
        sys.exit(f"{script}: needs torch with CUDA (pip install torch)")
    if not torch.cuda.is_available():
        sys.exit(f"{script}: needs a CUDA GPU (torch {torch.__version__} sees none)")


def loop_ns_per_launch(x, n: int, reps: int) -> float:
    """ns per launch of `n` in-place adds on the CUDA tensor `x` (one small kernel
    each), synchronised around each rep; the median of `reps`."""
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
