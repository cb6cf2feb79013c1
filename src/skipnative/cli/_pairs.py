"""The regions two analyses share, with each metric side by side (skip compare,
of two traces or of two rank folders)."""

from __future__ import annotations

import math
from typing import Any


def side_by_side(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """SPEC.md's metrics, then those beyond it that both have: a, b, b - a, b / a."""
    from skipnative.analysis.metrics import METRIC_KEYS  # numpy: only when comparing

    numeric = [k for k in METRIC_KEYS if k != "bound"]
    extra = [k for k in a if k not in METRIC_KEYS and k in b]
    out: dict[str, Any] = {}
    for k in numeric + extra:
        va, vb = a[k], b[k]
        if math.isnan(va) or math.isnan(vb):  # not recorded on a side: nothing to compare
            out[k] = {"a": va, "b": vb, "diff": math.nan, "ratio": None}
            continue
        # + 0.0: a ratio of 0 to a negative number is 0, never -0
        out[k] = {"a": va, "b": vb, "diff": vb - va, "ratio": (vb / va + 0.0) if va else None}
    out["bound"] = {"a": a["bound"], "b": b["bound"]}
    return out


def paired_regions(ra: list[dict], rb: list[dict]) -> list[tuple[dict, dict, dict]]:
    """(region of A, region of B, metrics side by side) for each (name, device) in
    both (a region's "pair", where it has one, in place of its name); with one
    region each, those two whatever their names and devices."""
    by_b = {(r.get("pair", r["name"]), r["device"]): r for r in rb}
    out = []
    for r in ra:
        other = by_b.get((r.get("pair", r["name"]), r["device"]))
        if other is None and len(ra) == 1 and len(rb) == 1:
            other = rb[0]  # one region each: compare across names and device ids
        if other is not None:
            out.append((r, other, side_by_side(r["metrics"], other["metrics"])))
    return out
