"""`skip analyze --json` against reading the file, and against HolisticTraceAnalysis.

Builds the A100 control trace of tests/data/kineto repeated N times
(correlation, flow and external ids offset per copy, timestamps shifted so
copies follow each other), then times whole processes, load included:

- skipnative: ``skip analyze TRACE --json``
- ``zcat TRACE > /dev/null`` (the .json.gz only): the ratio skip / zcat is the
  figure of merit (goal: at most 0.5)
- HTA 0.5.0: ``TraceAnalysis(trace_dir).get_cuda_kernel_launch_stats()``
  (--hta-python, a Python with HolisticTraceAnalysis; this Python if it has it)

and prints medians of wall time and peak RSS, with ratios. Each run is its own
process; RSS is the child's ru_maxrss from wait4. ``--steps`` instead times
each step of the analysis in one process (inflate with zlib and with ISA-L,
the reader's parse and op nesting, the conversion to a Trace, the metrics,
the JSON output), medians of --repeats, after the wall time of a process that
only imports what `skip analyze` imports before it starts reading, and of one
that imports all it needs (numpy among them: the command imports the rest
while the reader parses); beside the parse, simdjson's (a reference for what a
SIMD parser does with the same text on this machine: its DOM parse, with the
kernel it picks for this CPU) where a Python with pysimdjson is given or found.

    python bench/analysis_speed.py [--copies 10] [--repeats 3] [--hta-python PY]
                                   [--steps [--simdjson-python PY]]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
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


def median_of(repeats: int, fn, clock=time.process_time) -> float:
    """Median seconds of fn; CPU time of this process by default, which a busy
    machine disturbs less than wall time (every step but the load is one thread)."""
    times = []
    for _ in range(repeats):
        t = clock()
        fn()
        times.append(clock() - t)
    return statistics.median(times)


# what `skip analyze FILE` imports before it starts reading (the read then runs on
# its own threads), and everything it imports
IMPORTS = {
    "python + imports before the read (a process, wall)": (
        "skipnative.cli.main, skipnative.cli.analyze, skipnative.io.kineto_stream, "
        "skipnative._native"
    ),
    "python + all imports (a process, wall)": (
        "skipnative.cli.main, skipnative.cli.analyze, skipnative.io.kineto, "
        "skipnative.analysis.metrics"
    ),
}


SIMDJSON_SCRIPT = """
import gzip, statistics, sys, time
import simdjson
text = gzip.decompress(open(sys.argv[1], "rb").read())
p = simdjson.Parser()
times = []
for _ in range(int(sys.argv[2]) + 1):
    t = time.process_time()
    doc = p.parse(text)
    times.append(time.process_time() - t)
    del doc
print(p.implementation[0], times[0], statistics.median(times[1:]))
"""


def simdjson_parse(python: str, path: Path, repeats: int) -> tuple[str, float, float]:
    """simdjson's kernel name, its first parse (which sizes the parser's buffers)
    and the median of the next ones, CPU s, of the text inside path."""
    out = subprocess.run(
        [python, "-c", SIMDJSON_SCRIPT, str(path), str(repeats)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return out[0], float(out[1]), float(out[2])


def steps(path: Path, repeats: int) -> dict[str, float]:
    """Seconds per step of `skip analyze --json`, each step alone, in this process."""
    import zlib

    from skipnative import _native
    from skipnative.analysis.metrics import api_summary, compute_metrics
    from skipnative.cli.analyze import analysis
    from skipnative.io import kineto, kineto_stream

    raw = path.read_bytes()
    out: dict[str, float] = {}

    def inflate(mod):
        d = mod.decompressobj(wbits=47)
        for k in range(0, len(raw), kineto_stream.CHUNK):
            d.decompress(raw[k : k + kineto_stream.CHUNK])

    out["inflate zlib"] = median_of(repeats, lambda: inflate(zlib))
    if importlib.util.find_spec("isal"):
        from isal import isal_zlib

        out["inflate ISA-L"] = median_of(repeats, lambda: inflate(isal_zlib))
    text = gzip.decompress(raw)
    chunks = [text[k : k + kineto_stream.CHUNK] for k in range(0, len(text), kineto_stream.CHUNK)]
    del text
    state = {}

    def parse():
        r = state["r"] = _native.KinetoReader()
        for c in chunks:
            r.feed(c)

    out["parse (reader feed)"] = median_of(repeats, parse)
    out["nest ops (reader finish)"] = median_of(1, lambda: state["r"].finish())
    out["to Trace"] = median_of(repeats, lambda: state.update(t=kineto._to_trace("x", state["r"])))
    trace = state["t"]
    out["metrics"] = median_of(
        repeats, lambda: (compute_metrics(trace, region=None, top=10), api_summary(trace))
    )
    result = analysis(str(path), None, 10)
    out["JSON output"] = median_of(
        repeats, lambda: json.dump(result, io.StringIO(), separators=(",", ":"))
    )
    out["load, wall (inflate || parse, finish, to Trace)"] = median_of(
        repeats, lambda: kineto.load_kineto(str(path)), time.perf_counter
    )
    return out


def print_steps(copies: int, repeats: int, simdjson_python: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, __file__, "--build", tmp, "--copies", str(copies), "--gz"], check=True
        )
        path = next(Path(tmp).iterdir())
        print(f"steps of skip analyze --json, control trace x{copies}, CPU s, medians of {repeats}")
        for what, mods in IMPORTS.items():
            cmd = [sys.executable, "-c", f"import {mods}"]
            secs = median_of(
                repeats, lambda cmd=cmd: subprocess.run(cmd, check=True), time.perf_counter
            )
            print(f"{what:<48}{secs:>8.3f} s")
        measured = steps(path, repeats)
        for name, secs in measured.items():
            print(f"{name:<48}{secs:>8.3f} s")
        if simdjson_python:
            kernel, first, again = simdjson_parse(simdjson_python, path, repeats)
            print(
                f"{'simdjson DOM parse, ' + kernel + ' (first / again)':<48}"
                f"{first:>8.3f} / {again:.3f} s"
            )
            print(
                "reader parse / simdjson parse (again):"
                f" {measured['parse (reader feed)'] / again:.2f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hta-python", help="a Python with HolisticTraceAnalysis 0.5.0")
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument("--steps", action="store_true", help="time each step in one process")
    ap.add_argument("--simdjson-python", help="with --steps: a Python with pysimdjson")
    ap.add_argument("--build", metavar="DIR", help=argparse.SUPPRESS)
    ap.add_argument("--gz", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:
        build(args.copies, Path(args.build), args.gz)
        return
    if args.steps:
        if not args.simdjson_python and importlib.util.find_spec("simdjson"):
            args.simdjson_python = sys.executable
        print_steps(args.copies, args.repeats, args.simdjson_python)
        return
    if not args.hta_python and importlib.util.find_spec("hta"):
        args.hta_python = sys.executable

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
            if gz:
                zcat = [run(["zcat", str(path)]) for _ in range(args.repeats)]
                row["zcat_s"] = statistics.median(w for w, _ in zcat)
                row["skip_over_zcat"] = row["skip_s"] / row["zcat_s"]
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
    for r in results["rows"]:
        if "zcat_s" in r:
            print(
                f"\n{r['file']}: skip analyze --json {r['skip_s']:.2f} s, zcat {r['zcat_s']:.2f} s:"
                f" ratio {r['skip_over_zcat']:.2f} (goal <= 0.5)"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
