"""A command given more arguments than it takes says so for itself, and points
to its own --help (the top-level parser's "see 'skip --help'" did not say
which command refused what)."""

from __future__ import annotations

import pytest

from skipnative.cli.main import COMMANDS, main

T = "t.json"


def refusal(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1, out.err
    return out.err.strip()


def test_analyze_of_two_traces_points_to_compare(capsys):
    err = refusal(capsys, ["analyze", T, "u.json"])
    assert err.startswith("skip: error: ") and "u.json" in err
    assert "skip analyze takes one trace" in err and "skip compare A B" in err
    assert err.endswith("(see 'skip analyze --help')")


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze", T, T],
        ["kernels", T, T],
        ["fusion", T, T],
        ["whatif", T, T],
        ["export", T, T, "--perfetto", "o.json"],
        ["compare", T, T, T],
        ["report", "dir", "dir2"],
        ["trigger", "dir", "dir2"],
        ["info", "x"],
        ["bench", "launch", "x"],
        ["demo", "--out", "d", "x"],
        ["profile", "--out", "d", "x"],
        ["sweep", "--out", "d", "x"],
    ],
)
def test_each_command_names_itself(capsys, argv):
    err = refusal(capsys, argv)
    assert err.endswith(f"(see 'skip {argv[0]} --help')"), err
    assert f"skip {argv[0]} takes " in err, err


def test_an_unknown_option_after_a_command_points_to_its_help(capsys):
    err = refusal(capsys, ["analyze", T, "--bogus"])
    assert err == "skip: error: unrecognized arguments: --bogus (see 'skip analyze --help')"


def test_an_unknown_option_before_the_command_is_the_top_levels(capsys):
    err = refusal(capsys, ["--bogus", "analyze", T])
    assert err.endswith("(see 'skip --help')") and "--bogus" in err


def test_every_command_is_covered():
    covered = {"analyze", "kernels", "fusion", "whatif", "export", "compare", "report"}
    covered |= {"trigger", "info", "bench", "demo", "profile", "sweep"}
    # `skip run -- CMD ARGS...` passes every argument after its options to CMD
    assert set(COMMANDS) - covered == {"run"}
