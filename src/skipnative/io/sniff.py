"""Which reader a trace file needs, from its first bytes (no numpy: the CLI asks
before it imports the analysis)."""

from __future__ import annotations

from skipnative.errors import TraceError

SKIP_MAGIC = b"SKIPNATV"
GZIP_MAGIC = b"\x1f\x8b"


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
    if path.endswith(".skip"):
        # named as a capture, but no capture's header: the JSON reader's words
        # ("invalid JSON at byte 0") would not say what is wrong
        raise TraceError(path, "not a .skip file (no skipnative header)")
    if path.endswith(".gz") and not head.startswith(GZIP_MAGIC[: len(head)]):
        raise TraceError(path, "not gzip data (named .gz, no gzip header)")
    return "kineto"
