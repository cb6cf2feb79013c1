"""Plain-text helpers shared by the command line and the report; standard library
only, as `skip analyze` imports them before numpy."""

from __future__ import annotations


def short_name(name: str, width: int = 70) -> str:
    """`name`, cut to `width` characters with "…" where it is longer."""
    return name if len(name) <= width else name[: width - 1] + "…"


def short_repr(value: object) -> str:
    """repr(value), cut to 40 characters: a bad value named in a one-line error."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# C0 and C1 control characters (ESC among them): a terminal acts on them
_CONTROL = {c: "?" for c in (*range(0x20), *range(0x7F, 0xA0))}


def printable(text: str) -> str:
    """`text` with its control characters shown as "?": names from a trace, printed
    to a terminal, must not move the cursor, retitle the window or clear it."""
    return text.translate(_CONTROL)
