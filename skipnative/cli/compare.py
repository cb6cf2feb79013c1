"""`skip compare A B`: two traces of the same work side by side."""

from __future__ import annotations

import json
import sys

from skipnative.cli._common import UserError, fmt_value, table
from skipnative.metrics import METRIC_KEYS

NUMERIC = [k for k in METRIC_KEYS if k != "bound"]


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="two traces of the same work side by side")
    p.add_argument("a", help="first trace (e.g. Kineto)")
    p.add_argument("b", help="second trace (e.g. native)")
    p.add_argument("--region", default="all", help="region name to compare (default: all)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(run=run)


def comparison(a: str, b: str, region: str) -> dict:
    from skipnative.cli.analyze import analysis

    ra, rb = analysis(a, region, 0), analysis(b, region, 0)
    if not ra["regions"]:
        raise UserError(f"{a}: no region named {region!r}")
    if not rb["regions"]:
        raise UserError(f"{b}: no region named {region!r}")
    by_b = {(r["name"], r["device"]): r for r in rb["regions"]}
    rows = []
    for r in ra["regions"]:
        other = by_b.get((r["name"], r["device"]))
        if other is None and len(rb["regions"]) == 1 and len(ra["regions"]) == 1:
            other = rb["regions"][0]  # one region each: compare across device ids
        if other is None:
            continue
        metrics = {}
        for k in NUMERIC:
            va, vb = r["metrics"][k], other["metrics"][k]
            metrics[k] = {"a": va, "b": vb, "diff": vb - va, "ratio": (vb / va) if va else None}
        metrics["bound"] = {"a": r["metrics"]["bound"], "b": other["metrics"]["bound"]}
        rows.append(
            {
                "name": r["name"],
                "device_a": r["device"],
                "device_b": other["device"],
                "metrics": metrics,
            }
        )
    if not rows:
        raise UserError(f"no region/device present in both {a} and {b}")
    return {"a": a, "b": b, "regions": rows}


def run(args) -> int:
    result = comparison(args.a, args.b, args.region)
    if args.json:
        json.dump(result, sys.stdout, separators=(",", ":"))
        sys.stdout.write("\n")
        return 0
    print(f"A: {result['a']}\nB: {result['b']}")
    for r in result["regions"]:
        print(f"\nregion {r['name']}  device A {r['device_a']} / B {r['device_b']}")
        rows = []
        for k in NUMERIC:
            m = r["metrics"][k]
            ratio = "-" if m["ratio"] is None else f"{m['ratio']:.3f}"
            rows.append([k, fmt_value(m["a"]), fmt_value(m["b"]), fmt_value(m["diff"]), ratio])
        b = r["metrics"]["bound"]
        rows.append(["bound", b["a"], b["b"], "", ""])
        print(table(rows, ["metric", "A", "B", "B - A", "B / A"]))
    return 0
