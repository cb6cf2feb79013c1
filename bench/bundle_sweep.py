"""Makes the sweep that `skip demo` reports from without a GPU, from a measured one.

Each point keeps one timed iteration of its capture (a region and the launches,
GPU activities and ops inside it): by default the one of median IL, so the
package stays small and each point is typical of its five; sweep.json keeps
the measured Kineto summaries and match rates, and its per-op breakdown is
recomputed from the point's Kineto trace (per timed iteration, all five).

    python bench/bundle_sweep.py SRC_SWEEP DST [--iteration K]

The bundled src/skipnative/data/h100_llama1b_prefill was made with
    python bench/bundle_sweep.py bench/results/h100-2026-11-26/sweep \
        src/skipnative/data/h100_llama1b_prefill
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace

import numpy as np

import skipnative
from skipnative.analysis.attribution import attribute
from skipnative.analysis.kernels import join_by_correlation
from skipnative.analysis.sweep import run_summary, series
from skipnative.io.sweep import load_sweep
from skipnative.trace import Trace


def one_iteration(t: Trace, k: int) -> Trace:
    """The trace cut to its k-th region: launches that begin in it, the GPU work
    they launched, the ops that begin in it."""
    r = t.regions[k]
    b, e = int(r["t_begin"]), int(r["t_end"])
    ln = t.launches[(t.launches["t_begin"] >= b) & (t.launches["t_begin"] < e)]
    row = join_by_correlation(ln["correlation"], t.gpu["correlation"])
    gpu = t.gpu[row >= 0]
    ops = t.ops[(t.ops["t_begin"] >= b) & (t.ops["t_begin"] < e)] if len(t.ops) else t.ops
    return replace(t, launches=ln, gpu=gpu, ops=ops, regions=t.regions[k : k + 1].copy())


def median_iteration(t: Trace) -> int:
    """The region whose IL is the median of the trace's regions (the lower one of
    the middle two for an even count)."""
    il = [r.metrics["il_us"] for r in t.metrics(top=0) if r.name != "all"]
    return int(np.argsort(il, kind="stable")[(len(il) - 1) // 2])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument(
        "--iteration", type=int, help="timed iteration kept (default: the one of median IL)"
    )
    args = ap.parse_args()
    sw = load_sweep(args.src)
    os.makedirs(args.dst, exist_ok=True)
    doc = dict(sw.info)
    points = []
    for p, f in zip(doc["points"], sw.files):
        full = skipnative.load(f)
        k = args.iteration if args.iteration is not None else median_iteration(full)
        cut = one_iteration(full, k)
        name = os.path.basename(f)
        cut.save(os.path.join(args.dst, name), overwrite=True)
        q = {**p, "file": name, "native": run_summary(cut), "bundled_iteration": k}
        kineto = os.path.join(args.src, f"b{p['batch']}_kineto.json.gz")
        if os.path.exists(kineto):
            q["ops"] = attribute(full, skipnative.load(kineto)).op_breakdown()
        points.append(q)
    doc["points"] = points
    doc["bundled_from"] = os.path.normpath(args.src)
    doc["native"] = series([pt["native"] for pt in points], sw.values)
    with open(os.path.join(args.dst, "sweep.json"), "w") as fh:
        json.dump(doc, fh, indent=1)
    n = sum(os.path.getsize(os.path.join(args.dst, x)) for x in os.listdir(args.dst))
    print(f"wrote {len(points)} points to {args.dst} ({n / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
