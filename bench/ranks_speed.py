"""A folder of 8 ranks analysed in parallel against one after another.

    python bench/ranks_speed.py [TRACE] [--copies 10] [--ranks 8] [--repeat 5]

Makes a folder of `--ranks` copies of TRACE (default: the A100 control trace of
tests/data/kineto repeated `--copies` times, as bench/analysis_speed.py builds
it: 1.09 M events, 16.5 MB gzipped at 10) named rank0.json.gz ..., each with
its own distributedInfo.rank, then times,
in fresh processes,
`skip analyze DIR --json --jobs 1` (one file after another, in one process),
`skip analyze DIR --json` (a worker per core) and, for reference, one
`skip analyze FILE --json` per file in a row. Prints each median and the ratio
sequential / parallel (goal: >= 1.7 on 2 cores).
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))


def _time(cmds: list[list[str]]) -> float:
    t0 = time.perf_counter()
    for c in cmds:
        subprocess.run(c, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def write_ranks(trace: str, d: str, ranks: int, suffix: str) -> list[str]:
    """Copies of trace named rank0, rank1, ..., each with its own
    distributedInfo.rank where the trace has one (a gzipped copy is two gzip
    members, the head with the rank and the rest compressed once)."""
    raw = Path(trace).read_bytes()
    gz = raw[:2] == b"\x1f\x8b"
    text = gzip.decompress(raw) if gz else raw
    m = re.search(rb'"distributedInfo"\s*:\s*\{[^{}]*?"rank"\s*:\s*(-?\d+)', text)
    paths = [os.path.join(d, f"rank{r}{suffix}") for r in range(ranks)]
    if m is None:
        for p in paths:
            shutil.copyfile(trace, p)
        return paths
    head, rest = text[: m.start(1)], text[m.end(1) :]
    rest_gz = gzip.compress(rest, 6) if gz else b""
    for r, p in enumerate(paths):
        first = head + str(r).encode()
        with open(p, "wb") as f:
            f.write(gzip.compress(first, 6) + rest_gz if gz else first + rest)
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", nargs="?", help="a trace (default: the control trace, --copies)")
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--ranks", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    skip = [sys.executable, "-m", "skipnative"]
    with tempfile.TemporaryDirectory() as d:
        if args.trace is None:
            sys.path.insert(0, HERE)
            from analysis_speed import build

            args.trace = str(build(args.copies, Path(d), gz=True))
        suffix = ".json.gz" if args.trace.endswith(".gz") else os.path.splitext(args.trace)[1]
        d = os.path.join(d, "ranks")
        os.mkdir(d)
        paths = write_ranks(args.trace, d, args.ranks, suffix)
        cases = {
            "folder, --jobs 1": [[*skip, "analyze", d, "--json", "--jobs", "1"]],
            f"folder, {os.cpu_count()} workers": [[*skip, "analyze", d, "--json"]],
            "one command per file": [[*skip, "analyze", p, "--json"] for p in paths],
        }
        _time(cases["folder, --jobs 1"])  # warm the page cache
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.repeat):
            for k, cmds in cases.items():
                times[k].append(_time(cmds))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{args.ranks} ranks of {os.path.basename(args.trace)}, {os.cpu_count()} cores, "
        f"median of {args.repeat}"
    )
    for k, v in med.items():
        print(f"  {k:28s} {v:7.3f} s")
    par = med[f"folder, {os.cpu_count()} workers"]
    print(
        f"  ratio sequential / parallel: {med['folder, --jobs 1'] / par:.2f} "
        f"(one command per file / parallel: {med['one command per file'] / par:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
