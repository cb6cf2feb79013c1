"""Folders of per-rank traces (one file per rank, as torch.profiler and ``skip run``
write them) and the rank of each file.

A rank comes, in this order, from the trace itself (Kineto's
``distributedInfo.rank``, a ``skip run`` capture's process rank), from the file
name (``rank-3``, ``rank3``, ``rank_3``), and else from the order of the file
names. A ``skip run`` folder lists its files in ``run.json``; any other folder
holds every ``.json``, ``.json.gz`` and ``.skip`` file at its top level.

A run.json that says it is a ``skip run``'s ("format": "skipnative-run") is
checked as one: a version this skipnative reads and a list of distinct trace
file names in the folder, else an error. One that does not say so (another
tool's, or no JSON) leaves a folder of plain files, with a warning; one that
cannot be read at all (a FIFO, which would block the open) is an error.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any

from skipnative.errors import TraceError
from skipnative.io import safe_json
from skipnative.io.atomic import read_regular

TRACE_SUFFIXES = (".json", ".json.gz", ".skip")
# far beyond any job's process count (a 32-bit count); more is a damaged file,
# and would not fit the int64 columns ranks are kept in
MAX_RANK = 2**31 - 1
_RANK_IN_NAME = re.compile(r"rank[-_]?(\d+)", re.IGNORECASE)
_NOT_TRACES = {"run.json"}
RUN_FORMAT = "skipnative-run"
RUN_VERSION = 1
# a run.json lists a few hundred processes at most: kilobytes
MAX_RUN_JSON = 64 << 20


def is_folder(path: str | os.PathLike) -> bool:
    return os.path.isdir(os.fspath(path))


def list_traces(folder: str | os.PathLike) -> list[str]:
    """The trace files of `folder`, sorted by name (a ``skip run`` folder: the
    files its run.json lists, also one that is gone, which its reader then
    names as missing). Raises TraceError when there are none."""
    folder = os.fspath(folder)
    try:
        names = sorted(os.listdir(folder))
    except OSError as e:
        raise TraceError(folder, f"cannot list the folder: {e.strerror or e}") from None
    run_files = _run_files(folder)
    if run_files is not None:  # each listed file, there or not: a missing one is an error
        return [os.path.join(folder, n) for n in run_files]
    if os.path.isfile(os.path.join(folder, "sweep.json")):
        raise TraceError(
            folder,
            "a sweep folder (sweep.json: one trace per batch size, not per rank): "
            "`skip report` and `skip whatif` read it; analyse one of its traces on its own",
        )
    paths = [
        os.path.join(folder, n)
        for n in names
        if not n.startswith(".")
        and n not in _NOT_TRACES
        and n.endswith(TRACE_SUFFIXES)
        and os.path.isfile(os.path.join(folder, n))
    ]
    if not paths:
        raise TraceError(folder, "no trace files (.json, .json.gz, .skip) in the folder")
    return paths


def _run_files(folder: str) -> list[str] | None:
    """The files a skip run's run.json lists (None: the folder has no such
    run.json, said by a warning where it has another)."""
    path = os.path.join(folder, "run.json")
    data = read_regular(path, MAX_RUN_JSON)  # a FIFO or a folder: TraceError
    if data is None:
        return None
    fallback = "; the folder's trace files are read instead"
    try:
        run = safe_json.loads(data, path, "not a skip run's run.json")
    except TraceError as e:
        warnings.warn(f"{e}{fallback}", RuntimeWarning, stacklevel=3)
        return None
    if not isinstance(run, dict) or run.get("format") != RUN_FORMAT:
        why = f'no "format": "{RUN_FORMAT}"'
        warnings.warn(f"{path}: not a skip run's run.json ({why}){fallback}", RuntimeWarning, 3)
        return None
    problem = run_problem(run)
    if problem:
        raise TraceError(path, problem)
    if not run["files"]:
        raise TraceError(path, "lists no trace file (the run captured nothing)")
    return list(run["files"])


def run_problem(run: dict[str, Any]) -> str | None:
    """Why a skip run's run.json (its "format" checked) cannot be read as one: a
    version this skipnative does not read, "files" not a list of distinct trace
    file names in the folder (what `skip run` writes); None where it can."""
    if run.get("version") != RUN_VERSION:
        v = run.get("version")
        return f"run.json version {v!r:.40} is not supported (this skipnative reads {RUN_VERSION})"
    files = run.get("files")
    if not isinstance(files, list):
        return f"'files' must be a list of file names, not {type(files).__name__}"
    seen: set[str] = set()
    for i, f in enumerate(files):
        if not isinstance(f, str) or not f:
            return f"files[{i}] is {f!r:.40}, not a file name"
        if f != os.path.basename(f) or f in (".", "..") or "\\" in f or "\0" in f:
            return f"files[{i}] {f!r:.80} is a path, not the name of a file in the folder"
        if not f.endswith(TRACE_SUFFIXES) or f in _NOT_TRACES:
            return f"files[{i}] {f!r:.80} is not a trace file (.json, .json.gz, .skip)"
        if f in seen:
            return f"files[{i}] {f!r:.80} is listed twice"
        seen.add(f)
    return None


def _int_rank(value: Any, path: str, where: str) -> int | None:
    """value as a rank: a whole number 0..MAX_RANK, or its decimal digits; None
    for what is no rank (-1, a name); TraceError(path) for one beyond MAX_RANK."""
    digits = str(value) if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value):
        digits = value.lstrip("0") or "0"  # int() of 5000 digits is a ValueError: not yet
    if digits is None or digits.startswith("-"):
        return None
    if len(digits) > len(str(MAX_RANK)) or int(digits) > MAX_RANK:
        text = digits if len(digits) <= 24 else digits[:24] + "..."
        raise TraceError(path, f"{where} {text} is beyond the largest, {MAX_RANK}")
    return int(digits)


def rank_in_trace(meta: dict[str, Any], path: str = "") -> int | None:
    """The rank a trace records about itself (Kineto distributedInfo, skip run);
    TraceError(path) for one beyond MAX_RANK."""
    info = meta.get("distributedInfo")
    if isinstance(info, dict):
        rank = _int_rank(info.get("rank"), path, "distributedInfo.rank")
        if rank is not None:
            return rank
    run = meta.get("run")
    if isinstance(run, dict):
        rank = _int_rank(run.get("rank"), path, "the skip run rank (meta run.rank)")
        if rank is not None:
            return rank
    return _int_rank(meta.get("rank"), path, "meta rank")


def rank_in_name(path: str) -> int | None:
    """The rank in the file's name (rank-3, rank3, rank_3); TraceError for one
    beyond MAX_RANK."""
    m = _RANK_IN_NAME.search(os.path.basename(path))
    return _int_rank(m.group(1), path, "the rank in the file name") if m else None


def assign_ranks(paths: list[str], recorded: list[int | None]) -> list[int]:
    """One rank per path: the recorded one, else the file name's, else the next
    rank no other file has, in file-name order."""
    ranks: list[int | None] = [
        r if r is not None else rank_in_name(p) for p, r in zip(paths, recorded)
    ]
    taken = {r for r in ranks if r is not None}
    free = (i for i in range(len(paths) + len(taken) + 1) if i not in taken)
    return [r if r is not None else next(free) for r in ranks]


def shared_ranks(paths: list[str], ranks: list[int]) -> dict[int, list[str]]:
    """The ranks that more than one file has, with those files (in order)."""
    by_rank: dict[int, list[str]] = {}
    for p, r in zip(paths, ranks):
        by_rank.setdefault(r, []).append(p)
    return {r: ps for r, ps in sorted(by_rank.items()) if len(ps) > 1}


def shared_rank_text(rank: int, paths: list[str]) -> str:
    names = ", ".join(os.path.basename(p) for p in paths)
    return f"rank {rank} is in {len(paths)} files ({names})"
