"""`skip whatif TRACE|SWEEP_DIR`: predicted latency for a slower or faster CPU,
fused kernel chains or CUDA graphs, by replaying the trace's schedule."""

from __future__ import annotations

import os
import sys

import numpy as np

from skipnative.cli._common import (
    UsageError,
    UserError,
    fmt_value,
    number,
    print_json,
    require_content,
    table,
)

# The changes a replay takes: far beyond any real CPU or launch call, but never a
# schedule that leaves 64-bit nanoseconds for a trace of hours
CPU_SCALE_MAX = 1e6
LAUNCH_ADD_MAX_US = 1e6
# a chains file (`skip fusion --json` output) is kilobytes; more is no chains file
MAX_CHAINS_BYTES = 64 << 20


def add_parser(sub) -> None:
    p = sub.add_parser(
        "whatif", help="replay a trace (or a sweep) with a changed CPU, fused chains or CUDA graphs"
    )
    p.add_argument("trace", help=".skip / torch.profiler trace, or a sweep folder")
    p.add_argument(
        "--cpu-scale",
        type=number(float, 0, CPU_SCALE_MAX, above=True),
        default=1.0,
        metavar="S",
        help="host work takes S times as long (2: a CPU half as fast); "
        f"above 0, at most {CPU_SCALE_MAX:g}",
    )
    p.add_argument(
        "--launch-add-us",
        type=number(float, -LAUNCH_ADD_MAX_US, LAUNCH_ADD_MAX_US),
        default=0.0,
        metavar="US",
        help="each kernel or graph launch call takes US microseconds more (negative: less, "
        "never below no time), e.g. the difference in `skip bench launch` call time "
        f"between two machines; from {-LAUNCH_ADD_MAX_US:g} to {LAUNCH_ADD_MAX_US:g} "
        "(a second)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--fuse",
        metavar="CHAINS.json",
        help='chains to fuse: [["k1", "k2"], ...] or `skip fusion --json` output',
    )
    g.add_argument("--fuse-top", type=int, metavar="K", help="fuse the top K fusion candidates")
    p.add_argument("--graphs", action="store_true", help="launch each region as one CUDA graph")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(run=run)


def _chains(args, trace):
    if args.fuse:
        from skipnative.errors import TraceError
        from skipnative.io import safe_json
        from skipnative.io.atomic import read_regular

        # read as every other file is: a FIFO or /dev/zero refused, not waited on
        # or read until memory runs out; deep nesting one line, not RecursionError
        try:
            data = read_regular(args.fuse, MAX_CHAINS_BYTES)
        except TraceError as e:
            raise UserError(f"{args.fuse}: cannot read chains: {e.problem}") from None
        if data is None:
            raise UserError(f"{args.fuse}: cannot read chains: No such file or directory")
        try:
            doc = safe_json.loads(data, args.fuse, "chains")
        except TraceError as e:  # "chains: invalid JSON (...)"
            raise UserError(f"{args.fuse}: cannot read {e.problem}") from None
        items = doc.get("candidates", []) if isinstance(doc, dict) else doc
        chains = []
        for it in items if isinstance(items, list) else []:
            c = it.get("chain") if isinstance(it, dict) else it
            if not (isinstance(c, list) and len(c) >= 2 and all(isinstance(x, str) for x in c)):
                raise UserError(f"{args.fuse}: each chain is a list of at least 2 kernel names")
            chains.append(tuple(c))
        if not chains:
            raise UserError(f"{args.fuse}: no chains")
        names = set(trace.name(np.unique(trace.kernels["name_id"])))
        absent = [c for c in chains if not set(c) <= names]
        if len(absent) == len(chains):
            raise UserError(f"{args.fuse}: no chain's kernels all occur in {args.trace}")
        if absent:
            print(
                f"skip: note: {len(absent)} of {len(chains)} chains of {args.fuse} have kernels "
                f"{args.trace} does not hold; they fuse nothing",
                file=sys.stderr,
            )
        return chains
    if args.fuse_top:
        from skipnative.analysis.fusion import find_candidates

        return [c.chain for c in find_candidates(trace, top=args.fuse_top)]
    return None


def _unknown_waits(path, counts: list[tuple[int, int]]) -> dict[str, int]:
    """The cudaStreamWaitEvent calls whose awaited work the traces do not name, of
    all (whatif_waits.unknown_waits of each); said on stderr where there are any
    (the replay cannot keep them)."""
    n, m = sum(c[0] for c in counts), sum(c[1] for c in counts)
    if n:
        print(
            f"skip: note: {path}: {n} of {m} cudaStreamWaitEvent calls do not say which work "
            "they wait for (recorded by torch.profiler's experimental_config "
            "enable_cuda_sync_events=True, skipnative's stream_waits=True); the replay "
            "cannot hold back the work after them, so a change that delays the awaited "
            "work predicts it too early",
            file=sys.stderr,
        )
    return {"calls": n, "of": m}


def _changes(args) -> dict:
    return {
        "cpu_scale": args.cpu_scale,
        "graphs": args.graphs,
        "launch_add_ns": round(args.launch_add_us * 1000),
    }


