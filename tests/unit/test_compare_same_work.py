"""`skip compare` warns where the two traces plainly ran different work, and only
there: the same model at other batch sizes, with CUDA graphs, traced by
torch.profiler or with kernels fused compares without a word."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

import skipnative
from skipnative.analysis.fusion import find_candidates
from skipnative.cli.compare import MIX_OVERLAP_MIN, kernel_mix, kernel_mix_overlap
from skipnative.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = Path(skipnative.__file__).parent / "data" / "h100_llama1b_prefill"
H100 = ROOT / "bench" / "results" / "h100-2026-11-26"
KINETO = ROOT / "tests" / "data" / "kineto"
BATCHES = [1, 2, 4, 8, 16, 32, 64]


def compare(capsys, a, b, *extra) -> tuple[str, str]:
    assert main(["compare", str(a), str(b), *extra]) == 0
    out = capsys.readouterr()
    return out.out, out.err


@pytest.mark.parametrize("a", BATCHES)
def test_one_model_at_other_batch_sizes_is_the_same_work(capsys, a):
    for b in BATCHES:
        out, err = compare(capsys, BUNDLED / f"b{a}.skip", BUNDLED / f"b{b}.skip")
        assert err == "" and out.startswith("A: ")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (H100 / "sweep" / "b1.skip", H100 / "graphs" / "b16.skip"),  # CUDA graphs
        (H100 / "sweep" / "b64.skip", H100 / "sweep" / "b1_kineto.json.gz"),  # torch.profiler
        (H100 / "sweep" / "b8.skip", ROOT / "bench/results/h200-2026-11-26/sweep/b32.skip"),
    ],
)
def test_the_same_model_another_way_is_the_same_work(capsys, a, b):
    assert compare(capsys, a, b)[1] == ""
    assert compare(capsys, a, b, "--per-iteration")[1] == ""


def test_unrelated_traces_are_said_to_be_other_work(capsys):
    llama, alexnet = BUNDLED / "b1.skip", KINETO / "a100_alexnet_train.json.gz"
    out, err = compare(capsys, llama, alexnet)
    assert out.startswith("A: ")  # still compared
    assert err.count("\n") == 1 and err.startswith("skip: warning: ")
    assert str(llama) in err and str(alexnet) in err and "not run the same work" in err
    _, err = compare(capsys, llama, alexnet, "--json")
    assert "not run the same work" in err
    for a, b in itertools.combinations(sorted(KINETO.glob("a100_*.json.gz")), 2):
        assert "not run the same work" in compare(capsys, a, b)[1]


def test_the_overlap_is_of_each_sides_shares():
    one = kernel_mix(skipnative.load(BUNDLED / "b1.skip"))
    three = one + one + one  # the same work, three iterations
    assert kernel_mix_overlap(one, three) == pytest.approx(1.0)
    assert kernel_mix_overlap(one, type(one)(x=5)) == 0
    assert kernel_mix_overlap(one, type(one)()) is None
    half = type(one)({"a": 1, "b": 1})
    assert kernel_mix_overlap(half, type(one)({"a": 3})) == pytest.approx(0.5)


def test_kernels_fused_is_the_same_work():
    """Every chain `skip fusion` finds (each kernel that always follows the one
    before it) fused into one kernel of a new name: a fusion far beyond a
    hand-written one still keeps the mix above the threshold."""
    trace = skipnative.load(BUNDLED / "b1.skip")
    before = kernel_mix(trace)
    after = before.copy()
    for c in find_candidates(trace, lengths=(3, 2)):
        n = min([c.count] + [after[k] for k in c.chain])
        for k in c.chain:
            after[k] -= n
        after["+".join(c.chain)] += n
    after = +after  # names fused away entirely are gone
    fused = sum(before.values()) - sum(after.values())
    assert fused > 0.25 * sum(before.values())  # a quarter of the launches gone, at least
    assert kernel_mix_overlap(before, after) >= MIX_OVERLAP_MIN


def test_the_json_says_the_overlap(capsys):
    out, _ = compare(capsys, BUNDLED / "b1.skip", BUNDLED / "b64.skip", "--json")
    overlap = json.loads(out)["kernel_mix_overlap"]
    assert MIX_OVERLAP_MIN <= overlap <= 1
