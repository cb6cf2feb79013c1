"""`skip export TRACE --perfetto OUT.json`: a chrome/Perfetto trace."""

from __future__ import annotations

import sys

from skipnative.cli._common import out_file


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="convert a trace (to Perfetto/chrome JSON, or to .skip)")
    p.add_argument("trace", help=".skip file or torch.profiler trace")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument(
        "--perfetto",
        type=out_file(".json", ".json.gz"),
        metavar="OUT",
        help="chrome-trace JSON (OUT ends in .json, or .json.gz for gzip)",
    )
    g.add_argument("--skip", type=out_file(".skip"), metavar="OUT", help="a .skip file")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(run=run)


def run(args) -> int:
    import skipnative
    from skipnative.io.perfetto import export_perfetto

    trace = skipnative.load(args.trace)
    if args.perfetto:
        n = export_perfetto(trace, args.perfetto, overwrite=args.force)
        print(f"wrote {args.perfetto}: {n:,} events (open in ui.perfetto.dev)", file=sys.stderr)
    else:
        trace.save(args.skip, overwrite=args.force)
        print(f"wrote {args.skip}", file=sys.stderr)
    return 0
