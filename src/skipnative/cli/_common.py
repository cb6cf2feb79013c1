"""Helpers shared by the subcommands."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from typing import Any

LAUNCH_RECORDS = ["callbacks", "activity", "hook"]
LAUNCH_RECORDS_HELP = (
    "launch-call times from skipnative's CUPTI callbacks (default), from CUPTI's API "
    "activity records, or from hooks on the driver's launch entry points "
    "(libskipnative_hooks.so, preloaded into the captured processes)"
)
HOOK_JOIN = ["external", "order"]
HOOK_JOIN_HELP = (
    "how --launch-records hook joins launches to their GPU work: CUPTI's external "
    "correlation records, written beside API records for the hooked calls (default), or "
    "each stream's order, with no CUPTI record beyond the GPU activity"
)


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


def with_launch_hooks(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with libskipnative_hooks.so first in LD_PRELOAD, which
    launch_records="hook" needs loaded before CUDA; unchanged where it is there
    already. A one-line UserError where the library is not installed."""
    from skipnative.capturing.session import CaptureError, launch_hooks_library

    try:
        lib = launch_hooks_library()
    except CaptureError as e:
        raise UserError(f"--launch-records hook: {e}") from None
    if any(c in lib for c in ": "):
        raise UserError(f"--launch-records hook: {lib}: a path with ':' or ' ' cannot be preloaded")
    held = [x for x in env.get("LD_PRELOAD", "").replace(" ", ":").split(":") if x]
    if any(os.path.realpath(x) == os.path.realpath(lib) for x in held):
        return dict(env)
    return {**env, "LD_PRELOAD": ":".join([lib, *held])}


def print_json(obj: Any) -> None:
    """One compact JSON object on its own line on stdout (every --json output)."""
    json.dump(obj, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


def fmt_value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.1f}"
    return str(v)


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append(
            "  ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(r, widths))
            )
        )
    return "\n".join(lines)


def short_name(name: str, width: int = 70) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"
