"""`skip report DIR`: report.md with plots from a sweep folder."""

from __future__ import annotations

import sys

from skipnative.cli._common import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="report.md with plots from a sweep folder")
    p.add_argument("folder", help="a folder written by `skip sweep` (sweep.json + .skip files)")
    p.add_argument("--out", help="where to write (default: the folder)")
    p.set_defaults(run=run)


def run(args) -> int:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("skip report needs matplotlib: pip install 'skipnative[report]'") from None
    from skipnative.report import write_report

    path = write_report(args.folder, args.out)
    print(f"wrote {path}", file=sys.stderr)
    return 0
