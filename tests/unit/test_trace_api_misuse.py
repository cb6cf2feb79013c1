"""The Trace API called with arguments no reading of them can mean: one clear
error naming the argument, never a number wrapped into another answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import skipnative

DATA = Path(__file__).resolve().parents[1] / "data" / "kineto"


@pytest.fixture(scope="module")
def trace():
    return skipnative.load(DATA / "v100_ns_resolution_rank0.json.gz")


def test_name_takes_ids_in_the_string_table(trace):
    n = len(trace.strings)
    assert trace.name(0) == trace.strings[0]
    assert trace.name(np.int32(n - 1)) == trace.strings[-1]
    assert trace.name(np.array([1, 0], dtype=np.uint32)) == trace.strings[1::-1]
    assert trace.name(i for i in [0]) == trace.strings[:1]
    assert trace.name([]) == []


@pytest.mark.parametrize("ids", [-1, [0, -1], np.array([-2]), "n", "n+1"])
def test_name_of_an_id_outside_the_string_table_is_refused_not_wrapped(trace, ids):
    # -1 read the last string, a name that no row has
    n = len(trace.strings)
    ids = {"n": n, "n+1": [n + 1]}.get(ids, ids) if isinstance(ids, str) else ids
    with pytest.raises(IndexError, match=r"^name\(\): id -?\d+ is not in the trace's string"):
        trace.name(ids)


@pytest.mark.parametrize("ids", [1.5, [1.0], "x", True, None])
def test_name_of_an_id_that_is_no_integer_is_refused_not_truncated(trace, ids):
    # 1.5 read string 1
    with pytest.raises(TypeError, match=r"^name\(\): "):
        trace.name(ids)
