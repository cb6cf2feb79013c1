"""Reading and writing traces: .skip files, Kineto JSON import, Perfetto export,
sweep folders, atomic file writes."""

from __future__ import annotations

import os

from skipnative.errors import TraceError
from skipnative.io.skipfile import SKIP_MAGIC
from skipnative.trace import Trace


def detect_format(path: str) -> str:
    """'skip' or 'kineto', from the file's first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except FileNotFoundError:
        raise TraceError(path, "no such file") from None
    except IsADirectoryError:
        raise TraceError(path, "is a directory, not a trace file") from None
    except PermissionError:
        raise TraceError(path, "permission denied") from None
    except OSError as e:
        raise TraceError(path, f"cannot read: {e.strerror or e}") from None
    if not head:
        raise TraceError(path, "empty file")
    if head == SKIP_MAGIC or (len(head) < len(SKIP_MAGIC) and SKIP_MAGIC.startswith(head)):
        return "skip"
    return "kineto"


def load(path: str | os.PathLike) -> Trace:
    """Loads a .skip file or a torch.profiler chrome trace (.json or .json.gz)."""
    path = os.fspath(path)
    fmt = detect_format(path)
    if fmt == "skip":
        from skipnative.io.skipfile import load as load_skip

        return load_skip(path)
    from skipnative.io.kineto import load_kineto

    return load_kineto(path)
