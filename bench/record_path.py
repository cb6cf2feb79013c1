"""ns per launch record on the hot path, beside a bare clock read.

A launch record costs one enter and one exit callback: two clock reads, the
thread-buffer lookup and a 24-byte store. This drives Session::on_api directly
(no CUDA needed) and reports medians over repeated runs; beside it the launch
hooks' path (launch_records="hook": the sink's enter and exit; with hook_join
"external" CUPTI's external correlation push and pop of the loaded libcupti, if
any; with "order" the lookup of the call's stream in the per-thread cache).

    python bench/record_path.py [--n 2000000] [--repeats 15] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics

from skipnative import _native


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    clocks = ["monotonic_raw"]
    auto = _native.clock_info("auto")["kind"]
    if auto != "monotonic_raw":
        clocks.insert(0, auto)
    rows = []
    for clock in clocks:
        reads = [_native.bench_clock_read(args.n, clock) for _ in range(args.repeats)]
        recs = [_native.bench_record_path(args.n, clock) for _ in range(args.repeats)]
        hooks = [_native.bench_hook_path(args.n, clock) for _ in range(args.repeats)]
        order = [_native.bench_hook_path(args.n, clock, "order") for _ in range(args.repeats)]
        rows.append(
            {
                "clock": clock,
                "clock_read_ns": statistics.median(reads),
                "record_ns": statistics.median(recs),
                "record_ns_p10": sorted(recs)[len(recs) // 10],
                "record_ns_p90": sorted(recs)[(len(recs) * 9) // 10],
                "hook_ns": statistics.median(hooks),
                "hook_order_ns": statistics.median(order),
            }
        )
    result = {"machine": cpu_name(), "n": args.n, "repeats": args.repeats, "rows": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"record path on {result['machine']} (median of {args.repeats} x {args.n:,} records)")
    print(
        f"{'clock':<15}{'clock read ns':>15}{'record ns':>12}{'p10':>8}{'p90':>8}"
        f"{'record/read':>13}{'hook ns':>10}{'order ns':>10}"
    )
    for r in rows:
        print(
            f"{r['clock']:<15}{r['clock_read_ns']:>15.1f}{r['record_ns']:>12.1f}"
            f"{r['record_ns_p10']:>8.1f}{r['record_ns_p90']:>8.1f}"
            f"{r['record_ns'] / r['clock_read_ns']:>13.2f}{r['hook_ns']:>10.1f}"
            f"{r['hook_order_ns']:>10.1f}"
        )


if __name__ == "__main__":
    main()
