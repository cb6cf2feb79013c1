"""Size and load time of .skip files with a million kernels.

Tiles a real native capture (bench/results/h200-2026-11-26/sweep/b1.skip: the
Llama-3.2-1B-shaped decoder, prefill, batch 1, on an H200) until it holds
--kernels kernels, shifting times and correlation ids per copy, saves it and
reports bytes per kernel-plus-launch pair and the median load time.

    python bench/skipfile_size.py [--kernels 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import skipnative
from skipnative.trace import Trace

SOURCE = Path(__file__).parent / "results" / "h200-2026-11-26" / "sweep" / "b1.skip"


def tile(t: Trace, kernels: int) -> Trace:
    n_k = int((t.gpu["kind"] == 0).sum())
    copies = -(-kernels // n_k)
    span = (
        int(
            max(t.gpu["t_end"].max(), t.launches["t_end"].max())
            - min(t.gpu["t_start"].min(), t.launches["t_begin"].min())
        )
        + 1000
    )
    corr_span = int(max(t.gpu["correlation"].max(), t.launches["correlation"].max())) + 1

    rng = np.random.default_rng(0)

    def rep(a, time_fields):
        out = np.concatenate([a] * copies)
        k = np.repeat(np.arange(copies, dtype=np.int64), len(a))
        # Copies of one capture would repeat exactly and compress unrealistically
        # well; jitter each row's start by up to +-200 ns and its duration by +-10%
        # so the timestamps carry as much entropy as a real capture's.
        begin, end = time_fields[0], time_fields[1]
        dur = out[end] - out[begin]
        out[begin] += k * span + rng.integers(-200, 201, len(out))
        out[end] = out[begin] + (dur * rng.uniform(0.9, 1.1, len(out))).astype(np.int64)
        for f in time_fields[2:]:
            out[f] += (k * span + rng.integers(-200, 201, len(out))) * (out[f] != 0)
        if "correlation" in a.dtype.names:
            out["correlation"] += k * corr_span
        return out

    gpu = rep(t.gpu, ("t_start", "t_end", "t_queued", "t_submitted"))
    launches = rep(t.launches, ("t_begin", "t_end"))
    regions = rep(t.regions, ("t_begin", "t_end"))
    return Trace(
        launches=launches, gpu=gpu, ops=t.ops[:0], regions=regions, strings=t.strings, meta=t.meta
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kernels", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    real = skipnative.load(SOURCE)
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "real.skip")
        real.save(p)
        n_real = int((real.gpu["kind"] == 0).sum())
        print(
            f"real capture: {n_real:,} kernels, {os.path.getsize(p) / n_real:.1f} bytes per "
            "kernel-plus-launch pair (string table included)"
        )
    big = tile(real, args.kernels)
    n_k = int((big.gpu["kind"] == 0).sum())
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "big.skip")
        t = time.perf_counter()
        big.save(p)
        save_s = time.perf_counter() - t
        size = os.path.getsize(p)
        loads = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            back = skipnative.load(p)
            loads.append(time.perf_counter() - t)
        assert len(back.gpu) == len(big.gpu)
    print(f"{n_k:,} kernels, {len(big.launches):,} launches, {len(big.gpu) - n_k:,} copies/sets")
    print(
        f"file {size / 1e6:.1f} MB = {size / n_k:.1f} bytes per kernel-plus-launch pair "
        f"(goal <= 40); save {save_s:.2f} s; load median {statistics.median(loads):.3f} s "
        f"over {args.repeats} (goal < 1 s)"
    )


if __name__ == "__main__":
    main()
