"""Sweep folders: a sweep.json listing one trace file per point (`skip sweep`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from skipnative.errors import TraceError


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
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise TraceError(path, "no sweep.json: not a sweep folder") from None
    except (OSError, ValueError) as e:
        raise TraceError(path, f"cannot read sweep.json ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("points"), list):
        raise TraceError(path, "sweep.json has no 'points' list")
    values, files = [], []
    for p in doc["points"]:
        b = p.get("batch") if isinstance(p, dict) else None
        if not isinstance(b, int):
            raise TraceError(path, f"a point without an integer 'batch': {p!r:.80}")
        point_file = os.path.join(folder, p.get("file", f"b{b}.skip"))
        if not os.path.exists(point_file):
            raise TraceError(point_file, "listed in sweep.json but missing")
        values.append(b)
        files.append(point_file)
    return Sweep(
        folder=folder,
        phase=str(doc.get("phase", "")),
        card=str(doc.get("card", "")),
        values=values,
        files=files,
        info=doc,
    )
