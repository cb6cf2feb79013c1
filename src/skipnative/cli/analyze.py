"""`skip analyze TRACE`: SKIP metrics per region and device."""

from __future__ import annotations

from skipnative.analysis.metrics import METRIC_KEYS
from skipnative.cli import folder_commands
from skipnative.cli._common import UserError, fmt_value, print_json, short_name, table
from skipnative.cli._folders import add_jobs_arg
from skipnative.io.folder import is_folder


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="SKIP metrics (TKLQT, AKD, IL, ...) of a trace")
    p.add_argument(
        "trace",
        help=".skip file or torch.profiler trace (.json, .json.gz), or a folder of per-rank traces",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--region", help="only regions with this name ('all', 'ProfilerStep#3', ...)")
    p.add_argument("--top", type=int, default=10, metavar="K", help="top kernels per region")
    p.add_argument(
        "--api",
        action="store_true",
        help="also a per-API summary of the CPU calls (calls, total, median, longest)",
    )
    add_jobs_arg(p)
    p.set_defaults(run=run)


def analysis(path: str, region: str | None, top: int, trace=None) -> dict:
    import skipnative
    from skipnative.io import detect_format

    fmt = detect_format(path)
    from skipnative.analysis.metrics import api_summary, compute_metrics

    trace = trace if trace is not None else skipnative.load(path)
    regions = compute_metrics(trace, region=region, top=top)
    return {
        "trace": path,
        "format": fmt,
        "regions": [r.to_dict() for r in regions],
        "api_calls": api_summary(trace),
    }


def run(args) -> int:
    if args.top < 0:
        raise UserError("--top must be >= 0")
    if is_folder(args.trace):
        return folder_commands.analyze(args, analysis)
    result = analysis(args.trace, args.region, args.top)
    if args.region is not None and not result["regions"]:
        raise UserError(f"{args.trace}: no region named {args.region!r}")
    if args.json:
        print_json(result)
        return 0
    print(f"{result['trace']} ({result['format']})")
    for r in result["regions"]:
        m = r["metrics"]
        print(
            f"\nregion {r['name']}  device {r['device']}  -> {m['bound'].upper()}-bound "
            f"(queued fraction {m['queued_fraction']:.2f})"
        )
        # SPEC.md's metrics first, then the ones beyond it
        keys = [k for k in METRIC_KEYS if k != "bound"]
        keys += [k for k in m if k not in METRIC_KEYS]
        print(table([[k, fmt_value(m[k])] for k in keys], ["metric", "value"]))
        if r["top_kernels"]:
            print()
            rows = [
                [
                    short_name(k["name"]),
                    fmt_value(k["count"]),
                    fmt_value(k["total_us"]),
                    fmt_value(k["mean_us"]),
                ]
                for k in r["top_kernels"]
            ]
            print(table(rows, ["top kernels", "count", "total_us", "mean_us"]))
    if args.api and result["api_calls"]:
        print("\nCPU calls (whole trace; the longest call's begin from the first call)")
        rows = [
            [
                short_name(a["name"]),
                fmt_value(a["calls"]),
                fmt_value(a["total_us"]),
                fmt_value(a["median_us"]),
                fmt_value(a["max_us"]),
                fmt_value(a["max_at_us"]),
            ]
            for a in result["api_calls"]
        ]
        print(table(rows, ["api", "calls", "total_us", "median_us", "max_us", "max_at_us"]))
    return 0
