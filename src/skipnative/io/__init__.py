"""Reading and writing traces: .skip files, Kineto JSON import, Perfetto export,
sweep folders, atomic file writes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from skipnative.io.sniff import detect_format

if TYPE_CHECKING:
    from skipnative.trace import Trace

__all__ = ["detect_format", "load"]


def load(path: str | os.PathLike) -> Trace:
    """Loads a .skip file or a torch.profiler chrome trace (.json or .json.gz)."""
    path = os.fspath(path)
    fmt = detect_format(path)
    if fmt == "skip":
        from skipnative.io.skipfile import load as load_skip

        return load_skip(path)
    from skipnative.io.kineto import load_kineto

    return load_kineto(path)
