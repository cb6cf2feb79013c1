"""`skip profile`: one configuration, timing pass + attribution pass, to --out."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys

from skipnative.cli._common import (
    HOOK_JOIN,
    HOOK_JOIN_HELP,
    LAUNCH_RECORDS,
    LAUNCH_RECORDS_HELP,
    UsageError,
    UserError,
    check_launch_records,
    check_out_folder,
    number,
    out_path,
    refuse_existing,
    with_launch_hooks,
)


def add_workload_args(p) -> None:
    p.add_argument(
        "--model",
        metavar="PATH",
        help="a local Hugging Face checkpoint folder "
        "(offline); default: Llama-3.2-1B's shape with random weights",
    )
    p.add_argument(
        "--script",
        metavar="FILE:FUNC",
        help="profile a workload of your own: FUNC in FILE builds it and returns the "
        "callable that runs one iteration; it is given those of the keyword arguments "
        "batch, seq_len and phase that it names",
    )
    p.add_argument("--phase", choices=["prefill", "decode"], default="prefill")
    p.add_argument(
        "--seq-len", type=number(int, 1, 10**7), default=512, help="prompt / context length"
    )
    p.add_argument("--iters", type=number(int, 1, 10**6), default=5, help="timed iterations")
    p.add_argument("--warmup", type=number(int, 0, 10**6), default=3)
    p.add_argument(
        "--graphs", action="store_true", help="run each iteration as one CUDA graph (captured once)"
    )
    p.add_argument(
        "--no-attribution",
        action="store_true",
        help="skip the torch.profiler pass (no ATen ops, no Kineto comparison)",
    )
    p.add_argument(
        "--launch-records",
        choices=LAUNCH_RECORDS,
        default="callbacks",
        help=LAUNCH_RECORDS_HELP,
    )
    p.add_argument("--hook-join", choices=HOOK_JOIN, default="external", help=HOOK_JOIN_HELP)
    p.add_argument(
        "--fidelity",
        type=number(int, 0, 10**6),
        default=0,
        metavar="N",
        help="also measure the timing pass's perturbation of the workload (SPEC.md "
        "section 6: CUDA-event IL over N runs unprofiled and N under a capture; "
        "N >= 20 as SPEC asks)",
    )
    p.add_argument(
        "--no-latency-timestamps",
        action="store_true",
        help="leave out CUPTI's queued/submitted kernel timestamps (TKLQT's "
        "submit/queue split) for a lighter timing pass",
    )


def add_parser(sub) -> None:
    p = sub.add_parser("profile", help="profile one configuration on the GPU")
    add_workload_args(p)
    p.add_argument("--batch", type=number(int, 1, 10**6), default=1)
    p.add_argument("--out", type=out_path, required=True, help="output folder")
    p.add_argument("--name", help="file name stem (default b<batch>)")
    p.add_argument("--force", action="store_true", help="replace the files of an earlier run")
    p.set_defaults(run=run)


def check_script(spec: str, *, names: bool = True) -> tuple[str, str]:
    """(FILE, FUNC) of a --script value, the file there (and, with `names`, FUNC
    among the names it binds); nothing of it runs."""
    path, _, func = spec.rpartition(":")
    if not path or not func:
        raise UsageError(f"--script: expected FILE:FUNC, got {spec!r}")
    if not os.path.isfile(path):
        raise UserError(f"--script: {path}: no such file")
    bound = _top_level_names(path) if names else None
    if bound is not None and func not in bound:
        raise UserError(f"--script: {path} has no function {func!r}")
    return path, func


def _top_level_names(path: str) -> set[str] | None:
    """The names a module binds at its top level, read (not run); None where that
    cannot be told (it does not parse, or imports *)."""
    import ast

    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                if a.name == "*":
                    return None
                names.add((a.asname or a.name).split(".")[0])
    return names


def load_script(spec: str):
    path, func = check_script(spec, names=False)  # running it says more than reading it
    s = importlib.util.spec_from_file_location("skip_user_workload", path)
    mod = importlib.util.module_from_spec(s)
    try:
        s.loader.exec_module(mod)  # the user's own workload code, by request
    except Exception as e:  # its own failure, said of it (a traceback is --traceback's)
        first = (str(e).strip().splitlines() or [""])[0]
        raise UserError(
            f"--script: {path}: importing it failed: {type(e).__name__}: {first}"
        ) from e
    f = getattr(mod, func, None)
    if not callable(f):
        raise UserError(f"--script: {path} has no function {func!r}")
    return f


def call_with(f, **available):
    """f(...) with those of `available` that f names (all of them if it takes **kw)."""
    try:
        params = inspect.signature(f).parameters
    except (TypeError, ValueError):  # no signature to read (a builtin): call it bare
        return f()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return f(**available)
    return f(**{k: v for k, v in available.items() if k in params})


def build_workload(args, batch: int):
    if args.script:
        step = call_with(
            load_script(args.script), batch=batch, seq_len=args.seq_len, phase=args.phase
        )
        if not callable(step):
            raise UserError(f"--script: {args.script}() must return a callable")
        if args.graphs:
            from skipnative.profiling.workloads import as_cuda_graph

            return as_cuda_graph(step)
        return step
    from skipnative.profiling import workloads as wl

    model = wl.build_decoder(model_path=args.model)
    if args.phase == "prefill":
        step = wl.prefill(model, batch, args.seq_len)
    else:
        step = wl.decode(model, batch, args.seq_len)
    return wl.as_cuda_graph(step) if args.graphs else step


def _preload_hooks(args) -> None:
    """--launch-records hook: the hooks must be loaded before CUDA, so where this
    process was started without them it is started again (same pid, same
    arguments and interpreter options) with them in LD_PRELOAD, before anything
    here loads CUDA."""
    env = with_launch_hooks(os.environ)
    if env.get("LD_PRELOAD") == os.environ.get("LD_PRELOAD"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    skip_argv = getattr(args, "skip_argv", sys.argv[1:])
    os.execve(
        sys.executable,
        [sys.executable, *interpreter_options(sys.orig_argv), "-m", "skipnative", *skip_argv],
        env,
    )


# Python's short options that take a value (in the same argument or the next).
_VALUE_OPTIONS = "XW"


def interpreter_options(orig_argv: list[str]) -> list[str]:
    """The interpreter's own options in `orig_argv` (sys.orig_argv: -X dev, -W
    error, -O, ...), those before what it runs (-m MODULE, -c CODE, a script)."""
    out: list[str] = []
    rest = orig_argv[1:]
    i = 0
    while i < len(rest):
        a = rest[i]
        if a in ("-", "--") or not a.startswith("-"):
            break
        if a.startswith("--"):  # --check-hash-based-pycs MODE, the one that takes one
            takes = a == "--check-hash-based-pycs"
            out += rest[i : i + 1 + takes]
            i += 1 + takes
            continue
        for j, c in enumerate(a[1:], 1):
            if c in "cm":  # what runs starts here: keep the flags before it
                if j > 1:
                    out.append(a[:j])
                return out
            if c in _VALUE_OPTIONS:
                takes = j == len(a) - 1
                out += rest[i : i + 1 + takes]
                i += takes
                break
        else:
            out.append(a)
        i += 1
    return out


def run(args) -> int:
    from skipnative.cli._gpu import require_gpu

    check_launch_records(args)
    check_out_folder(args.out)
    if args.launch_records == "hook":
        _preload_hooks(args)
    require_gpu("profile")
    from skipnative import CaptureError
    from skipnative.profiling import profile

    name = args.name or f"b{args.batch}"
    # before the workload runs (minutes): what it would write must not exist
    refuse_existing(
        [os.path.join(args.out, name + x) for x in (".skip", ".json", "_kineto.json.gz")],
        args.force,
    )
    os.makedirs(args.out, exist_ok=True)
    try:
        step = build_workload(args, args.batch)
        prof = profile(
            step,
            warmup=args.warmup,
            iters=args.iters,
            attribution=not args.no_attribution,
            launch_records=args.launch_records,
            hook_join=args.hook_join,
            latency_timestamps=not args.no_latency_timestamps,
            fidelity_reps=args.fidelity,
        )
    except (UserError, CaptureError):
        raise
    except Exception as e:  # the workload's own failure (out of memory, a bug in it)
        first = (str(e).strip().splitlines() or [""])[0]
        what = f"the workload ({os.path.basename(args.script)})" if args.script else "the workload"
        raise UserError(f"{what} failed at batch {args.batch}: {type(e).__name__}: {first}") from e
    prof.native.save(os.path.join(args.out, f"{name}.skip"), overwrite=True)
    if prof.kineto is not None:
        from skipnative.io.perfetto import export_perfetto

        export_perfetto(
            prof.kineto, os.path.join(args.out, f"{name}_kineto.json.gz"), overwrite=True
        )
    summary = prof.summary()
    out = {
        "batch": args.batch,
        "graphs": args.graphs,
        "file": f"{name}.skip",
        "phase": args.phase,
        "seq_len": args.seq_len,
        "device": next((d.get("name") for d in prof.native.meta.get("devices") or []), None),
        "native": summary["native"],
        "kineto": summary.get("kineto"),
        "match_rate": summary.get("match_rate"),
        "ops": prof.op_breakdown(),
        "dropped": prof.native.meta.get("dropped"),
        "fidelity": summary.get("fidelity"),
    }
    with open(os.path.join(args.out, f"{name}.json"), "w") as f:
        json.dump(out, f, indent=1)
    n = summary["native"]
    print(
        f"{name}: TKLQT {n['tklqt_us']:,.1f} us, IL {n['il_us']:,.1f} us, "
        f"{n['bound']}-bound (queued {n['queued_fraction']:.2f})"
        + (
            f"; Kineto TKLQT {summary['kineto']['tklqt_us']:,.1f} us, "
            f"match {summary['match_rate']:.1%}"
            if "kineto" in summary
            else ""
        )
        + (
            f"; timing-pass perturbation {prof.fidelity['perturbation']:+.1%} "
            f"over {prof.fidelity['reps']} runs"
            if prof.fidelity and prof.fidelity["perturbation"] is not None
            else ""
        ),
        file=sys.stderr,
    )
    return 0
