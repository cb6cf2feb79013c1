"""`skip fusion TRACE`: kernel-fusion candidates by proximity score (SPEC.md §5)."""

from __future__ import annotations

import argparse

from skipnative.cli import folder_commands
from skipnative.cli._common import (
    UsageError,
    UserError,
    comma_items,
    fmt_value,
    print_json,
    require_content,
    short_name,
    table,
)
from skipnative.cli._folders import add_jobs_arg
from skipnative.io.folder import is_folder


def add_parser(sub) -> None:
    p = sub.add_parser("fusion", help="kernel-fusion candidates (proximity score)")
    p.add_argument("trace", help=".skip file or torch.profiler trace, or a folder of them")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--lengths", default="2,3", help="chain lengths (default 2,3)")
    p.add_argument("--threshold", type=float, default=1.0, help="minimum PS (default 1.0)")
    p.add_argument("--region", default="all", help="region (default: the whole trace)")
    p.add_argument("--device", type=int, help="only this device")
    p.add_argument(
        "--top", type=int, default=20, metavar="K", help="candidates shown (default 20; 0: all)"
    )
    add_jobs_arg(p)
    p.set_defaults(run=run)


def parse_lengths(text: str) -> tuple[int, ...]:
    try:
        lengths = tuple(sorted({int(x) for x in comma_items(text, "length")}))
    except argparse.ArgumentTypeError as e:
        raise UsageError(f"--lengths: {e}") from None
    except ValueError:
        raise UsageError(f"--lengths: expected integers like 2,3, got {text!r}") from None
    if not lengths or min(lengths) < 2:
        raise UsageError("--lengths: chains have at least 2 kernels")
    return lengths


def run(args) -> int:
    import skipnative
    from skipnative.analysis.fusion import find_candidates

    lengths = parse_lengths(args.lengths)
    if not 0 < args.threshold <= 1:
        raise UsageError("--threshold must be in (0, 1]")
    if args.top < 0:
        raise UsageError("--top must be >= 0 (0: all)")
    if is_folder(args.trace):
        return folder_commands.fusion(args, lengths)
    trace = skipnative.load(args.trace)
    require_content(args.trace, trace)
    devices = sorted(set(trace.kernels["device"].tolist()))
    if args.device is not None and args.device not in devices:
        raise UserError(
            f"{args.trace}: no kernel ran on device {args.device} "
            f"(devices: {', '.join(map(str, devices)) or 'none'})"
        )
    try:
        cands = find_candidates(
            trace,
            lengths=lengths,
            threshold=args.threshold,
            region=args.region,
            device=args.device,
        )
    except ValueError as e:
        raise UserError(f"{args.trace}: {e}") from None
    total = len(cands)
    if args.top:
        cands = cands[: args.top]
    if args.json:
        print_json(
            {
                "trace": args.trace,
                "total": total,
                "cut": len(cands) < total,
                "candidates": [c.to_dict() for c in cands],
            }
        )
        return 0
    if not cands:
        print(f"{args.trace}: no chain reaches PS >= {args.threshold}")
        return 0
    has_ops = len(trace.ops) > 0  # a native capture records none: no column left blank
    rows = [
        [
            " -> ".join(short_name(n, 40) for n in c.chain),
            fmt_value(c.count),
            f"{c.ps:.2f}",
            fmt_value(c.saving_us),
            *([short_name(", ".join(c.ops), 40)] if has_ops else []),
        ]
        for c in cands
    ]
    header = ["chain", "count", "PS", "saving_us", *(["top-level ops"] if has_ops else [])]
    print(table(rows, header))
    if len(cands) < total:
        print(f"\n{len(cands)} of {total} candidates shown (--top 0 for all)")
    if not has_ops:
        print(f"\n{NO_OPS}")
    return 0


NO_OPS = (
    "no top-level ops: the trace has no ATen op (a native capture records none); "
    "for attribution, use skipnative.profile() or a torch.profiler trace"
)
