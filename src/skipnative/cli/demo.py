"""`skip demo --out DIR`: a short sweep of the default workload and its report on a
GPU; without one, the same report from the real H100 capture bundled with skipnative."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
from pathlib import Path

from skipnative.cli._common import out_path

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "h100_llama1b_prefill"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo", help="sweep + report on a GPU; without one, the report of a bundled real capture"
    )
    p.add_argument("--out", type=out_path, required=True, help="output folder")
    p.add_argument(
        "--batch-sizes",
        default="1,4,16",
        help="on a GPU (default 1,4,16); checked on any machine",
    )
    p.add_argument("--force", action="store_true", help="replace an earlier demo's files")
    p.set_defaults(run=run)


def _clear(out: str, force: bool) -> None:
    """The folder holds no demo's files but with --force, which removes those an
    earlier demo (with a GPU or without) or a `skip report` of its capture wrote:
    the report beside the capture, the sweep in `out` and the points its sweep.json
    lists, the bundled capture's files and any report written into it. A file
    skipnative did not write is left, and the capture folder with it."""
    from skipnative.cli._common import refuse_existing
    from skipnative.cli.sweep import clear_sweep
    from skipnative.report.write import REPORT_FILES

    capture = os.path.join(out, "capture")
    mine = [os.path.join(out, f) for f in (*REPORT_FILES, "sweep.json")]
    refuse_existing([*mine, capture], force)
    clear_sweep(out, [])  # a demo with a GPU's sweep and report
    if os.path.isdir(capture) and not os.path.islink(capture):
        clear_sweep(capture, [], extra=sorted(os.listdir(BUNDLED)))
        with contextlib.suppress(OSError):  # left where it holds files of others
            os.rmdir(capture)


def run(args) -> int:
    from skipnative.cli._common import check_out_folder
    from skipnative.cli._gpu import gpu_reason
    from skipnative.cli.sweep import batch_sizes
    from skipnative.report import write_report

    # on every machine, before anything runs: without a GPU the sizes are not
    # used, but a command line is refused the same wherever it runs
    sizes = batch_sizes(args.batch_sizes)
    check_out_folder(args.out)
    why = gpu_reason()
    _clear(args.out, args.force)
    if why is None:
        from skipnative.cli import sweep as sweep_cmd

        # `skip sweep`'s own parser, so the demo gets every option's default
        sub = argparse.ArgumentParser().add_subparsers()
        sweep_cmd.add_parser(sub)
        ns = sub.choices["sweep"].parse_args(
            ["--out", args.out, "--iters", "3", "--warmup", "2", "--fidelity", "20"]
            + ["--force"] * args.force
        )
        sweep_cmd.sweep(ns, sizes)
        path = write_report(args.out)
    else:
        data = os.path.join(args.out, "capture")
        shutil.copytree(BUNDLED, data, dirs_exist_ok=True)
        note = (
            f"skipnative cannot capture here ({why}), so this report is made from the "
            "real capture bundled with skipnative: the Llama-3.2-1B-shaped decoder "
            "(random bf16 weights), prefill at sequence length 512, batch 1 to 64, on an "
            "NVIDIA H100 80GB HBM3 "
            "(`skip sweep`, one of each point's five timed iterations kept). Kineto's "
            "figures are from the same sweep's attribution pass."
        )
        path = write_report(data, args.out, source_note=note)
        print(f"cannot capture here ({why}); reporting the bundled H100 capture", file=sys.stderr)
    print(f"wrote {path}")
    return 0
