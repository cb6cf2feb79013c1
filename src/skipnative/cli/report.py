"""`skip report DIR`: report.md with plots from a sweep folder (and report.html)."""

from __future__ import annotations

import sys

from skipnative.cli._common import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="report.md with plots from a sweep folder")
    p.add_argument("folder", help="a folder written by `skip sweep` (sweep.json + .skip files)")
    p.add_argument("--out", help="where to write (default: the folder)")
    p.add_argument(
        "--whatif-cpu",
        default="2,0.5",
        metavar="S,...",
        help="also predict each point for a CPU S times slower (S < 1: faster); "
        "'' for none (default: 2,0.5)",
    )
    p.add_argument(
        "--html",
        action="store_true",
        help="also write report.html, one self-contained page (plots embedded)",
    )
    p.add_argument(
        "--no-whatif-graphs",
        action="store_true",
        help="leave out the prediction with CUDA graphs",
    )
    p.set_defaults(run=run)


def _scales(text: str) -> tuple[float, ...]:
    try:
        scales = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--whatif-cpu: not a list of numbers: {text!r}") from None
    if any(not (s > 0) or s == float("inf") for s in scales):
        raise UserError(f"--whatif-cpu: scales must be finite and > 0: {text!r}")
    return scales


def run(args) -> int:
    from skipnative.report import write_report

    scales = _scales(args.whatif_cpu)
    path = write_report(
        args.folder,
        args.out,
        whatif_cpu=scales,
        whatif_graphs=not args.no_whatif_graphs,
        html=args.html,
    )
    print(f"wrote {path}", file=sys.stderr)
    return 0
