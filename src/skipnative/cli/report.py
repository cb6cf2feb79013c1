"""`skip report DIR`: report.md with plots from a sweep folder (and report.html)."""

from __future__ import annotations

import argparse
import os
import sys

from skipnative.cli._common import check_out_folder, comma_items, number, out_path

# as `skip whatif --cpu-scale`: a replay's times must stay within 64-bit ns
CPU_SCALE_MAX = 1e6
_SCALE = number(float, 0, CPU_SCALE_MAX, above=True)


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="report.md with plots from a sweep folder")
    p.add_argument("folder", help="a folder written by `skip sweep` (sweep.json + .skip files)")
    p.add_argument("--out", type=out_path, help="where to write (default: the folder)")
    p.add_argument(
        "--whatif-cpu",
        type=_scales,
        default=(2.0, 0.5),
        metavar="S,...",
        help="also predict each point for a CPU S times slower (S < 1: faster), each S "
        f"above 0, at most {CPU_SCALE_MAX:g}; '' for none (default: 2,0.5)",
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
    """An argparse type: the comma-separated scales, each as --cpu-scale takes it;
    '' for none. An empty scale among others ("2,,3", ",") is refused: it is a
    typo, not a wish for fewer scales."""
    parts = comma_items(text, "scale")
    try:
        return tuple(_SCALE(x) for x in parts)
    except argparse.ArgumentTypeError as e:
        raise argparse.ArgumentTypeError(f"in {text!r}: {e}") from None


def run(args) -> int:
    from skipnative.report import write_report

    if args.out is not None:
        check_out_folder(args.out)
    path = write_report(
        args.folder,
        args.out,
        whatif_cpu=args.whatif_cpu,
        whatif_graphs=not args.no_whatif_graphs,
        html=args.html,
    )
    md = os.path.join(os.path.dirname(path), "report.md")
    also = f" and {path}" if path != md else ""
    print(f"wrote {md}{also}, with its plots", file=sys.stderr)
    return 0
