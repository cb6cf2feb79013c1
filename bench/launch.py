"""Null-kernel launch microbenchmarks on this machine's GPU, written to
bench/results/<card>.json (see src/skipnative/profiling/launchbench.py for what is measured).

    python bench/launch.py [--iters 5000] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from skipnative import _native
from skipnative.profiling.launchbench import run, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=5000)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    try:
        res = run(args.iters)
    except _native.BenchError as e:
        sys.exit(f"launch.py: {e}")
    print(table(res))
    name = re.sub(r"[^A-Za-z0-9]+", "_", res["device"]).strip("_").lower()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"launch_{name}.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
