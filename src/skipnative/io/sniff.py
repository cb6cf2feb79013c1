"""Which reader a trace file needs, from its first bytes (no numpy: the CLI asks
before it imports the analysis)."""

from __future__ import annotations

import os
import stat

from skipnative.errors import TraceError

SKIP_MAGIC = b"SKIPNATV"
GZIP_MAGIC = b"\x1f\x8b"


_SPECIAL = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISBLK, "a block device"),
)


def refuse_special(path: str) -> None:
    """TraceError for a FIFO, socket or block device: opening a FIFO waits for a
    writer (for ever, without one), and none of them can be read twice (the
    format is sniffed, then the file read). Character devices are read as files
    (/dev/zero is invalid JSON at byte 0); other errors are left to open()."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    for test, what in _SPECIAL:
        if test(mode):
            raise TraceError(path, f"is {what}, not a trace file")


def detect_format(path: str) -> str:
    """'skip' or 'kineto', from the file's first bytes."""
    refuse_special(path)
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
