"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from skipnative.text import printable, short_name

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
    """A problem the user can fix; printed as one line (exit status 1)."""


class UsageError(UserError):
    """A command line refused after parsing: an option's value or a combination
    of options the parser cannot check by itself. Said as the parser says what
    it refuses: one line, the command's --help named, exit status 2."""


def check_launch_records(args) -> None:
    """Options that need a kind of launch record: --hook-join (how hook captures
    join) refused without --launch-records hook; --stream-waits refused with it."""
    if args.hook_join != "external" and args.launch_records != "hook":
        raise UsageError(f"--hook-join {args.hook_join} needs --launch-records hook")
    if getattr(args, "stream_waits", False) and args.launch_records == "hook":
        raise UsageError(
            "--stream-waits needs --launch-records callbacks or activity (a hooked event "
            "call has no CUPTI correlation id to join its wait records by)"
        )


def number(
    kind: type = float,
    lo: float | None = None,
    hi: float | None = None,
    *,
    above: bool = False,
) -> Callable[[str], Any]:
    """An argparse type: a finite `kind` (float or int) from lo to hi (either
    optional; `above`: lo itself excluded). A value outside is refused by the
    parser in one line, never taken in to fail later as an internal error."""

    def parse(text: str) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {_KIND_NAMES[kind]}") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if lo is not None and (v <= lo if above else v < lo):
            raise argparse.ArgumentTypeError(
                f"{text} is not {'above' if above else 'at least'} {lo:g}"
            )
        if hi is not None and v > hi:
            raise argparse.ArgumentTypeError(f"{text} is above the limit of {hi:g}")
        return v

    parse.__name__ = _KIND_NAMES[kind]  # argparse's "invalid <name> value" otherwise
    return parse


_KIND_NAMES = {float: "a number", int: "an integer"}


def comma_items(text: str, what: str) -> list[str]:
    """The items of a comma-separated option value, each stripped; [] for an empty
    or blank value. An empty item among others ("2,,3", ",", "2,") is refused
    (ArgumentTypeError naming `what`, the kind of item): it is a typo, not a
    wish for fewer items. Every comma-list option splits its value here."""
    if not text.strip():
        return []
    parts = [x.strip() for x in text.split(",")]
    if "" in parts:
        raise argparse.ArgumentTypeError(f"in {text!r}: an empty {what} between commas")
    return parts


