"""Folders of per-rank traces (one file per rank, as torch.profiler and ``skip run``
write them) and the rank of each file.

A rank comes, in this order, from the trace itself (Kineto's
``distributedInfo.rank``, a ``skip run`` capture's process rank), from the file
name (``rank-3``, ``rank3``, ``rank_3``), and else from the order of the file
names. A ``skip run`` folder lists its files in ``run.json``; any other folder
holds every ``.json``, ``.json.gz`` and ``.skip`` file at its top level.
"""

from __future__ import annotations

import os
import re
from typing import Any

from skipnative.errors import TraceError
from skipnative.io import safe_json

TRACE_SUFFIXES = (".json", ".json.gz", ".skip")
# far beyond any job's process count (a 32-bit count); more is a damaged file,
# and would not fit the int64 columns ranks are kept in
MAX_RANK = 2**31 - 1
_RANK_IN_NAME = re.compile(r"rank[-_]?(\d+)", re.IGNORECASE)
_NOT_TRACES = {"run.json"}


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
    if os.path.isfile(os.path.join(folder, "sweep.json")) and _run_files(folder) is None:
        raise TraceError(
            folder,
            "a sweep folder (sweep.json: one trace per batch size, not per rank): "
            "`skip report` and `skip whatif` read it; analyse one of its traces on its own",
        )
    run_files = _run_files(folder)
    if run_files is not None:  # each listed file, there or not: a missing one is an error
        listed = [n for n in run_files if n == os.path.basename(n) and n.endswith(TRACE_SUFFIXES)]
        if listed:
            return [os.path.join(folder, n) for n in listed]
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
    path = os.path.join(folder, "run.json")
    try:
        with open(path, "rb") as f:
            run = safe_json.loads(f.read(), path, "run.json")
    except (OSError, TraceError):  # no run folder's, or not readable as one: plain files
        return None
    if not isinstance(run, dict) or run.get("format") != "skipnative-run":
        return None
    files = run.get("files")
    return [str(f) for f in files] if isinstance(files, list) else None


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
