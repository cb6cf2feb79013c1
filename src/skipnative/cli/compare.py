"""`skip compare A B`: two traces of the same work side by side."""

from __future__ import annotations

import sys
from collections import Counter

from skipnative.cli import folder_commands
from skipnative.cli._common import (
    UsageError,
    UserError,
    fmt_ratio,
    fmt_value,
    print_json,
    table,
    window_arg,
)
from skipnative.cli._folders import add_jobs_arg
from skipnative.cli._pairs import paired_regions
from skipnative.io.folder import is_folder


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="two traces of the same work side by side")
    p.add_argument("a", help="first trace (e.g. Kineto)")
    p.add_argument("b", help="second trace (e.g. native)")
    p.add_argument("--region", default="all", help="region name to compare (default: all)")
    p.add_argument(
        "--per-iteration",
        action="store_true",
        help="compare the mean over each trace's iterations (its regions: a profile's "
        "timed iterations, a torch.profiler step) instead of one region",
    )
    p.add_argument(
        "--window",
        type=window_arg,
        metavar="START:END",
        help="only kernels whose launch begins in this window, µs from each trace's start",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    add_jobs_arg(p)
    p.set_defaults(run=run)


# `skip compare` warns where the two traces' kernel mixes overlap less than this
# (kernel_mix_overlap): the same model at another batch size, on another card,
# with CUDA graphs or traced by torch.profiler keeps three quarters or more of its
# mix (the committed H100/H200 sweeps: 0.76 and up); traces of unrelated work share
# next to no kernel name (the committed Llama and HTA traces: 0.06 and below)
MIX_OVERLAP_MIN = 0.1


def kernel_mix(trace) -> Counter:
    """A trace's kernels counted by name."""
    import numpy as np

    ids, counts = np.unique(trace.kernels["name_id"], return_counts=True)
    mix: Counter = Counter()
    for name, n in zip(trace.name(ids), counts.tolist()):
        mix[name] += n
    return mix


def kernel_mix_overlap(a: Counter, b: Counter) -> float | None:
    """How much of the same kernel mix two traces ran: each kernel name's share of
    a side's kernels, the smaller of the two summed over names (1: the same mix
    whatever the number of iterations; 0: no kernel name in common); None where a
    side ran no kernel."""
    na, nb = sum(a.values()), sum(b.values())
    if not na or not nb:
        return None
    return sum((min(n / na, b[name] / nb) for name, n in a.items() if name in b), 0.0)


def _per_iteration(path: str, trace=None) -> dict:
    """A trace's analysis with one region per device that ran kernels: the mean over
    its iterations that launched a kernel there (an empty one, such as a last
    ProfilerStep that only closed the profile, would scale every mean down by the
    number of iterations; it is left out and counted)."""
    import skipnative
    from skipnative.analysis.metrics import api_summary
    from skipnative.analysis.sweep import run_summary

    trace = trace if trace is not None else skipnative.load(path)
    rows = trace.metrics(top=0)
    whole = [r for r in rows if r.name == "all"]
    steps = [r for r in rows if r.name != "all"]
    n_steps = len(trace.iterations)
    regions = []
    # the devices that ran kernels, as `skip analyze` names them (not the trace's
    # first listed device)
    for w in [r for r in whole if r.metrics["n_kernels"] > 0] or whole[:1]:
        if not n_steps:
            m = run_summary(trace, [w])
            name = label = "whole trace (no iterations)"
            n = empty = 0
        else:
            full = [r for r in steps if r.device == w.device and r.metrics["n_kernels"] > 0]
            if not full:
                continue
            m = run_summary(trace, full)
            n, empty = len(full), n_steps - len(full)
            name = f"per iteration (mean of {n})"
            left_out = f"; {empty} empty iteration{'s' * (empty != 1)} left out" if empty else ""
            label = f"per iteration (mean of {n}{left_out})"
        for k in ("iterations", "empty_iterations", "device"):  # said in the label, not rows
            m.pop(k, None)
        regions.append(
            {
                "name": name,
                "label": label,
                "pair": "per iteration",  # devices pair whatever each side's count
                "device": w.device,
                "metrics": m,
                "iterations": n,
                "empty_iterations": empty,
            }
        )
    if not regions:
        raise UserError(
            f"{path}: no kernel was launched in any of its {n_steps} iteration(s): nothing "
            "to average per iteration (compare without --per-iteration)"
        )
    return {"regions": regions, "api_calls": api_summary(trace)}


def comparison(a: str, b: str, region: str, per_iteration: bool = False, window=None) -> dict:
    import skipnative
    from skipnative.analysis.metrics import mark_unrecorded, records_latency
    from skipnative.cli.analyze import analysis

    if per_iteration and window is not None:
        raise UsageError("--window and --per-iteration: choose one")
    ta, tb = skipnative.load(a), skipnative.load(b)
    if per_iteration:
        ra, rb = _per_iteration(a, ta), _per_iteration(b, tb)
    else:
        ra, rb = analysis(a, region, 0, window, ta), analysis(b, region, 0, window, tb)
    for res, trace in ((ra, ta), (rb, tb)):  # what a side does not record is no 0 beside the other
        for r in res["regions"]:
            mark_unrecorded(r["metrics"], records_latency(trace))
    if not ra["regions"]:
        raise UserError(f"{a}: no region named {region!r}")
    if not rb["regions"]:
        raise UserError(f"{b}: no region named {region!r}")
    rows = []
    for r, other, metrics in paired_regions(ra["regions"], rb["regions"]):
        row = {"name": r["name"], "device_a": r["device"], "device_b": other["device"]}
        label_a, label_b = r.get("label", r["name"]), other.get("label", other["name"])
        row |= {"label_a": label_a, "label_b": label_b, "metrics": metrics}
        if "iterations" in r:
            row |= {"iterations_a": r["iterations"], "iterations_b": other["iterations"]}
            row |= {
                "empty_iterations_a": r["empty_iterations"],
                "empty_iterations_b": other["empty_iterations"],
            }
        rows.append(row)
    if not rows:
        raise UserError(f"no region/device present in both {a} and {b}")
    calls_b = {c["name"]: c for c in rb["api_calls"]}
    api = [
        {
            "name": c["name"],
            "calls_a": c["calls"],
            "calls_b": calls_b[c["name"]]["calls"],
            "median_us_a": c["median_us"],
            "median_us_b": calls_b[c["name"]]["median_us"],
            "ratio": calls_b[c["name"]]["median_us"] / c["median_us"] if c["median_us"] else None,
        }
        for c in ra["api_calls"]
        if c["name"] in calls_b
    ]
    overlap = kernel_mix_overlap(kernel_mix(ta), kernel_mix(tb))
    return {"a": a, "b": b, "kernel_mix_overlap": overlap, "regions": rows, "api_calls": api}


def warn_other_work(result: dict) -> None:
    """One warning line where the two traces plainly ran different work."""
    overlap = result["kernel_mix_overlap"]
    if overlap is not None and overlap < MIX_OVERLAP_MIN:
        print(
            f"skip: warning: {result['a']} and {result['b']} may not run the same work: "
            f"{overlap:.1%} of their kernel mix is in common (kernels by name)",
            file=sys.stderr,
        )


def run(args) -> int:
    window = args.window
    if is_folder(args.a) or is_folder(args.b):
        from skipnative.cli.analyze import analysis

        return folder_commands.compare(args, analysis, window)
    result = comparison(args.a, args.b, args.region, args.per_iteration, window)
    warn_other_work(result)
    if args.json:
        print_json(result)
        return 0
    print(f"A: {result['a']}\nB: {result['b']}")
    for r in result["regions"]:
        if r["label_a"] == r["label_b"]:
            print(f"\nregion {r['label_a']}  device A {r['device_a']} / B {r['device_b']}")
        else:
            print(
                f"\nregion A: {r['label_a']}, device {r['device_a']} / "
                f"B: {r['label_b']}, device {r['device_b']}"
            )
        rows = []
        for k, m in r["metrics"].items():
            if k == "bound":
                continue
            ratio = fmt_ratio(m["ratio"])
            rows.append([k, fmt_value(m["a"]), fmt_value(m["b"]), fmt_value(m["diff"]), ratio])
        b = r["metrics"]["bound"]
        rows.append(["bound", b["a"], b["b"], "", ""])
        print(table(rows, ["metric", "A", "B", "B - A", "B / A"]))
    if result["api_calls"]:
        print("\nCPU calls in both (whole traces; median call time)")
        rows = [
            [
                c["name"],
                f"{c['calls_a']} / {c['calls_b']}",
                fmt_value(c["median_us_a"]),
                fmt_value(c["median_us_b"]),
                fmt_ratio(c["ratio"]),
            ]
            for c in result["api_calls"]
        ]
        print(table(rows, ["api", "calls A / B", "median us A", "median us B", "B / A"]))
    return 0
