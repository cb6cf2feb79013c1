"""`skip analyze TRACE`: SKIP metrics per region and device."""

from __future__ import annotations

import sys

from skipnative.cli import folder_commands
from skipnative.cli._common import (
    UsageError,
    UserError,
    api_table,
    fmt_value,
    print_json,
    require_content,
    short_name,
    table,
    warn_losses,
    window_arg,
    window_ns,
    window_text,
)
from skipnative.cli._folders import add_jobs_arg
from skipnative.io.folder import is_folder


def add_parser(sub) -> None:
    p = sub.add_parser("analyze", help="SKIP metrics (TKLQT, AKD, IL, ...) of a trace")
    p.add_argument(
        "trace",
        help=".skip file or torch.profiler trace (.json, .json.gz), or a folder of per-rank traces",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument(
        "--region",
        help="only regions with this name ('all', 'ProfilerStep#3', or a record_function / "
        "user_annotation range such as '## forward ##': each occurrence its own region)",
    )
    p.add_argument(
        "--window",
        type=window_arg,
        metavar="START:END",
        help="only kernels whose launch begins in this window, in µs from the trace's start "
        "(either end may be left out: '2000:', ':5000')",
    )
    p.add_argument("--top", type=int, default=10, metavar="K", help="top kernels per region")
    p.add_argument(
        "--api",
        action="store_true",
        help="also a per-API summary of the CPU calls (calls, total, median, longest)",
    )
    add_jobs_arg(p)
    p.set_defaults(run=run)


def analysis(path: str, region: str | None, top: int, window=None, trace=None) -> dict:
    import skipnative
    from skipnative.io.sniff import detect_format

    fmt = detect_format(path)
    from skipnative.analysis.kernels import unknown_region
    from skipnative.analysis.metrics import api_summary, compute_metrics, records_latency
    from skipnative.trace import losses, malformed_events, vendor

    trace = trace if trace is not None else skipnative.load(path)
    require_content(path, trace)
    span = window_ns(trace, window)
    regions = compute_metrics(trace, region=region, top=top, window=span)
    if region is not None and not regions:
        raise UserError(f"{path}: {unknown_region(trace, region)}")
    out = {"trace": path, "format": fmt, "vendor": vendor(trace)}
    if window is not None:
        out["window_us"] = list(window)
        b = trace.launches["t_begin"]
        if span is not None and not ((b >= span[0]) & (b < span[1])).any():
            print(
                f"skip: warning: {path}: no launch call begins in --window {_window_arg(window)} "
                f"(the trace's launches span {_launch_span_us(trace):,.1f} µs from its start)",
                file=sys.stderr,
            )
    out["regions"] = [r.to_dict() for r in regions]
    out["api_calls"] = api_summary(trace)
    out["dropped"] = losses(trace.meta)
    # events the Kineto reader ignored as malformed, by the field that broke them
    out["malformed_events"] = malformed_events(trace.meta)
    # whether its latency metrics were measured (CUPTI's submitted times) or are
    # the 0 of a trace without them (torch.profiler's): compare tells them apart
    out["records_latency"] = records_latency(trace)
    return out


def run(args) -> int:
    if args.top < 0:
        raise UsageError("--top must be >= 0")
    window = args.window
    if is_folder(args.trace):
        return folder_commands.analyze(args, analysis, window)
    result = analysis(args.trace, args.region, args.top, window, trace=_read_early(args.trace))
    warn_losses(result)
    if args.json:
        print_json(result)
        return 0
    from skipnative.analysis.metrics import METRIC_KEYS

    print(f"{result['trace']} ({result['format']}, {result['vendor']} GPU)")
    if window is not None:
        print(window_text(window))
    for r in result["regions"]:
        m = r["metrics"]
        print(f"\nregion {r['name']}  device {r['device']}  -> {_bound_text(m, window)}")
        # SPEC.md's metrics first, then the ones beyond it
        keys = [k for k in METRIC_KEYS if k != "bound"]
        keys += [k for k in m if k not in METRIC_KEYS]
        print(table([[k, fmt_value(m[k])] for k in keys], ["metric", "value"]))
        _print_idle_by_stream(r)
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
        print(api_table(result["api_calls"]))
    return 0


def _window_arg(window) -> str:
    return ":".join("" if x is None else f"{x:.12g}" for x in window)


def _launch_span_us(trace) -> float:
    """Where the trace's last launch call begins, µs from the trace's start."""
    from skipnative.analysis.kernels import trace_start

    b = trace.launches["t_begin"]
    return float(b.max() - trace_start(trace)) / 1e3 if len(b) else 0.0


def _read_early(path: str):
    """A Kineto trace, read on a thread started before the analysis' imports
    (numpy among them, ~0.1 s), which run while the reader parses; None for a
    .skip file (analysis loads it)."""
    from skipnative.io.kineto_stream import Prefetch
    from skipnative.io.sniff import detect_format

    if detect_format(path) != "kineto":
        return None
    pending = Prefetch(path)
    from skipnative.io.kineto import load_kineto

    return load_kineto(path, pending.result())


def _bound_text(m: dict, window=None) -> str:
    if m["bound"] == "none":
        return "not classified (no counted kernel: no kernel joined to a kernel or graph launch)"
    text = f"{m['bound'].upper()}-bound (queued fraction {m['queued_fraction']:.2f})"
    busy = m["gpu_busy_us"] / m["il_us"] if m["il_us"] > 0 else 1.0
    if m["bound"] == "gpu" and busy < 0.05:
        # kernels queued, yet the GPU idled: the span is a few long calls or waits
        text += (
            f"; yet the GPU was busy {busy:.1%} of IL: a few long calls or waits make the"
            " span (see --api for the longest"
            + (
                ", a narrower --window to leave them out)"
                if window
                else ", --window to leave them out)"
            )
        )
    return text


def _print_idle_by_stream(r: dict) -> None:
    """Where the idle split by cause is summed over several streams, it can exceed
    IL: say so, and give each stream's."""
    m, streams = r["metrics"], r.get("idle_by_stream") or []
    if len(streams) < 2:
        return
    exceeds = m["gpu_idle_host_us"] + m["gpu_idle_launch_us"] > m["il_us"]
    print(
        f"\ngpu_idle_host_us and gpu_idle_launch_us are summed over {len(streams)} streams"
        + (" (so they exceed il_us)" if exceeds else "")
    )
    rows = [[str(s["stream"]), fmt_value(s["host_us"]), fmt_value(s["launch_us"])] for s in streams]
    print(table(rows, ["stream", "idle_host_us", "idle_launch_us"]))
