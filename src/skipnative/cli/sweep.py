"""`skip sweep`: one `skip profile` per batch size, each in its own process."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from skipnative.cli._common import (
    UsageError,
    UserError,
    check_launch_records,
    check_out_folder,
    comma_items,
    out_path,
    refuse_existing,
    with_launch_hooks,
)
from skipnative.cli.profile import add_workload_args, check_script


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="profile a batch-size sweep on the GPU")
    add_workload_args(p)
    p.add_argument("--batch-sizes", default="1,2,4,8,16,32,64")
    p.add_argument("--out", type=out_path, required=True, help="output folder")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a sweep already in the output folder (its points' files and report "
        "are removed first)",
    )
    p.set_defaults(run=run)


def batch_sizes(text: str) -> list[int]:
    try:
        b = [int(x) for x in comma_items(text, "size")]
    except argparse.ArgumentTypeError as e:
        raise UsageError(f"--batch-sizes: {e}") from None
    except ValueError:
        raise UsageError(f"--batch-sizes: expected integers like 1,2,4, got {text!r}") from None
    if not b or min(b) < 1:
        raise UsageError("--batch-sizes: at least one size, each >= 1")
    return sorted(set(b))


def _absolute(value: str) -> str:
    """A path (or FILE:FUNC) made absolute; a model name that is no local path stays."""
    path, sep, func = value.rpartition(":") if ":" in value else (value, "", "")
    return os.path.abspath(path) + sep + func if os.path.exists(path) else value


def _point_files(b: int | str) -> list[str]:
    """What `skip profile` writes for one point (its default name, b<batch>)."""
    return [f"b{b}.skip", f"b{b}.json", f"b{b}_kineto.json.gz"]


def _clear(out: str, sizes: list[int], force: bool) -> None:
    """The folder holds no sweep's files but with --force, which removes those of
    the sweep there (every point its sweep.json lists, and the report), so that
    none of an earlier sweep is left beside the new one's."""
    from skipnative.report.write import REPORT_FILES

    mine = ["sweep.json", *(f for b in sizes for f in _point_files(b)), *REPORT_FILES]
    refuse_existing([os.path.join(out, f) for f in mine], force)
    clear_sweep(out, sizes)


def clear_sweep(out: str, sizes: list[int], extra: list[str] | None = None) -> None:
    """Removes from `out` the files a sweep of `sizes` writes, those of the sweep
    there (each point its sweep.json lists), its report, and the names in `extra`:
    each only where it is a file (never a link, a folder, or a name skipnative
    does not write)."""
    from skipnative.report.write import REPORT_FILES

    mine = ["sweep.json", *(f for b in sizes for f in _point_files(b)), *REPORT_FILES]
    old: list[str] = []
    try:
        with open(os.path.join(out, "sweep.json")) as f:
            points = json.load(f).get("points") or []
        old = [f for p in points if isinstance(p, dict) for f in _point_files(p.get("batch"))]
    except (OSError, ValueError, AttributeError):
        pass  # no sweep there, or not one to read: only the names this sweep writes
    for name in {*mine, *old, *(extra or [])}:
        if os.path.basename(name) != name or name in (".", ".."):
            continue  # a sweep.json's batch is a name in `out`, never a path out of it
        path = os.path.join(out, name)
        if os.path.isfile(path) and not os.path.islink(path):
            os.remove(path)


