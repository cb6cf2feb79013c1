"""`skip run`'s folder: claimed for one run at a time, an earlier run's work
finished or kept, its control folder made ready."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys

from skipnative.cli._common import UserError, check_out_folder
from skipnative.errors import TraceError
from skipnative.io import runfolder


def warn(message: str) -> None:
    with contextlib.suppress(OSError):
        print(f"skip: warning: {message}", file=sys.stderr, flush=True)


def _claim(out: str) -> int:
    """An exclusive lock on the run folder, held (by the returned descriptor) for
    as long as this skip run lives: two runs started at once cannot both pass
    the check for a run already writing there."""
    try:
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise UserError(f"{out}: cannot open the run folder ({e.strerror or e})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        pid = runfolder.running_pid(out)
        who = f"skip run (pid {pid})" if pid is not None else "another skip run"
        raise UserError(f"{out}: {who} is already writing into this folder") from None
    except OSError:  # no locks on this file system (some network ones): run.pid still guards
        pass
    return fd


def _recover(out: str) -> None:
    """Finishes the folder of an earlier skip run that ended before it did (killed,
    a closed terminal): its processes' dumps become files and run.json, as that
    run would have written them, rather than being removed with its control folder."""
    start = runfolder.unfinished(out)
    if start is None:
        return
    info = {
        **start,
        "exit_code": None,
        "signal": None,
        "t_end_unix_ns": None,
        "unfinished": "skip run ended before it finished this folder; a later skip run did",
    }
    run = runfolder.finish(out, info)
    warn(
        f"{out}: an earlier skip run ended before it finished this folder: its "
        f"{len(run['processes'])} process(es) and {len(run['files'])} file(s) are now in run.json"
    )


def prepare(out: str, force: bool, start: dict) -> int:
    """Makes `out` this run's folder; returns the descriptor that holds it."""
    check_out_folder(out, "--out names the run's folder")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise UserError(f"{out}: cannot create the run folder ({e.strerror or e})") from None
    fd = _claim(out)
    try:
        _replace_earlier(out, force, start)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _replace_earlier(out: str, force: bool, start: dict) -> None:
    pid = runfolder.running_pid(out)
    if pid is not None:
        raise UserError(f"{out}: skip run (pid {pid}) is already writing into this folder")
    _recover(out)
    names = set(os.listdir(out))
    ours: list[str] = []  # an earlier run's: its run.json and the files it lists
    if runfolder.RUN_JSON in names:
        try:
            earlier: dict | None = runfolder.read_run(out)
        except TraceError:
            earlier = None
        listed = (earlier or {}).get("files") or []
        # a run that wrote no file (no process initialised CUDA, or no window opened)
        # holds nothing to lose
        captured = earlier is None or bool(listed)
        if captured and not force:
            raise UserError(f"{out}: already holds a run (run.json); pass --force or another --out")
        ours = [runfolder.RUN_JSON, *(f for f in listed if isinstance(f, str) and f in names)]
    foreign = sorted(n for n in names if n.endswith(".skip") and n not in ours)
    if foreign:  # a capture no run here lists: never replaced, even with --force
        raise UserError(
            f"{out}: holds {foreign[0]}, which no run there lists; move it or use another --out"
        )
    for n in ours:
        os.unlink(os.path.join(out, n))
    control = runfolder.control_dir(out)
    shutil.rmtree(control, ignore_errors=True)
    os.makedirs(control)
    with open(os.path.join(control, runfolder.START_JSON), "w") as f:
        json.dump(start, f)
    with open(os.path.join(control, "run.pid"), "w") as f:
        f.write(f"{os.getpid()} {start['mode']}\n")
