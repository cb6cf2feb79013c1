"""`skip`: profile, analyze and compare LLM-inference traces."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
import warnings
from typing import NoReturn

import skipnative
from skipnative.cli._common import UsageError, UserError
from skipnative.errors import OutputExistsError, TraceError

# optional dependencies, by the extra that installs them
EXTRAS = {
    "matplotlib": "report",
    "torch": "torch",
    "transformers": "torch",
    "pandas": "pandas",
    "pyarrow": "parquet",
}

# the subcommands, in --help's order; each is the module skipnative.cli.<name>
COMMANDS = (
    "demo",
    "info",
    "analyze",
    "compare",
    "export",
    "fusion",
    "kernels",
    "whatif",
    "profile",
    "sweep",
    "report",
    "bench",
    "run",
    "trigger",
)


class _Parser(argparse.ArgumentParser):
    """A command line the parser refuses is one line and exit status 2 (argparse
    prints the whole usage first); subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        if "expected one argument" in message:
            message += " (a value that begins with '-' is written --OPTION=VALUE)"
        self.exit(2, f"skip: error: {message} (see '{self.prog} --help')\n")


# what each command takes beside its options, said where it is given more
_ONE_TRACE = "one trace, or one folder of per-rank traces (a `skip run` folder)"
TAKES = {
    "analyze": f"{_ONE_TRACE}; to compare two, use 'skip compare A B'",
    "kernels": _ONE_TRACE,
    "fusion": _ONE_TRACE,
    "whatif": "one trace or one sweep folder",
    "export": "one trace",
    "compare": "two traces, or two folders of per-rank traces",
    "report": "one sweep folder",
    "trigger": "at most one run folder",
    "bench": "one benchmark (launch)",
}


class _CommandParser(_Parser):
    """A subcommand's parser: arguments it does not take are refused here, by the
    command itself (argparse leaves them to the top-level parser, whose message
    names neither the command nor what it takes)."""

    def parse_known_args(self, args=None, namespace=None):
        ns, extra = super().parse_known_args(args, namespace)
        if extra:
            message = f"unrecognized arguments: {' '.join(extra)}"
            if any(not a.startswith("-") for a in extra):
                command = self.prog.split()[-1]
                message += f"; {self.prog} takes {TAKES.get(command, 'only options')}"
            self.error(message)
        return ns, extra


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand; where `argv` names one, of that one alone,
    so that a command imports only its own module (`skip analyze` does not pay
    for torch-side or plotting imports)."""
    p = _Parser(prog="skip", description=__doc__)
    p.add_argument(
        "--traceback",
        action="store_true",
        help="on an unexpected error, print its full traceback (also SKIP_DEBUG=1); "
        "anywhere on the command line",
    )
    p.add_argument("--version", action="version", version=f"skip {skipnative.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    sub.required = True
    before = []  # the top-level options before the subcommand's name
    for a in argv or []:
        if not a.startswith("-"):
            break
        before.append(a)
    first = (argv or [])[len(before) :][:1]
    asks_help = {"-h", "--help"} & set(before)
    names = first if first and first[0] in COMMANDS and not asks_help else COMMANDS
    if "--version" in before and not asks_help:
        names = ()  # it prints and exits before any command is looked at
    for name in names:
        importlib.import_module(f"skipnative.cli.{name}").add_parser(sub)
    return p


def _user_errors() -> tuple[type[BaseException], ...]:
    """The errors printed as one line; a capture's only where capturing ran."""
    session = sys.modules.get("skipnative.capturing.session")
    capture = (session.CaptureError,) if session is not None else ()
    return (TraceError, UserError, *capture)


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


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning the library gives (a capture that dropped records, say) as the
    command's own one line, not Python's two with a source line."""
    print(f"skip: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    full = list(sys.argv[1:] if argv is None else argv)
    debug, argv = _debug(full)
    if not debug:
        warnings.showwarning = _one_line_warning
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    args.skip_argv = full  # to start the command again (skip profile --launch-records hook)
    try:
        return int(args.run(args) or 0)
    except OutputExistsError as e:  # said as the command line replaces it, not the API
        how = " (use --force to replace it)" if hasattr(args, "force") else ""
        print(f"skip: error: {e.path}: already exists{how}", file=sys.stderr)
        return 1
    except UsageError as e:  # as the parser refuses a command line
        print(f"skip: error: {e} (see 'skip {args.command} --help')", file=sys.stderr)
        return 2
    except _user_errors() as e:
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
