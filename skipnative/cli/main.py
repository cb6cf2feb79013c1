"""`skip`: profile, analyze and compare LLM-inference traces."""

from __future__ import annotations

import argparse
import sys

from skipnative.cli import (
    analyze,
    bench,
    compare,
    demo,
    export,
    fusion,
    info,
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
}

COMMANDS = {
    "demo": demo,
    "info": info,
    "analyze": analyze,
    "compare": compare,
    "export": export,
    "fusion": fusion,
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
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in COMMANDS.values():
        mod.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from skipnative import CaptureError, TraceError

    parser = build_parser()
    args = parser.parse_args(argv)
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
            print(f"skip: internal error: ImportError: {e}", file=sys.stderr)
            return 70
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
    except Exception as e:  # never a traceback for the user; say what broke
        print(f"skip: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
