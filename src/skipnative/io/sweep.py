"""Sweep folders: a sweep.json listing one trace file per point (`skip sweep`).

sweep.json is checked when it is loaded, so that what reads it later (the
report, `skip whatif DIR`) can take it as written: the points a list of
objects, each with a batch (an int from 1 to MAX_BATCH, each once), a file
(default b<batch>.skip: a relative name inside the folder), and the summaries
the report shows, where present, of the types `skip profile` writes them; the
sweep's card and phase text, graphs true, false or null. A point (or a sweep)
that is not is refused in one line naming sweep.json and the point.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field
from typing import Any, NoReturn

from skipnative.errors import TraceError
from skipnative.io.safe_json import loads

MAX_BATCH = 2**31 - 1  # far beyond any batch size; 10**30 is a damaged file
_SUMMARY_KEYS = ("tklqt_us", "il_us", "queued_fraction")  # what a series reads
_OP_KEYS = ("kernels", "kernel_us", "lq_us")
_FIDELITY_KEYS = ("perturbation", "floor_perturbation", "kineto_perturbation")


@dataclass
class Sweep:
    folder: str
    phase: str
    card: str
    values: list[int]
    files: list[str]
    info: dict[str, Any] = field(default_factory=dict)


def load_sweep(folder: str) -> Sweep:
    path = os.path.join(folder, "sweep.json")
    if not os.path.isdir(folder):
        why = "not a folder" if os.path.exists(folder) else "no such folder"
        raise TraceError(folder, f"{why} (a sweep folder holds sweep.json)")
    doc = _read(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("points"), list):
        raise TraceError(path, "sweep.json has no 'points' list")
    _check_top(path, doc)
    values, files = [], []
    for i, p in enumerate(doc["points"], 1):
        b = _check_point(path, i, p)
        if b in values:
            raise TraceError(path, f"point {i}: batch {b} is listed twice")
        point_file = os.path.join(folder, p.get("file", f"b{b}.skip"))
        if not os.path.exists(point_file):
            raise TraceError(point_file, "listed in sweep.json but missing")
        if not os.path.isfile(point_file):
            raise TraceError(point_file, "listed in sweep.json but not a file")
        values.append(b)
        files.append(point_file)
    return Sweep(
        folder=folder,
        phase=doc.get("phase") or "",  # text, or none recorded (checked)
        card=doc.get("card") or "",
        values=values,
        files=files,
        info=doc,
    )


def _inside(folder: str) -> str:
    """Where a sweep lies one level down (`skip demo --out DIR` writes one into
    DIR/capture): said, for a folder that is not one itself."""
    try:
        subs = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    except OSError:
        return ""
    found = [n for n in subs if os.path.isfile(os.path.join(folder, n, "sweep.json"))]
    return f" (it holds one: {os.path.join(folder, found[0])})" if found else ""


def _read(path: str) -> Any:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the open
            raise TraceError(path, "sweep.json is not a regular file")
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        folder = os.path.dirname(path)
        raise TraceError(folder, "no sweep.json: not a sweep folder" + _inside(folder)) from None
    except OSError as e:
        raise TraceError(path, f"cannot read sweep.json ({e.strerror or e})") from None
    return loads(text, path, "sweep.json")


def _number(v: Any) -> bool:
    """A finite JSON number (a bool is not one)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _check_top(path: str, doc: dict[str, Any]) -> None:
    def bad(what: str):
        raise TraceError(path, what)

    if doc.get("script") is not None and not isinstance(doc["script"], str):
        bad(f"'script' must be a path, not {_kind(doc['script'])}")
    for key in ("card", "phase"):  # printed as they are: a list would print as its repr
        if doc.get(key) is not None and not isinstance(doc[key], str):
            bad(f"{key!r} must be text, not {_kind(doc[key])}")
    graphs = doc.get("graphs")  # null in sweeps written before it was recorded
    if graphs is not None and not isinstance(graphs, bool):
        # "false" would be taken as true
        bad(f"'graphs' must be true, false or null, not {_kind(graphs)}: {graphs!r:.40}")
    seq_len = doc.get("seq_len")
    if seq_len is not None and not (_count(seq_len) and seq_len <= MAX_BATCH):
        bad(f"'seq_len' must be a whole number of tokens, not {seq_len!r:.40}")
    failed = doc.get("failed")
    if failed is not None:
        if not isinstance(failed, dict):
            bad(f"'failed' must be an object (batch, error), not {_kind(failed)}")
        if failed.get("error") is not None and not isinstance(failed["error"], str):
            bad(f"'failed' error must be text, not {_kind(failed['error'])}")
        if failed.get("batch") is not None and not _batch(failed["batch"]):
            bad(f"'failed' batch must be an integer 1..{MAX_BATCH}, not {failed['batch']!r:.40}")


