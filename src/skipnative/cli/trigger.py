"""`skip trigger [RUN_DIR]`: open (or stop) a capture window in a `skip run --on-demand`."""

from __future__ import annotations

import time

from skipnative.cli._common import UserError
from skipnative.io import runfolder


def add_parser(sub) -> None:
    p = sub.add_parser(
        "trigger",
        help="open a capture window in every process of a skip run --on-demand",
        description=__doc__,
    )
    p.add_argument("run_dir", nargs="?", default="skip-run", help="the run's --out folder")
    p.add_argument(
        "--duration",
        type=float,
        default=2.0,
        metavar="S",
        help="window length in seconds (default 2; 0: until skip trigger --stop)",
    )
    p.add_argument("--stop", action="store_true", help="close the open window now")
    p.add_argument("--wait", action="store_true", help="return once the window has closed")
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="how long to wait for the processes to answer",
    )
    p.set_defaults(run=run)


def _mode(run_dir: str) -> str | None:
    try:
        with open(f"{runfolder.control_dir(run_dir)}/run.pid") as f:
            parts = f.read().split()
    except OSError:
        return None
    return parts[1] if len(parts) > 1 else None


def _await(run_dir: str, op: str, seq: int, timeout: float) -> tuple[list[int], list[int]]:
    deadline = time.monotonic() + timeout
    while True:
        done, waiting = runfolder.acknowledged(run_dir, op, seq)
        if not waiting or time.monotonic() > deadline:
            return done, waiting
        time.sleep(0.01)


def run(args) -> int:
    if args.duration < 0 or args.timeout < 0:
        raise UserError("--duration and --timeout must be >= 0")
    if runfolder.running_pid(args.run_dir) is None:
        raise UserError(f"{args.run_dir}: no skip run is running there")
    if _mode(args.run_dir) != "on-demand":
        raise UserError(f"{args.run_dir}: this skip run was not started with --on-demand")
    if args.wait and (args.stop or args.duration == 0):
        raise UserError("--wait needs a --duration (a window without one ends at --stop)")
    op = "stop" if args.stop else "open"
    seq = runfolder.request(args.run_dir, op, 0.0 if args.stop else args.duration)
    done, waiting = _await(args.run_dir, op, seq, args.timeout)
    if args.wait:
        time.sleep(args.duration)
        done, waiting = _await(args.run_dir, "stop", seq, args.timeout)
    if not done and not waiting:
        print(
            f"request {seq}: no process has initialised CUDA yet "
            "(each joins an open window when it does)"
        )
    elif op == "stop":
        print(f"request {seq}: the open window closed in {len(done)} process(es)")
    else:
        length = f"{args.duration:g} s" if args.duration else "until skip trigger --stop"
        what = "opened and closed" if args.wait else "opened"
        print(f"request {seq}: a window ({length}) {what} in {len(done)} process(es)")
    if waiting:
        raise UserError(
            f"{len(waiting)} process(es) did not answer within {args.timeout:g} s: "
            + ", ".join(str(p) for p in waiting)
        )
    return 0
