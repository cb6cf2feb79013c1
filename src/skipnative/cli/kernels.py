"""`skip kernels TRACE|DIR`: the per-kernel table (CSV, Parquet, or a summary)."""

from __future__ import annotations

import csv
import os
import sys

import numpy as np

from skipnative.cli._common import (
    UsageError,
    UserError,
    fmt_value,
    out_file,
    print_json,
    require_content,
    short_name,
    table,
    window_arg,
    window_ns,
)
from skipnative.cli._folders import add_jobs_arg, map_files, report_errors
from skipnative.io.folder import is_folder, list_traces


def add_parser(sub) -> None:
    p = sub.add_parser(
        "kernels",
        help="one row per kernel: launch call, latency parts, ops, region, SPEC count",
    )
    p.add_argument("trace", help=".skip file, torch.profiler trace, or a folder of per-rank traces")
    p.add_argument("--region", help="only kernels placed in regions of this name")
    p.add_argument(
        "--window",
        type=window_arg,
        metavar="START:END",
        help="only kernels placed in [START, END) (µs from the trace's start, either end optional)",
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument(
        "--csv",
        type=out_file(".csv", stdout=True),
        metavar="OUT",
        help="write the table as CSV (OUT ends in .csv; '-': stdout)",
    )
    out.add_argument(
        "--parquet",
        type=out_file(".parquet", ".pq", stdout=True),
        metavar="OUT",
        help="write the table as Parquet (OUT ends in .parquet or .pq; '-': stdout, when "
        "it is no terminal; needs pyarrow)",
    )
    out.add_argument("--json", action="store_true", help="the summary as one JSON object")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--top", type=int, default=20, metavar="K", help="kernel names in the summary")
    add_jobs_arg(p)
    p.set_defaults(run=run)


def _rows_work(path: str, trace, region, window) -> dict:
    from skipnative.analysis.kernel_rows import kernel_rows

    require_content(path, trace)
    return kernel_rows(trace, region=region, window=window_ns(trace, window))


def _table(args) -> tuple[dict, list[str]]:
    from skipnative.analysis.kernel_rows import COLUMNS

    window = args.window
    kw = {"region": args.region, "window": window}
    if not is_folder(args.trace):
        import skipnative

        trace = skipnative.load(args.trace)
        try:
            return _rows_work(args.trace, trace, **kw), []
        except ValueError as e:
            raise UserError(f"{args.trace}: {e}") from None
    rows, errors = map_files(list_traces(args.trace), _rows_work, kw, args.jobs)
    # a folder's table names each row's file beside its rank: two files may
    # share a rank (two runs, a rank written twice), and are told apart by it
    names = (*COLUMNS[:1], "file", *COLUMNS[1:])
    parts = []
    for path, rank, cols in rows:
        cols["rank"][:] = rank
        cols["file"] = np.full(len(cols["rank"]), os.path.basename(path), dtype=object)
        parts.append(cols)
    if not parts:
        return {c: np.zeros(0) for c in names}, errors
    return {c: np.concatenate([p[c] for p in parts]) for c in names}, errors


def _check_out(path: str, force: bool) -> None:
    """Before any work: an output that is no file (a folder) is refused, --force or
    not; an existing file without --force."""
    from skipnative.io.atomic import refuse_output

    if path != "-":
        refuse_output(path, overwrite=force)


def write_csv(cols: dict, path: str, force: bool = False) -> None:
    from skipnative.io.atomic import atomic_output

    _check_out(path, force)
    names = list(cols)
    # µs columns hold whole ns: three decimals say them exactly (no float noise
    # such as 0.5759999999999998)
    data = [np.round(cols[c], 3).tolist() if c.endswith("_us") else cols[c].tolist() for c in names]

    def emit(f) -> None:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(names)
        w.writerows(zip(*data))

    if path == "-":
        emit(sys.stdout)
        return
    with atomic_output(path, overwrite=force) as raw:
        import io

        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        emit(text)
        text.flush()
        text.detach()


def write_parquet(cols: dict, path: str, force: bool = False) -> None:
    from skipnative.io.atomic import atomic_output
    from skipnative.trace import arrow_table

    _check_out(path, force)
    tbl = arrow_table(cols)
    import pyarrow.parquet as pq

    if path == "-":  # as --csv takes it: stdout, not a file named "-"
        import pyarrow as pa

        buf = pa.BufferOutputStream()
        pq.write_table(tbl, buf)
        sys.stdout.flush()
        sys.stdout.buffer.write(buf.getvalue().to_pybytes())
        sys.stdout.buffer.flush()
        return
    with atomic_output(path, overwrite=force) as f:
        pq.write_table(tbl, f)


def run(args) -> int:
    if args.top < 0:
        raise UsageError("--top must be >= 0")
    out = args.csv or args.parquet
    if out:  # before any trace is read: a long folder read would end in this error
        _check_out(out, args.force)
    if args.parquet == "-" and sys.stdout.isatty():
        raise UsageError("--parquet -: Parquet is binary; send stdout to a file or a pipe")
    if args.parquet:
        import pyarrow  # noqa: F401  (missing: the command names its extra, as for any)
    cols, errors = _table(args)
    if args.csv:
        write_csv(cols, args.csv, args.force)
    elif args.parquet:
        write_parquet(cols, args.parquet, args.force)
    else:
        _summary(args, cols)
    out = args.csv or args.parquet
    if out not in (None, "-"):
        print(f"wrote {out}: {len(cols['name']):,} kernels", file=sys.stderr)
    return report_errors(errors)


def _summary(args, cols: dict) -> None:
    from skipnative.analysis.kernel_rows import COUNTS, summary_by_name

    summ = summary_by_name(cols)
    counts = {c: int((cols["count"] == c).sum()) for c in COUNTS}
    if args.json:
        print_json(
            {"trace": args.trace, "kernels": len(cols["name"]), "counts": counts, "by_name": summ}
        )
        return
    n = len(cols["name"])
    print(f"{args.trace}: {n:,} kernels  " + "  ".join(f"{k} {v:,}" for k, v in counts.items()))
    rows = [
        [
            short_name(s["name"], 60),
            fmt_value(s["kernels"]),
            fmt_value(s["total_us"]),
            fmt_value(s["mean_us"]),
            fmt_value(s["mean_lq_us"]),
            str(s["ranks"]),
        ]
        for s in summ[: args.top]
    ]
    print(table(rows, ["kernel", "count", "total_us", "mean_us", "mean_lq_us", "ranks"]))
    if len(summ) > args.top:
        print(f"... {len(summ) - args.top} more names (--top, or --csv for every kernel)")
