"""Plain-text helpers shared by the command line and the report; standard library
only, as `skip analyze` imports them before numpy."""

from __future__ import annotations


def short_name(name: str, width: int = 70) -> str:
    """`name`, cut to `width` characters with "…" where it is longer."""
    return name if len(name) <= width else name[: width - 1] + "…"
