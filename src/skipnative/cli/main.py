"""`skip`: profile, analyze and compare LLM-inference traces."""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from skipnative.cli import (
    analyze,
    bench,
    compare,
    demo,
    export,
    fusion,
    info,
    kernels,
    profile,
    report,
    run,
    sweep,
    trigger,
    whatif,
)
from skipnative.cli._common import UserError

# optional dependencies, by the extra that installs them
EXTRAS = {
    "matplotlib": "report",
    "torch": "torch",
    "transformers": "torch",
    "pandas": "pandas",
    "pyarrow": "parquet",
}

COMMANDS = {
    "demo": demo,
    "info": info,
    "analyze": analyze,
    "compare": compare,
    "export": export,
    "fusion": fusion,
    "kernels": kernels,
    "whatif": whatif,
    "profile": profile,
    "sweep": sweep,
    "report": report,
    "bench": bench,
    "run": run,
    "trigger": trigger,
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="skip", description=__doc__)
    p.add_argument(
        "--traceback",
        action="store_true",
        help="on an unexpected error, print its full traceback (also SKIP_DEBUG=1); "
        "anywhere on the command line",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in COMMANDS.values():
        mod.add_parser(sub)
    return p


def _debug(argv: list[str]) -> tuple[bool, list[str]]:
    """Whether to show tracebacks (--traceback anywhere, or SKIP_DEBUG set and not
    0), and the arguments without --traceback."""
    env = os.environ.get("SKIP_DEBUG", "")
    rest = [a for a in argv if a != "--traceback"]
    return len(rest) < len(argv) or env not in ("", "0"), rest


def _internal_error(e: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exception(e, file=sys.stderr)
    print(f"skip: internal error: {type(e).__name__}: {e}", file=sys.stderr)
    return 70


def main(argv: list[str] | None = None) -> int:
    from skipnative import CaptureError, TraceError

    full = list(sys.argv[1:] if argv is None else argv)
    debug, argv = _debug(full)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.skip_argv = full  # to start the command again (skip profile --launch-records hook)
    try:
        return int(args.run(args) or 0)
    except (TraceError, CaptureError, UserError) as e:
        print(f"skip: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("skip: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except ImportError as e:
        top = (e.name or "").split(".")[0]
        if top in EXTRAS:
            print(
                f"skip: error: skip {args.command} needs {top}, which is not installed: "
                f"pip install 'skipnative[{EXTRAS[top]}]'",
                file=sys.stderr,
            )
            return 1
        if "_native" not in str(e):
            return _internal_error(e, debug)
        print(
            "skip: error: skipnative's compiled module is missing here (running from a "
            "source checkout? run outside it, or pip install -e .)",
            file=sys.stderr,
        )
        return 1
    except MemoryError:
        print("skip: error: out of memory", file=sys.stderr)
        return 1
    except OSError as e:
        print(
            f"skip: error: {e.filename or ''}: {e.strerror or e}".replace(": :", ":"),
            file=sys.stderr,
        )
        return 1
    except Exception as e:  # one line unless asked for the traceback; say what broke
        return _internal_error(e, debug)


if __name__ == "__main__":
    sys.exit(main())