def _batch(b: Any) -> bool:
    return isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= MAX_BATCH


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false"}.get(
        type(v), "null" if v is None else "a number"
    )


def _check_point(path: str, i: int, p: Any) -> int:
    """The point's batch, once every field the report reads is of its type."""
    if not isinstance(p, dict):
        raise TraceError(path, f"point {i} is {_kind(p)}, not an object")
    b = p.get("batch")
    if not isinstance(b, int) or not _batch(b):
        raise TraceError(path, f"point {i}: 'batch' must be an integer 1..{MAX_BATCH}: {b!r:.40}")

    def bad(what: str) -> NoReturn:
        raise TraceError(path, f"point {i} (batch {b}): {what}")

    if "file" in p:
        f = p["file"]
        if not isinstance(f, str) or not f:
            bad(f"'file' must be a file name, not {_kind(f)}")
        parts = f.replace("\\", "/").split("/")
        if "\0" in f or os.path.isabs(f) or ".." in parts:
            bad(f"'file' must name a file inside the sweep folder: {f!r:.80}")
    native = p.get("native")
    if native is not None:
        if not isinstance(native, dict):
            bad(f"'native' must be an object, not {_kind(native)}")
        if native.get("iterations") is not None and not _count(native["iterations"]):
            bad(f"native 'iterations' must be a count: {native['iterations']!r:.40}")
    kineto = p.get("kineto")
    if kineto is not None:
        if not isinstance(kineto, dict):
            bad(f"'kineto' must be an object, not {_kind(kineto)}")
        if kineto:  # {}: no Kineto pass
            for k in _SUMMARY_KEYS:
                if k not in kineto:
                    bad(f"kineto summary without {k!r}")
                if not _number(kineto[k]):
                    bad(f"kineto {k!r} must be a finite number: {kineto.get(k)!r:.40}")
    _check_ops(p.get("ops"), bad)
    _check_fidelity(p.get("fidelity"), bad)
    if p.get("match_rate") is not None and not _number(p["match_rate"]):
        bad(f"'match_rate' must be a number: {p['match_rate']!r:.40}")
    return b


def _check_ops(ops: Any, bad) -> None:
    if ops is None:
        return
    if not isinstance(ops, list):
        bad(f"'ops' must be a list, not {_kind(ops)}")
    for j, o in enumerate(ops, 1):
        if not isinstance(o, dict):
            bad(f"op {j} must be an object, not {_kind(o)}")
        if not isinstance(o.get("op"), str):
            bad(f"op {j}: 'op' must be a name, not {_kind(o.get('op'))}")
        for k in _OP_KEYS:
            if not _number(o.get(k)):
                bad(f"op {j} ({o['op']:.40}): {k!r} must be a finite number: {o.get(k)!r:.40}")


def _check_fidelity(fid: Any, bad) -> None:
    if fid is None:
        return
    if not isinstance(fid, dict):
        bad(f"'fidelity' must be an object, not {_kind(fid)}")
    for k in _FIDELITY_KEYS:
        if fid.get(k) is not None and not _number(fid[k]):
            bad(f"fidelity {k!r} must be a number or null: {fid[k]!r:.40}")
    reps = fid.get("reps")
    if fid.get("perturbation") is not None and not (_count(reps) and reps > 0):
        bad(f"fidelity 'reps' must be a count of runs beside its perturbation: {reps!r:.40}")
