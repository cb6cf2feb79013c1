"""`skip analyze|compare|fusion DIR`: the commands on a folder of per-rank traces.

Every region entry carries its `rank`; analyze adds, per region name (each
torch.profiler step, "all"), a cross-rank summary: the slowest and fastest rank
by IL and the spread (max - min) of IL and TKLQT over ranks, the first question
of a tensor-parallel run (which rank holds the others back, and is it the host).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from skipnative.cli._common import (
    UsageError,
    UserError,
    api_table,
    fmt_ratio,
    fmt_value,
    print_json,
    require_content,
    short_name,
    table,
    warn_losses,
    window_text,
)
from skipnative.cli._folders import map_files, report_errors
from skipnative.cli._pairs import paired_regions
from skipnative.io.folder import is_folder, list_traces, shared_rank_text, shared_ranks
from skipnative.text import printable


def _analyze_work(path: str, trace, analysis, region: str | None, top: int, window) -> dict:
    return analysis(path, region, top, window, trace=trace)


def folder_analysis(
    analysis,
    folder: str,
    region: str | None,
    top: int,
    jobs: int = 0,
    warn_shared: bool = True,
    window=None,
):
    """({folder, ranks, regions (each with its rank), steps}, error lines), with
    `analysis` (skip analyze's, for one trace) run on each file (`window`: the
    parsed --window, each file's own µs from its start)."""
    kw = {"analysis": analysis, "region": region, "top": top, "window": window}
    rows, errors = map_files(list_traces(folder), _analyze_work, kw, jobs, warn_shared=warn_shared)
    regions = [
        {"rank": rank, "trace": path, "file": os.path.relpath(path, folder), **r}
        for path, rank, res in rows
        for r in res["regions"]
    ]
    out = {
        "folder": folder,
        "format": "folder",
        "ranks": [
            {
                "rank": rank,
                "trace": p,
                "file": os.path.relpath(p, folder),  # the file's name in the folder
                "format": res["format"],
                "api_calls": res["api_calls"],
                "dropped": res.get("dropped", {}),
                "malformed_events": res.get("malformed_events", {}),
                "records_latency": res.get("records_latency", True),
            }
            for p, rank, res in rows
        ],
        "regions": regions,
        "steps": cross_rank(regions),
        "errors": errors,
    }
    if window is not None:
        out["window_us"] = list(window)
    return out, errors


def cross_rank(regions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per region name, over its (rank, device) entries: slowest and fastest rank by
    IL, and the spread (max - min) of IL and TKLQT; in first-appearance order."""
    by_name: dict[str, list[dict]] = {}
    for r in regions:
        by_name.setdefault(r["name"], []).append(r)
    out = []
    for name, entries in by_name.items():
        il = [e["metrics"]["il_us"] for e in entries]
        tk = [e["metrics"]["tklqt_us"] for e in entries]
        slow = max(range(len(entries)), key=lambda i: (il[i], -entries[i]["rank"]))
        fast = min(range(len(entries)), key=lambda i: (il[i], entries[i]["rank"]))
        out.append(
            {
                "name": name,
                "ranks": len({e["rank"] for e in entries}),
                "entries": len(entries),
                "slowest_rank": entries[slow]["rank"],
                "slowest_trace": entries[slow]["trace"],
                "fastest_rank": entries[fast]["rank"],
                "fastest_trace": entries[fast]["trace"],
                "il_max_us": max(il),
                "il_min_us": min(il),
                "il_spread_us": max(il) - min(il),
                "tklqt_max_us": max(tk),
                "tklqt_min_us": min(tk),
                "tklqt_spread_us": max(tk) - min(tk),
            }
        )
    return out


def analyze(args, analysis, window=None) -> int:
    result, errors = folder_analysis(
        analysis, args.trace, args.region, args.top, args.jobs, window=window
    )
    for r in result["ranks"]:
        warn_losses(r)
    if args.region is not None and not result["regions"] and not errors:
        raise UserError(f"{args.trace}: no region named {args.region!r}")
    if args.json:
        print_json(result)
        return report_errors(errors)
    if not result["ranks"]:  # every file failed: only the errors
        return report_errors(errors)
    ranks = [r["rank"] for r in result["ranks"]]
    n_files, n_ranks = len(ranks), len(set(ranks))
    what = f"{n_files} trace{'s' * (n_files != 1)}"
    if n_ranks != n_files:
        what += f", {n_ranks} rank{'s' * (n_ranks != 1)}"
    print(f"{args.trace} (folder of {what})")
    if window is not None:
        print(window_text(window) + ", in each file")
    shared = {r for r in ranks if ranks.count(r) > 1}

    def rank_cell(rank: int, trace: str) -> str:  # a rank several files have: which file
        return f"{rank} ({os.path.basename(trace)})" if rank in shared else str(rank)

    rows = [
        [
            short_name(r["name"], 40),
            str(r["rank"]),
            r["file"],
            str(r["device"]),
            fmt_value(r["metrics"]["il_us"]),
            fmt_value(r["metrics"]["tklqt_us"]),
            fmt_value(r["metrics"]["akd_us"]),
            fmt_value(r["metrics"]["n_kernels"]),
            r["metrics"]["bound"],
        ]
        for r in result["regions"]
    ]
    header = ["region", "rank", "file", "device", "il_us", "tklqt_us", "akd_us", "kernels", "bound"]
    print(table(rows, header))
    print("\nacross ranks (per region: slowest/fastest rank by IL, spread = max - min)")
    if shared:
        print("(a rank several files have counts once per file)")
    rows = [
        [
            short_name(s["name"], 40),
            str(s["ranks"]),
            rank_cell(s["slowest_rank"], s["slowest_trace"]),
            rank_cell(s["fastest_rank"], s["fastest_trace"]),
            fmt_value(s["il_spread_us"]),
            fmt_value(s["tklqt_spread_us"]),
        ]
        for s in result["steps"]
    ]
    print(table(rows, ["region", "ranks", "slowest", "fastest", "IL spread us", "TKLQT spread us"]))
    if args.api:
        for r in result["ranks"]:
            if r["api_calls"]:
                print(f"\nCPU calls of rank {r['rank']} ({printable(r['file'])})")
                print(api_table(r["api_calls"]))
    return report_errors(errors)


def _metric_rows(pairs: list[tuple[dict, dict, dict]]) -> list[dict]:
    return [
        {
            "rank": r["rank"],
            "name": r["name"],
            "device_a": r["device"],
            "device_b": other["device"],
            "metrics": metrics,
        }
        for r, other, metrics in pairs
    ]


def compare(args, analysis, window=None) -> int:
    from skipnative.analysis.metrics import mark_unrecorded

    if not (is_folder(args.a) and is_folder(args.b)):
        raise UsageError("compare: give two traces or two folders of per-rank traces")
    if args.per_iteration:
        raise UsageError("compare: --per-iteration takes two traces, not folders")
    # a rank in several files is an error here, said once below, not a warning
    kw = {"warn_shared": False, "window": window}
    ra, ea = folder_analysis(analysis, args.a, args.region, 0, args.jobs, **kw)
    rb, eb = folder_analysis(analysis, args.b, args.region, 0, args.jobs, **kw)
    for folder, res in ((args.a, ra), (args.b, rb)):
        ranks = [r["rank"] for r in res["ranks"]]
        for rank, files in shared_ranks([r["trace"] for r in res["ranks"]], ranks).items():
            raise UserError(
                f"{folder}: {shared_rank_text(rank, files)}; compare pairs one file per rank"
            )
    for res in (ra, rb):  # what a rank does not record is no 0 beside the other's
        recorded = {r["rank"]: r["records_latency"] for r in res["ranks"]}
        for r in res["regions"]:
            mark_unrecorded(r["metrics"], recorded[r["rank"]])
    rows = []
    ranks_a, ranks_b = {r["rank"] for r in ra["ranks"]}, {r["rank"] for r in rb["ranks"]}
    unpaired = {"ranks_a": sorted(ranks_a - ranks_b), "ranks_b": sorted(ranks_b - ranks_a)}
    unpaired["regions"] = []
    for rank in sorted(ranks_a & ranks_b):
        a = [r for r in ra["regions"] if r["rank"] == rank]
        b = [r for r in rb["regions"] if r["rank"] == rank]
        pairs = paired_regions(a, b)
        rows += _metric_rows(pairs)
        for side, regions, paired in (
            (("a", a, {id(x) for x, _, _ in pairs})),
            ("b", b, {id(y) for _, y, _ in pairs}),
        ):
            unpaired["regions"] += [
                {"rank": rank, "side": side, "name": r["name"], "device": r["device"]}
                for r in regions
                if id(r) not in paired
            ]
    if not rows and not (ea or eb):
        raise UserError(f"no rank/region/device present in both {args.a} and {args.b}")
    _warn_unpaired(args.a, args.b, unpaired)
    result = {"a": args.a, "b": args.b, "regions": rows, "unpaired": unpaired, "errors": ea + eb}
    if args.json:
        print_json(result)
        return report_errors(ea + eb)
    print(f"A: {args.a}\nB: {args.b}")
    keys = ("il_us", "tklqt_us", "akd_us", "queued_fraction")
    out = []
    for r in rows:
        for k in keys:
            m = r["metrics"][k]
            ratio = fmt_ratio(m["ratio"])
            out.append(
                [
                    f"{short_name(r['name'], 30)} {k}",
                    str(r["rank"]),
                    fmt_value(m["a"]),
                    fmt_value(m["b"]),
                    ratio,
                ]
            )
    print(table(out, ["region metric", "rank", "A", "B", "B / A"]))
    return report_errors(ea + eb)


def _warn_unpaired(a: str, b: str, unpaired: dict) -> None:
    """What the comparison leaves out, said: ranks and regions on one side only."""
    for side, folder in (("a", a), ("b", b)):
        if unpaired[f"ranks_{side}"]:
            ranks = ", ".join(map(str, unpaired[f"ranks_{side}"]))
            print(
                f"skip: warning: {folder}: rank {ranks} only there: not compared", file=sys.stderr
            )
        names = sorted(
            {
                f"{r['name']} (rank {r['rank']}, device {r['device']})"
                for r in unpaired["regions"]
                if r["side"] == side
            }
        )
        if names:
            print(
                f"skip: warning: {folder}: regions only there, not compared: {', '.join(names[:5])}"
                + (f" and {len(names) - 5} more" if len(names) > 5 else ""),
                file=sys.stderr,
            )


def _fusion_work(path: str, trace, **kw) -> list[dict]:
    from skipnative.analysis.fusion import find_candidates

    require_content(path, trace)
    return [c.to_dict() for c in find_candidates(trace, **kw)]


def fusion(args, lengths: tuple[int, ...]) -> int:
    kw = {
        "lengths": lengths,
        "threshold": args.threshold,
        "region": args.region,
        "device": args.device,
        "top": args.top or None,  # --top 0: all
    }
    rows, errors = map_files(list_traces(args.trace), _fusion_work, kw, args.jobs)
    per_rank = [{"rank": rank, "trace": p, "candidates": c} for p, rank, c in rows]
    if args.json:
        print_json({"folder": args.trace, "ranks": per_rank, "errors": errors})
        return report_errors(errors)
    for r in per_rank:
        print(f"\nrank {r['rank']}: {os.path.basename(r['trace'])}")
        if not r["candidates"]:
            print(f"no chain reaches PS >= {args.threshold}")
            continue
        out = [
            [
                " -> ".join(short_name(n, 40) for n in c["chain"]),
                fmt_value(c["count"]),
                f"{c['ps']:.2f}",
                fmt_value(c["saving_us"]),
            ]
            for c in r["candidates"]
        ]
        print(table(out, ["chain", "count", "PS", "saving_us"]))
    return report_errors(errors)
