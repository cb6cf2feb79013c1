"""Pass alignment and attribution, on a real trace against a modified copy of itself."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import skipnative
from skipnative.analysis.alignment import align
from skipnative.analysis.attribution import attribute, kernel_ops

DATA = Path(__file__).resolve().parents[1] / "data" / "kineto"


@pytest.fixture(scope="module")
def real():
    return skipnative.load(DATA / "v100_ns_resolution_rank0.json.gz")


def test_identical_passes_match_fully(real):
    al = align(real, real, native_regions=[("all", None, None)])
    assert al.match_rate == 1.0
    k = np.flatnonzero(real.gpu["kind"] == 0)
    assert (al.native_to_kineto[k] == k).all()


def test_modified_copy_aligns_with_the_lcs_fallback(real):
    g = real.gpu.copy()
    k = np.flatnonzero(g["kind"] == 0)
    rng = np.random.default_rng(0)
    drop = rng.choice(k, size=len(k) // 50, replace=False)  # 2% of kernels missing
    renamed = rng.choice(np.setdiff1d(k, drop), size=len(k) // 100, replace=False)
    strings = [*real.strings, "renamed_kernel"]
    g["name_id"][renamed] = len(strings) - 1
    keep = np.ones(len(g), dtype=bool)
    keep[drop] = False
    other = replace(real, gpu=g[keep], strings=strings)
    al = align(real, other, native_regions=[("all", None, None)])
    expected = (len(k) - len(drop) - len(renamed)) / len(k)
    assert al.match_rate == pytest.approx(expected, abs=0.001)
    # matched pairs are the same kernel instance (same start time in this copy), except
    # where a dropped kernel had a same-named neighbour and either match is as good
    m = np.flatnonzero(al.native_to_kineto >= 0)
    same = real.gpu["t_start"][m] == other.gpu["t_start"][al.native_to_kineto[m]]
    assert same.mean() > 0.995
    names = np.asarray(other.strings, dtype=object)
    assert (
        names[real.gpu["name_id"][m]] == names[other.gpu["name_id"][al.native_to_kineto[m]]]
    ).all()


def test_attribution_gives_each_kernel_its_ops(real):
    p = attribute(real, real)
    k = np.flatnonzero(real.gpu["kind"] == 0)
    assert (p.kernel_top_op[k] != "").mean() > 0.95
    assert p.alignment.match_rate > 0.99
    assert {"aten::mm", "aten::addmm"} & set(p.kernel_op[k].tolist())
    rows = p.op_breakdown(top=5)
    assert len(rows) == 5 and rows[0]["kernel_us"] >= rows[-1]["kernel_us"]
    s = p.summary()
    assert s["kineto_over_native"]["tklqt_us"] == pytest.approx(1.0)


def test_low_match_rate_warns(real):
    g = real.gpu.copy()
    g["name_id"][: len(g) // 2] = 0  # the first half of the timed kernels are different
    with pytest.warns(RuntimeWarning, match="matched"):
        attribute(replace(real, gpu=g), real)


def test_kernel_ops_without_matches(real):
    from skipnative.analysis.alignment import Alignment

    al = Alignment(np.full(len(real.gpu), -1), 0.0)
    op, top = kernel_ops(real, real, al)
    assert (op == "").all() and (top == "").all()


def test_sequence_alignment_cases():
    from skipnative.analysis.alignment import align_sequences

    a = list("abcdefghij")
    assert align_sequences(a, a) == [(i, i) for i in range(10)]
    assert align_sequences(a, list("abcXdefghij")) == [
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 4),
        (4, 5),
        (5, 6),
        (6, 7),
        (7, 8),
        (8, 9),
        (9, 10),
    ]
    missing = align_sequences(a, list("abcefghij"))
    assert (3, 3) not in missing and (4, 3) in missing and len(missing) == 9
    sub = align_sequences(a, list("abcXefghij"))
    assert len(sub) == 9 and (4, 4) in sub


def _lcs_len(a, b):
    dp = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a)):
        for j in range(len(b)):
            dp[i + 1][j + 1] = dp[i][j] + 1 if a[i] == b[j] else max(dp[i][j + 1], dp[i + 1][j])
    return dp[-1][-1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from("abc"), max_size=30), st.lists(st.sampled_from("abc"), max_size=30))
def test_lcs_pairs_is_a_longest_common_subsequence(a, b):
    from skipnative.analysis.alignment import lcs_pairs

    pairs = lcs_pairs(a, b)
    assert pairs is not None and len(pairs) == _lcs_len(a, b)
    assert all(a[i] == b[j] for i, j in pairs)
    assert all(i1 < i2 and j1 < j2 for (i1, j1), (i2, j2) in zip(pairs, pairs[1:]))


def test_lcs_gives_up_beyond_its_edit_budget():
    from skipnative.analysis.alignment import align_sequences, lcs_pairs

    a, b = list(range(1000)), list(range(1000, 2000))
    assert lcs_pairs(a, b, max_d=100) is None
    assert align_sequences(a, b) == []
