"""`skip trigger [RUN_DIR]`: open (or stop) a capture window in a `skip run --on-demand`."""

from __future__ import annotations

import time

from skipnative.cli._common import UsageError, UserError, number
from skipnative.io import runfolder

# seconds, as skip run's: int64 ns from now in the trigger file, with room to spare
_SECONDS = number(float, 0, 1e7)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "trigger",
        help="open a capture window in every process of a skip run --on-demand",
        description=__doc__,
    )
    p.add_argument("run_dir", nargs="?", default="skip-run", help="the run's --out folder")
    p.add_argument(
        "--duration",
        type=_SECONDS,
        default=2.0,
        metavar="S",
        help="window length in seconds (default 2; 0: until skip trigger --stop). A "
        "window already open is not opened again: it ends S s from now instead",
    )
    p.add_argument("--stop", action="store_true", help="close the open window now")
    p.add_argument("--wait", action="store_true", help="return once the window has closed")
    p.add_argument(
        "--timeout",
        type=_SECONDS,
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


def _states(run_dir: str) -> dict[int, dict]:
    return {pid: p["state"] for pid, p in runfolder.processes(run_dir).items()}


def _checked_states(run_dir: str) -> dict[int, dict]:
    """Each process's state, once every control file has been read: a damaged one
    is refused before any request is made, as what each process did with the
    request could not be told from it."""
    procs = runfolder.processes(run_dir)
    for p in procs.values():
        if p.get("problem"):
            raise UserError(p["problem"])
    return {pid: p["state"] for pid, p in procs.items()}


def _count(n: int) -> str:
    return f"{n} process(es)"


def _open_message(args, before: dict[int, dict], done: list[int]) -> tuple[str, list[str]]:
    """What an "open" did in each process that acted on it, by the process's
    state before the request and now: a window opened, the one already open
    given the new end, or the window over before the process read the request;
    and the processes that failed to open one."""
    length = f"{args.duration:g} s" if args.duration else "until skip trigger --stop"
    now = _states(args.run_dir)
    opened, extended, over, failed = [], [], [], []
    for pid in done:
        st, was = now.get(pid, {}), before.get(pid, {})
        if st.get("state") == "error":
            failed.append(f"pid {pid}: {st.get('error') or 'the window did not open'}")
        elif st.get("state") == "exited":
            continue
        elif int(st.get("windows", 0) or 0) > int(was.get("windows", 0) or 0):
            opened.append(pid)
        elif was.get("state") == "open":
            extended.append(pid)
        else:
            over.append(pid)
    parts = []
    if opened:
        what = "opened and closed" if args.wait else "opened"
        parts.append(f"a window ({length}) {what} in {_count(len(opened))}")
    if extended:
        end = (
            f"ends {args.duration:g} s from the request"
            if args.duration
            else "stays open until skip trigger --stop"
        )
        parts.append(f"the window already open in {_count(len(extended))} now {end}")
    if over:
        parts.append(f"the window ({length}) was over before {_count(len(over))} read it")
    if not parts:
        parts.append("no window opened")
    return "; ".join(parts), failed


def run(args) -> int:
    if args.wait and (args.stop or args.duration == 0):  # the command line first
        raise UsageError("--wait needs a --duration (a window without one ends at --stop)")
    if runfolder.running_pid(args.run_dir) is None:
        raise UserError(f"{args.run_dir}: no skip run is running there")
    if _mode(args.run_dir) != "on-demand":
        raise UserError(f"{args.run_dir}: this skip run was not started with --on-demand")
    op = "stop" if args.stop else "open"
    before = _checked_states(args.run_dir)
    seq = runfolder.request(args.run_dir, op, 0.0 if args.stop else args.duration)
    done, waiting = _await(args.run_dir, op, seq, args.timeout)
    if args.wait:
        time.sleep(args.duration)
        done, waiting = _await(args.run_dir, "stop", seq, args.timeout)
    failed: list[str] = []
    if not done and not waiting:
        print(
            f"request {seq}: no process has initialised CUDA yet "
            "(each joins an open window when it does)"
        )
    elif op == "stop":
        closed = [p for p in done if before.get(p, {}).get("state") == "open"]
        if closed:
            print(f"request {seq}: the open window closed in {_count(len(closed))}")
        else:
            print(f"request {seq}: no window was open")
    else:
        message, failed = _open_message(args, before, done)
        print(f"request {seq}: {message}")
    if waiting:
        failed.append(
            f"{len(waiting)} process(es) did not answer within {args.timeout:g} s: "
            + ", ".join(str(p) for p in waiting)
        )
    if failed:
        raise UserError("; ".join(failed))
    return 0