def _replayed(path, fn, trace, **kw):
    """fn(trace, **kw) (predict or replay); a change the trace's times cannot hold is
    the user's error, in one line."""
    from skipnative.analysis.whatif import ReplayRangeError

    try:
        return fn(trace, **kw)
    except ReplayRangeError as e:
        raise UserError(f"{path}: {e}") from None


def run(args) -> int:
    import skipnative
    from skipnative.analysis.whatif import predict
    from skipnative.analysis.whatif_waits import unknown_waits

    if args.fuse_top is not None and args.fuse_top < 1:
        raise UsageError("--fuse-top must be >= 1")
    if os.path.isdir(args.trace):
        return run_sweep(args)
    trace = skipnative.load(args.trace)
    require_content(args.trace, trace)
    chains = _chains(args, trace)
    rows = _replayed(args.trace, predict, trace, fuse=chains, **_changes(args))
    out = {
        "trace": args.trace,
        "cpu_scale": args.cpu_scale,
        "launch_add_us": args.launch_add_us,
        "graphs": args.graphs,
        "fuse": [list(c) for c in chains or []],
        "regions": rows,
        "unknown_waits": _unknown_waits(args.trace, [unknown_waits(trace)]),
    }
    if args.json:
        print_json(out)
        return 0
    print(
        f"{args.trace}: cpu x{args.cpu_scale}"
        + (f", launch calls {args.launch_add_us:+g} us" if args.launch_add_us else "")
        + (", CUDA graphs" if args.graphs else "")
        + (f", {len(chains)} fused chain(s)" if chains else "")
    )
    t = [
        [
            r["name"],
            str(r["device"]),
            fmt_value(r["measured_il_us"]),
            fmt_value(r["predicted_il_us"]),
            f"{r['predicted_il_us'] / r['measured_il_us']:.3f}" if r["measured_il_us"] else "-",
            fmt_value(r["measured_tklqt_us"]),
            fmt_value(r["predicted_tklqt_us"]),
            f"{r['measured_bound']}->{r['predicted_bound']}",
        ]
        for r in rows
    ]
    print(
        table(t, ["region", "dev", "IL us", "predicted", "ratio", "TKLQT us", "predicted", "bound"])
    )
    return 0


_NA = "one launch per iteration"  # replayed as graphs: nothing for either to mark


def run_sweep(args) -> int:
    import skipnative
    from skipnative.analysis.sweep import run_summary, series
    from skipnative.analysis.whatif import replay
    from skipnative.analysis.whatif_waits import unknown_waits
    from skipnative.io.sweep import load_sweep

    sw = load_sweep(args.trace)
    if not sw.files:  # as skip report says it
        raise UserError(f"{args.trace}: the sweep has no points: nothing to replay")
    measured, predicted, unknown = [], [], []
    for f in sw.files:
        t = skipnative.load(f)
        chains = _chains(args, t)
        measured.append(run_summary(t))
        predicted.append(run_summary(_replayed(f, replay, t, fuse=chains, **_changes(args))))
        unknown.append(unknown_waits(t))  # the counts, not the trace: one point in memory
    out = {
        "sweep": args.trace,
        "cpu_scale": args.cpu_scale,
        "launch_add_us": args.launch_add_us,
        "graphs": args.graphs,
        "measured": series(measured, sw.values),
        "predicted": series(predicted, sw.values),
        "unknown_waits": _unknown_waits(args.trace, unknown),
    }
    if args.graphs:  # one graph launch per iteration: no launch-bound side to mark
        for k in ("queue_transition", "knee", "agree"):
            out["predicted"][k] = None
        out["not_applicable"] = f"predicted queue_transition and knee: {_NA}"
    if args.json:
        print_json(out)
        return 0
    m, p = out["measured"], out["predicted"]
    rows = [
        [
            str(b),
            fmt_value(m["il_us"][i]),
            fmt_value(p["il_us"][i]),
            fmt_value(m["tklqt_us"][i]),
            fmt_value(p["tklqt_us"][i]),
            f"{m['queued_fraction'][i]:.2f}",
            f"{p['queued_fraction'][i]:.2f}",
        ]
        for i, b in enumerate(sw.values)
    ]
    print(
        f"{args.trace}: {sw.phase} sweep on {sw.card}, predicted for cpu x{args.cpu_scale}"
        + (f", launch calls {args.launch_add_us:+g} us" if args.launch_add_us else "")
        + (", CUDA graphs" if args.graphs else "")
    )
    print(
        table(rows, ["batch", "IL us", "predicted", "TKLQT us", "predicted", "qfrac", "predicted"])
    )

    def at(batch):
        return "not reached" if batch is None else batch

    na = f"not applicable ({_NA})"  # as the report says it
    print(
        f"transition (queue): measured {at(m['queue_transition'])}, predicted "
        f"{na if args.graphs else at(p['queue_transition'])}; TKLQT knee: measured "
        f"{at(m['knee'])}, predicted {na if args.graphs else at(p['knee'])}"
    )
    return 0
