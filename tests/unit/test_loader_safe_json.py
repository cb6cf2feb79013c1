"""skipnative.io.safe_json.loads: untrusted JSON refused in one line naming the file."""

from __future__ import annotations

import pytest

from skipnative import TraceError
from skipnative.io.safe_json import MAX_DEPTH, loads


def refused(text, what="header"):
    with pytest.raises(TraceError) as e:
        loads(text, "/some/file.json", what)
    msg = str(e.value)
    assert msg.startswith("/some/file.json: " + what + ": "), msg
    assert "\n" not in msg
    return msg


def test_valid_json_passes_through():
    assert loads('{"a": [1, 2.5, "x", null]}', "p", "w") == {"a": [1, 2.5, "x", None]}
    assert loads(b"[1]", "p", "w") == [1]
    assert loads(memoryview(b'"s"'), "p", "w") == "s"


@pytest.mark.parametrize("n", [10_000, 200_000])
def test_deep_nesting_is_refused_not_a_recursion_error(n):
    assert "nested" in refused("[" * n + "]" * n)
    assert "nested" in refused('{"a":' * n + "1" + "}" * n)


def test_nesting_deeper_than_the_cap_but_parseable_is_refused():
    # parses without RecursionError, yet would exhaust the stack of code walking it
    n = MAX_DEPTH + 1
    assert "nested" in refused("[" * n + "]" * n)
    ok = MAX_DEPTH
    assert loads("[" * ok + "]" * ok, "p", "w") is not None


@pytest.mark.parametrize("text", ["", "{", "nul", "[1,]", b"\xff\xfe\x00", b'"\xc3"', "1" * 5000])
def test_malformed_text_is_refused(text):
    refused(text, "strings")


@pytest.mark.parametrize(
    ("text", "where", "literal"),
    [
        ('{"meta": {"dropped": {"gpu_rows": Infinity}}}', "meta.dropped.gpu_rows", "Infinity"),
        ('{"points": [{"il_us": 1}, {"il_us": NaN}]}', "points[1].il_us", "NaN"),
        ('{"a": [-Infinity]}', "a[0]", "-Infinity"),
        ('{"memory bandwidth (GB/s)": 1e999}', "'memory bandwidth (GB/s)'", "Infinity"),
        ("NaN", "the document", "NaN"),
    ],
)
def test_nan_and_infinity_are_refused_naming_where(text, where, literal):
    # json.loads takes them (and reads 1e999 as inf); JSON has no such number
    msg = refused(text)
    assert f"{where} is {literal}" in msg, msg


def test_finite_floats_pass_through():
    assert loads('{"a": [1e308, -2.5e-300, 0.0]}', "p", "w") == {"a": [1e308, -2.5e-300, 0.0]}


@pytest.mark.parametrize("as_bytes", [False, True])
def test_lone_surrogates_become_replacement_characters(as_bytes):
    text = r'{"a\ud800": ["\udc00", {"b": "\\ud800"}], "pair": "\ud83d\ude00", "n": [1]}'
    value = loads(text.encode() if as_bytes else text, "p", "x")
    bad = "\ufffd" * 3  # the Kineto reader's reading of the same escape in an event name
    assert value == {"a" + bad: [bad, {"b": "\\ud800"}], "pair": "\U0001f600", "n": [1]}
    assert loads(r'"\udbff"', "p", "x") == bad