def sweep(args, sizes: list[int], env: dict[str, str] | None = None) -> dict:
    """The points, each a `skip profile` process run with `env` (None: this one's)."""
    out = os.path.abspath(args.out)
    _clear(out, sizes, getattr(args, "force", False))
    os.makedirs(out, exist_ok=True)
    points: list[dict] = []
    doc: dict = {}
    t_start = time.time()
    tty = sys.stderr.isatty()  # one line redrawn on a terminal, a line a point in a log
    for k, b in enumerate(sizes):
        bar = "#" * k + "." * (len(sizes) - k)
        line = f"[{bar}] batch {b} ({k + 1}/{len(sizes)}, {time.time() - t_start:.0f} s)"
        print("\r" + line if tty else line, end="" if tty else "\n", file=sys.stderr, flush=True)
        cmd = [
            sys.executable,
            "-m",
            "skipnative",
            "profile",
            "--batch",
            str(b),
            "--out",
            out,
            "--phase",
            args.phase,
            "--seq-len",
            str(args.seq_len),
            "--iters",
            str(args.iters),
            "--warmup",
            str(args.warmup),
        ]
        for flag, value in (("--model", args.model), ("--script", args.script)):
            if value:
                cmd += [flag, _absolute(value)]
        if args.no_attribution:
            cmd.append("--no-attribution")
        if args.graphs:
            cmd.append("--graphs")
        cmd += ["--launch-records", args.launch_records, "--hook-join", args.hook_join]
        cmd += ["--fidelity", str(args.fidelity)]
        if args.no_latency_timestamps:
            cmd.append("--no-latency-timestamps")
        # run in the output folder: from a source checkout, the current folder would
        # shadow the installed package (which has the compiled module)
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=out, env=env)
        if r.returncode != 0:
            if tty:
                print(file=sys.stderr)
            last = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
            last = last.removeprefix("skip: error: ")
            _write(out, args, points, failed={"batch": b, "error": last})
            n = len(points)
            kept = f"sweep.json holds the {n} point{'s' * (n != 1)} before it" if n else ""
            raise UserError(f"batch {b} failed: {last}" + (f" ({kept})" if kept else ""))
        for note in _hook_notes(r.stderr):  # the point could not use the hooks: say so
            print(f"{chr(10) if tty else ''}skip: note: batch {b}: {note}", file=sys.stderr)
        with open(os.path.join(out, f"b{b}.json")) as f:
            points.append(json.load(f))
        # after every point, so an interrupted sweep leaves what it measured
        doc = _write(out, args, points)
    n = len(sizes)
    done = f"[{'#' * n}] {n} point{'s' * (n != 1)} in {time.time() - t_start:.0f} s"
    print("\r" + done if tty else done, file=sys.stderr)
    return doc


def _hook_notes(stderr: str) -> list[str]:
    """The launch hooks' warnings a point printed (fell back to callbacks, saw no
    launch), once each."""
    notes = []
    for line in stderr.splitlines():
        # `skip profile` prints a warning as one line; Python's own form also counts
        _, sep, msg = line.partition("skip: warning: ")
        if not sep:
            _, sep, msg = line.partition("RuntimeWarning: ")
        if sep and ("launch_records='hook'" in msg or "launch hooks" in msg) and msg not in notes:
            notes.append(msg.strip())
    return notes


def _write(out: str, args, points: list[dict], failed: dict | None = None) -> dict:
    from skipnative.analysis.sweep import series
    from skipnative.io.atomic import atomic_output

    sizes = [p["batch"] for p in points]
    doc = {
        "card": _card(points),
        "phase": args.phase,
        "seq_len": args.seq_len,
        "script": _absolute(args.script) if args.script else None,
        "graphs": args.graphs,
        "points": points,
    }
    if points:
        doc["native"] = series([p["native"] for p in points], sizes)
        if all(p.get("kineto") for p in points):
            doc["kineto"] = series([p["kineto"] for p in points], sizes)
    if failed:
        doc["failed"] = failed
    with atomic_output(os.path.join(out, "sweep.json"), overwrite=True) as f:
        f.write(json.dumps(doc, indent=1).encode())
    return doc


def _card(points: list[dict]) -> str:
    """The card the points ran on, as their captures recorded it; else asked here
    (which would start CUDA in this process, so only where no capture said)."""
    for p in points:
        if p.get("device"):
            return str(p["device"])
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name()
    except ImportError:
        pass
    from skipnative import _native
    from skipnative.capturing.loader import wheel_cupti_dirs

    info = _native.load_cupti(wheel_cupti_dirs())
    return "simulated GPU (CUPTI test double)" if info.get("test_double") else "unknown"


def run(args) -> int:
    from skipnative.cli._gpu import require_gpu

    sizes = batch_sizes(args.batch_sizes)
    check_launch_records(args)
    check_out_folder(args.out)
    if args.script:  # before any point starts (and leaves a sweep.json behind)
        check_script(args.script)
    # each point is a `skip profile` process: with the hooks preloaded from its start
    env = with_launch_hooks(os.environ) if args.launch_records == "hook" else None
    require_gpu("sweep")
    doc = sweep(args, sizes, env)
    print(f"{args.out}: {transitions_text(doc['native'])}")
    return 0


def transitions_text(n: dict) -> str:
    """The sweep's two transition points, said of what was found: a knee needs two
    batch sizes, and two points that were not reached do not disagree."""
    trans = "not reached" if n["queue_transition"] is None else f"batch {n['queue_transition']}"
    if len(n["values"]) < 2:
        knee = "not found (it needs two or more batch sizes)"
    else:
        knee = "not reached" if n["knee"] is None else f"batch {n['knee']}"
    found = None not in (n["knee"], n["queue_transition"])
    return f"queue transition at {trans}, TKLQT knee at {knee}" + (
        " (they disagree)" if found and not n["agree"] else ""
    )
