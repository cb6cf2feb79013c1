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


def test_metrics_of_a_region_the_trace_has_not_is_refused_as_kernels_df_does(trace):
    # a misspelt region gave no row at all, as if the region had no work
    with pytest.raises(ValueError, match=r"^no region named 'ProfilerStep#1'; there are: all, "):
        trace.metrics(region="ProfilerStep#1")
    with pytest.raises(ValueError, match="no region named"):
        trace.metrics_frame(region="ProfilerStep#1")
    with pytest.raises(TypeError, match=r"^region: expected a str or None, not 101"):
        trace.metrics(region=101)
    assert [r.name for r in trace.metrics(region="all")] == ["all"]
    assert [r.name for r in trace.metrics(region="ProfilerStep#101")] == ["ProfilerStep#101"]


def test_metrics_top_is_a_count_not_an_index(trace):
    # top=-1 sliced [:-1]: every region's top list silently lost its last kernel
    every = trace.metrics(region="all", top=None)[0].top_kernels
    assert len(trace.metrics(region="all", top=np.int64(len(every)))[0].top_kernels) == len(every)
    with pytest.raises(ValueError, match=r"^top must be >= 0 or None \(all\), not -1$"):
        trace.metrics(top=-1)
    for top in ("3", 2.5, True):
        with pytest.raises(TypeError, match=r"^top: expected an int or None"):
            trace.metrics(top=top)
    with pytest.raises(TypeError, match=r"^device: expected an int or None, not '0'"):
        trace.metrics(device="0")


@pytest.mark.parametrize(
    ("window", "error", "said"),
    [
        ((5, 1), ValueError, "t1 must be after t0"),
        ((7, 7), ValueError, "t1 must be after t0"),
        ((0,), TypeError, "expected (t0, t1)"),
        (5, TypeError, "expected (t0, t1)"),
        (("a", "b"), TypeError, "expected (t0, t1)"),
        ((0, float("nan")), TypeError, "expected (t0, t1)"),
        ((None, 5), TypeError, "expected (t0, t1)"),
    ],
)
def test_a_window_that_is_no_span_is_refused_by_every_query(trace, window, error, said):
    # (5, 1) gave zeros for every metric, as if nothing ran; the others failed
    # deep in numpy with no word of the window
    for query in (trace.metrics, trace.kernels_df, trace.to_arrow):
        with pytest.raises(error, match=r"^window: ") as e:
            query(window=window)
        assert said in str(e.value)


def test_a_window_of_any_two_numbers_in_order_is_taken(trace):
    lo, hi = int(trace.launches["t_begin"].min()), int(trace.gpu["t_end"].max()) + 1
    whole = trace.metrics(region="all")[0].metrics["n_kernels"]
    for window in [(lo, hi), [float(lo), float(hi)], np.array([lo, hi]), (0, 2**70)]:
        assert trace.metrics(region="all", window=window)[0].metrics["n_kernels"] == whole