def out_path(text: str) -> str:
    """An argparse type for an output path: an empty one is refused (it named the
    current folder, or a file beside it, without saying so)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return text


def out_file(*suffixes: str, stdout: bool = False) -> Callable[[str], str]:
    """An argparse type for an output file of one format: an out_path whose name
    ends in one of `suffixes` ("-", stdout, where `stdout`). A name of another
    kind is refused: skip's readers and folder listings go by the name (a .skip
    without its header, a .gz that is no gzip are refused; a folder lists only
    .json, .json.gz and .skip files), so the file written would not read back."""

    def parse(text: str) -> str:
        out_path(text)
        if (stdout and text == "-") or text.endswith(suffixes):
            return text
        raise argparse.ArgumentTypeError(
            f"{text!r}: the name must end in {' or '.join(suffixes)} (the format written)"
        )

    parse.__name__ = "OUT"
    return parse


def check_out_folder(out: str, names: str = "the output names a folder") -> None:
    """An output folder that is a file (or anything else but a folder: a link to
    nowhere), or lies below one, is refused by name, the line ending with `names`
    (os.makedirs says only "File exists" or "Not a directory")."""
    path = os.path.abspath(out)
    while path and not os.path.lexists(path):
        path = os.path.dirname(path)
    if path and not os.path.isdir(path):
        is_file = os.path.isfile(path)
        if path == os.path.abspath(out):
            what = "is a file" if is_file else "exists and is not a folder"
        else:
            what = (
                f"lies below a file ({path})"
                if is_file
                else f"lies below {path}, which is not a folder"
            )
        raise UserError(f"{out}: {what}; {names}")


def refuse_existing(paths: list[str], force: bool) -> None:
    """A command's outputs are never replaced unless asked: the first of `paths`
    that exists is refused by name, without --force."""
    if force:
        return
    for path in paths:
        if os.path.lexists(path):
            raise UserError(f"{path}: already exists (use --force to replace it)")


def require_content(path: str, trace) -> None:
    """A trace with no launch call and no GPU activity is refused by name: every
    number of it would read 0."""
    if len(trace.launches) == 0 and len(trace.gpu) == 0:
        from skipnative.errors import TraceError

        raise TraceError(
            path, "no launch call and no GPU activity in the trace: nothing to analyse"
        )


# --window ends past this many µs (about 31 years) from a trace's start are refused
_WINDOW_LIMIT_US = 1e15


def parse_window(text: str | None) -> tuple[float | None, float | None] | None:
    """--window START:END (µs from the trace's start; either end optional) ->
    (start, end), or None. The one form every command's --window takes (parsed
    by window_arg, its argparse type)."""
    if text is None:
        return None
    lo, sep, hi = text.partition(":")
    try:
        if not sep:
            raise ValueError
        out = tuple(float(x) if x.strip() else None for x in (lo, hi))
    except ValueError:
        raise UserError(f"--window: expected START:END in µs (2000:5000), got {text!r}") from None
    if any(x is not None and not abs(x) <= _WINDOW_LIMIT_US for x in out):
        raise UserError(f"--window: each end a finite number of µs below 1e15, got {text!r}")
    if out[0] is not None and out[1] is not None and out[1] <= out[0]:
        raise UserError(f"--window: END must be after START, got {text!r}")
    return out  # type: ignore[return-value]


def window_arg(text: str) -> tuple[float | None, float | None]:
    """An argparse type for --window: a malformed or empty one is refused by the
    parser (exit status 2, one line naming --window), as any bad argument is."""
    try:
        return parse_window(text)  # type: ignore[return-value]
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--window: ")) from None


window_arg.__name__ = "START:END"  # argparse's "invalid <name> value" otherwise


def window_ns(trace, window: tuple[float | None, float | None] | None) -> tuple[int, int] | None:
    """A --window in µs from the trace's first event -> [t0, t1) in the trace's ns."""
    if window is None:
        return None
    from skipnative.analysis.kernels import trace_start

    t0 = trace_start(trace)
    lo = t0 + round(window[0] * 1e3) if window[0] is not None else -(2**63)
    hi = t0 + round(window[1] * 1e3) if window[1] is not None else 2**63 - 1
    return lo, hi


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
    """One compact JSON object on its own line on stdout (every --json output); a
    number that is not one (NaN: nothing to average) is null, as JSON has no NaN."""
    json.dump(_no_nan(obj), sys.stdout, separators=(",", ":"), allow_nan=False)
    sys.stdout.write("\n")


def _no_nan(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_no_nan(v) for v in obj]
    return obj


def fmt_value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "-"  # not recorded, or nothing to average
        return unsigned_zero(f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.1f}")
    return str(v)


def fmt_ratio(r: float | None) -> str:
    """A ratio (B / A) to 3 decimals; "-" where there is none (A is 0, or a side
    does not record the metric)."""
    if r is None or math.isnan(r):
        return "-"
    return unsigned_zero(f"{r:.3f}")


def unsigned_zero(text: str) -> str:
    """A formatted number that reads as zero without its sign: "-0.000" (of -0.0,
    or of a negative number too small for the digits shown) is "0.000"."""
    return text[1:] if text[:1] in "-+" and not text.strip("-+0.,") else text


def table(rows: list[list[str]], header: list[str]) -> str:
    rows = [[printable(str(c)) for c in r] for r in rows]
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


def api_table(calls: list[dict]) -> str:
    """--api's table: per CPU call name, its count, total, median and longest call."""
    rows = [
        [
            short_name(a["name"]),
            fmt_value(a["calls"]),
            fmt_value(a["total_us"]),
            fmt_value(a["median_us"]),
            fmt_value(a["max_us"]),
            fmt_value(a["max_at_us"]),
        ]
        for a in calls
    ]
    return table(rows, ["api", "calls", "total_us", "median_us", "max_us", "max_at_us"])


def window_text(window: tuple[float | None, float | None]) -> str:
    """The line that says which --window the numbers are of."""
    lo, hi = window
    a = "start" if lo is None else fmt_value(lo)
    b = "end" if hi is None else fmt_value(hi)
    return f"window [{a}, {b}) µs from the trace's start (launches beginning inside it)"


def warn_losses(result: dict) -> None:
    """One warning line for an analysis result (skip analyze's, of one trace) whose
    capture dropped records: its numbers miss that work."""
    from skipnative.trace import loss_warning

    if result.get("dropped"):
        print(
            f"skip: warning: {result['trace']}: {loss_warning(result['dropped'])}",
            file=sys.stderr,
        )
