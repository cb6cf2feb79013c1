"""Strings the user hands the native capture (a marker's name, an option's value):
a lone surrogate, which has no UTF-8 form, is read as the replacement characters
that every reader of the project gives it (safe_json, the Kineto reader), never
pybind11's raw TypeError; anything but a str is a one-line TypeError naming the
argument. On the CUPTI test double."""

from __future__ import annotations

import json

import pytest

import skipnative
from skipnative.io import safe_json


@pytest.fixture
def gpu():
    from skipnative.testing import simulate_cuda

    return simulate_cuda()


def _as_read_from_json(text: str) -> str:
    # json.dumps writes a lone surrogate as its \u escape; safe_json reads that back
    return safe_json.loads(json.dumps(text), "name.json", "a name")


def test_a_marker_name_with_a_lone_surrogate_is_kept_as_the_readers_read_it(gpu, tmp_path):
    with skipnative.capture() as cap:
        cap.mark("step \ud800")
        gpu.launch("k", duration_ns=1_000)
        gpu.sync()
    expected = _as_read_from_json("step \ud800")
    assert expected != "step \ud800" and expected.startswith("step ")
    t = cap.trace
    assert list(t.name(t.regions["name_id"])) == [expected]
    # a name every writer takes: a .skip file, and read back alike
    t.save(str(tmp_path / "t.skip"))
    back = skipnative.load(tmp_path / "t.skip")
    assert list(back.name(back.regions["name_id"])) == [expected]


@pytest.mark.parametrize("name", [5, None, b"step"])
def test_a_marker_name_that_is_no_str_is_one_line_naming_it(gpu, name):
    with skipnative.capture() as cap:
        with pytest.raises(TypeError) as e:
            cap.mark(name)
        gpu.launch("k", duration_ns=1_000)
        gpu.sync()
    msg = str(e.value)
    assert "\n" not in msg and "mark() name" in msg and "a str" in msg, msg
    assert len(cap.trace.regions) == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [("launch_records", "\udcff"), ("api_domains", ["runtime", "\ud800"])],
)
def test_an_option_with_a_lone_surrogate_is_a_value_error_naming_it(gpu, option, value):
    with pytest.raises(ValueError) as e:
        skipnative.capture(**{option: value})
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{option}: expected "), msg
    assert _as_read_from_json("\ud800") in msg
