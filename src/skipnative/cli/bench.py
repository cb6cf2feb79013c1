"""`skip bench launch`: null-kernel launch microbenchmarks (needs a GPU)."""

from __future__ import annotations

from skipnative.cli._common import UserError, number, print_json


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="microbenchmarks: `skip bench launch`")
    p.add_argument("what", choices=["launch"])
    p.add_argument("--iters", type=number(int, 10, 10**8), default=2000, help="at least 10")
    p.add_argument("--graph-kernels", type=number(int, 1, 10**6), default=100)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument(
        "--no-profilers",
        action="store_true",
        help="skip the profiler-overhead runs (skipnative, torch.profiler)",
    )
    p.set_defaults(run=run)


def run(args) -> int:
    from skipnative import _native
    from skipnative.profiling.launchbench import run as run_bench
    from skipnative.profiling.launchbench import table

    ok, why, _count = _native.probe_driver()
    if not ok:
        raise UserError(f"skip bench launch needs a GPU: {why}")
    try:
        res = run_bench(
            args.iters, graph_kernels=args.graph_kernels, profilers=not args.no_profilers
        )
    except _native.BenchError as e:
        raise UserError(f"skip bench launch: {e}") from None
    if args.json:
        print_json(res)
    else:
        print(table(res))
    return 0
