"""Folders of per-rank traces for analyze, compare, fusion and kernels.

Each file is read and analysed in a worker process of a bounded pool (memory per
worker: one trace's columns; only the results come back). A file that cannot be
read is reported by name on stderr, the others are still analysed, and the
command exits 1 at the end.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from skipnative.errors import TraceError


def _jobs(text: str) -> int:
    import argparse

    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a count of workers, 0 or more")
    return n


def add_jobs_arg(p) -> None:
    p.add_argument(
        "--jobs",
        type=_jobs,
        default=0,
        metavar="N",
        help="for a folder of per-rank traces: worker processes (0, the default: one per"
        " usable core)",
    )


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask where the system has
    one, which a container's CPU limit narrows), else the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return os.cpu_count() or 1


def _context():
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    # fork starts a worker in milliseconds; the pool is made before any thread runs
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _load_and(path: str, work: Callable, kwargs: dict) -> tuple[str, Any]:
    """In a worker: ("ok", (recorded rank, work's result)) or ("error", message)."""
    import skipnative
    from skipnative.io.folder import rank_in_name, rank_in_trace

    try:
        trace = skipnative.load(path)
        # the name's rank read here too, so that one beyond a rank is this file's error
        recorded = rank_in_trace(trace.meta, path)
        recorded = recorded if recorded is not None else rank_in_name(path)
        return "ok", (recorded, work(path, trace, **kwargs))
    except TraceError as e:
        return "error", str(e)
    except ValueError as e:
        return "error", f"{path}: {e}"
    except MemoryError:
        return "error", f"{path}: out of memory"


class _Progress:
    """A one-line progress count on stderr, shown only on a terminal."""

    def __init__(self, total: int, what: str):
        self.total, self.done, self.what = total, 0, what
        self.on = total > 1 and sys.stderr.isatty()
        self.step()

    def step(self, n: int = 0) -> None:
        self.done += n
        if self.on:
            sys.stderr.write(f"\r{self.what}: {self.done}/{self.total} files")
            sys.stderr.flush()

    def close(self) -> None:
        if self.on:
            sys.stderr.write("\r" + " " * (len(self.what) + 24) + "\r")
            sys.stderr.flush()


def map_files(
    paths: list[str],
    work: Callable,
    kwargs: dict,
    jobs: int = 0,
    what: str = "analysing",
    warn_shared: bool = True,
) -> tuple[list[tuple[str, int, Any]], list[str]]:
    """Runs work(path, trace, **kwargs) on every file, in parallel. Returns
    ([(path, rank, result)] in rank order, [error line per bad file]); with
    `warn_shared`, a warning on stderr for each rank that several files have."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from skipnative.io.folder import assign_ranks, shared_rank_text, shared_ranks

    jobs = jobs if jobs > 0 else usable_cores()
    jobs = min(jobs, len(paths))
    progress = _Progress(len(paths), what)
    outcome: dict[str, tuple[str, Any]] = {}
    try:
        if jobs <= 1:
            for p in paths:
                outcome[p] = _load_and(p, work, kwargs)
                progress.step(1)
        else:
            # imported once here, before the fork, rather than in every worker
            import skipnative.analysis.metrics
            import skipnative.io.kineto  # noqa: F401

            with ProcessPoolExecutor(max_workers=jobs, mp_context=_context()) as pool:
                futs = {pool.submit(_load_and, p, work, kwargs): p for p in paths}
                for f in as_completed(futs):
                    outcome[futs[f]] = f.result()
                    progress.step(1)
    finally:
        progress.close()
    good = [p for p in paths if outcome[p][0] == "ok"]
    errors = [str(outcome[p][1]) for p in paths if outcome[p][0] != "ok"]
    ranks = assign_ranks(good, [outcome[p][1][0] for p in good])
    for rank, files in shared_ranks(good, ranks).items() if warn_shared else ():
        print(
            f"skip: warning: {shared_rank_text(rank, files)}: each is listed apart",
            file=sys.stderr,
        )
    rows = sorted(
        ((p, r, outcome[p][1][1]) for p, r in zip(good, ranks)), key=lambda x: (x[1], x[0])
    )
    return rows, errors


def report_errors(errors: list[str]) -> int:
    """Prints one line per bad file; the exit status the command ends with."""
    for e in errors:
        print(f"skip: error: {e}", file=sys.stderr)
    return 1 if errors else 0
