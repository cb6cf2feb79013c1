"""`skip analyze --json` against HolisticTraceAnalysis on a large real trace.

Builds the A100 control trace of tests/data/kineto repeated N times
(correlation, flow and external ids offset per copy, timestamps shifted so
copies follow each other), then times whole processes, load included:

- skipnative: ``skip analyze TRACE --json``
- HTA 0.5.0: ``TraceAnalysis(trace_dir).get_cuda_kernel_launch_stats()``
  (run with --hta-python, a Python that has HolisticTraceAnalysis installed)

and prints medians of wall time and peak RSS, with ratios. Each run is its own
process; RSS is the child's ru_maxrss from wait4.

    python bench/analysis_speed.py [--copies 10] [--repeats 3] [--hta-python PY]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "kineto"
SOURCE = DATA / "a100_trace_diff_control.json.gz"

HTA_SCRIPT = """
import sys, logging
logging.disable(logging.WARNING)
from hta.trace_analysis import TraceAnalysis
ta = TraceAnalysis(trace_dir=sys.argv[1])
stats = ta.get_cuda_kernel_launch_stats(ranks=list(ta.t.traces))
print(sum(len(v) for v in stats.values()))
"""


def build(copies: int, out_dir: Path, gz: bool) -> Path:
    doc = json.loads(gzip.decompress(SOURCE.read_bytes()))
    events = doc["traceEvents"]
    xs = [e for e in events if isinstance(e.get("ts"), (int, float))]
    t0 = min(e["ts"] for e in xs)
    t1 = max(e["ts"] + e.get("dur", 0) for e in xs)
    span = t1 - t0 + 1000
    max_corr = (
        max(
            [
                e.get("args", {}).get("correlation", 0)
                for e in events
                if isinstance(e.get("args"), dict)
            ]
            + [e.get("id", 0) for e in events if isinstance(e.get("id"), int)]
        )
        + 1
    )
    max_ext = (
        max(
            e.get("args", {}).get("External id", 0)
            for e in events
            if isinstance(e.get("args"), dict)
        )
        + 1
    )
    out = []
    for i in range(copies):
        for e in events:
            if e.get("ph") == "M" and i > 0:
                continue
            c = dict(e)
            if isinstance(c.get("ts"), (int, float)):
                c["ts"] = c["ts"] + i * span
            if isinstance(c.get("id"), int):
                c["id"] = c["id"] + i * max_corr
            if isinstance(c.get("args"), dict):
                a = dict(c["args"])
                if "correlation" in a:
                    a["correlation"] += i * max_corr
                if "External id" in a:
                    a["External id"] += i * max_ext
                c["args"] = a
            out.append(c)
    doc["traceEvents"] = out
    name = f"control_x{copies}.json" + (".gz" if gz else "")
    path = out_dir / name
    data = json.dumps(doc).encode()
    path.write_bytes(gzip.compress(data, 6) if gz else data)
    return path


def run(cmd: list[str]) -> tuple[float, float]:
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    err = p.stderr.read().decode() if p.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[:3]} failed:\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024  # MiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hta-python", help="a Python with HolisticTraceAnalysis 0.5.0")
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument("--build", metavar="DIR", help=argparse.SUPPRESS)
    ap.add_argument("--gz", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:
        build(args.copies, Path(args.build), args.gz)
        return

    results = {"copies": args.copies, "repeats": args.repeats, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for gz in (True, False):
            d = tmp / ("gz" if gz else "json")
            d.mkdir()
            # built in a child process: a fork of this process after a 1 GB json.loads
            # would report that memory as the next child's peak RSS
            subprocess.run(
                [sys.executable, __file__, "--build", str(d), "--copies", str(args.copies)]
                + (["--gz"] if gz else []),
                check=True,
            )
            path = next(d.iterdir())
            size = path.stat().st_size
            skip = [
                run([sys.executable, "-m", "skipnative", "analyze", str(path), "--json"])
                for _ in range(args.repeats)
            ]
            row = {
                "file": path.name,
                "bytes": size,
                "skip_s": statistics.median(w for w, _ in skip),
                "skip_rss_mib": statistics.median(r for _, r in skip),
            }
            if args.hta_python:
                hta = [
                    run([args.hta_python, "-c", HTA_SCRIPT, str(d)]) for _ in range(args.repeats)
                ]
                row["hta_s"] = statistics.median(w for w, _ in hta)
                row["hta_rss_mib"] = statistics.median(r for _, r in hta)
            results["rows"].append(row)
            print(json.dumps(row), flush=True)
    print(f"\nwhole-process medians of {args.repeats} runs, control trace x{args.copies}")
    print(
        f"{'file':<24}{'MB':>8}{'skip s':>9}{'skip MiB':>10}{'HTA s':>9}{'HTA MiB':>10}"
        f"{'speedup':>9}{'mem ratio':>11}"
    )
    for r in results["rows"]:
        hta_s, hta_m = r.get("hta_s"), r.get("hta_rss_mib")
        print(
            f"{r['file']:<24}{r['bytes'] / 1e6:>8.1f}{r['skip_s']:>9.2f}{r['skip_rss_mib']:>10.0f}"
            + (
                f"{hta_s:>9.2f}{hta_m:>10.0f}{hta_s / r['skip_s']:>8.1f}x"
                f"{r['skip_rss_mib'] / hta_m:>11.2f}"
                if hta_s
                else "      (HTA not run)"
            )
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
