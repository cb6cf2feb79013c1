"""Fusion candidates (SPEC.md §5) on generated traces with known answers."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

import skipnative
from kineto_gen import kernel, launch, op, write
from skipnative.analysis.fusion import find_candidates
from skipnative.trace import REGION_DTYPE


def trace_of(tmp_path, seq, *, syncs=(), stream_of=None, api=5, with_ops=False):
    """Kernels named by `seq`, launched 100 us apart; syncs before the given indices."""
    ev, t = [], 0
    for i, name in enumerate(seq):
        if i in syncs:
            ev.append(launch(t, 3, 100000 + i, name="cudaStreamSynchronize"))
            t += 10
        corr = i + 1
        if with_ops:
            ev.append(op(t - 1, api + 2, f"aten::op_{name}"))
        ev.append(launch(t, api, corr))
        ev.append(kernel(t + 20, 5, corr, name, stream=stream_of(i) if stream_of else 7))
        t += 100
    return skipnative.load(write(tmp_path / "t.json", ev))


def by_chain(cands):
    return {c.chain: c for c in cands}


def test_proximity_score_and_threshold(tmp_path):
    t = trace_of(tmp_path, list("ABXABYABZAC"))
    got = by_chain(find_candidates(t, lengths=(2,), threshold=0.5))
    assert got[("A", "B")].count == 3 and got[("A", "B")].ps == pytest.approx(3 / 4)
    assert ("A", "C") not in got  # 1/4 < 0.5
    assert ("B", "X") not in got  # 1/3 < 0.5
    strict = by_chain(find_candidates(t, lengths=(2,), threshold=1.0))
    assert ("A", "B") not in strict and ("X", "A") in strict and ("Z", "A") in strict


def test_sync_cuts_chains(tmp_path):
    t = trace_of(tmp_path, list("ABAB"), syncs={1})
    got = by_chain(find_candidates(t, lengths=(2,), threshold=0.1))
    assert got[("A", "B")].count == 1  # the first A-B is cut by the sync
    assert ("B", "A") in got


def test_overlapping_occurrences_count(tmp_path):
    t = trace_of(tmp_path, list("AAAA"))
    got = by_chain(find_candidates(t, lengths=(2, 3), threshold=0.1))
    assert got[("A", "A")].count == 3 and got[("A", "A", "A")].count == 2


def test_chains_stay_within_a_stream(tmp_path):
    # alternate streams: A on 7, B on 8 -> no A-B chain, but A-A on stream 7
    t = trace_of(tmp_path, list("ABABAB"), stream_of=lambda i: 7 + i % 2)
    got = by_chain(find_candidates(t, lengths=(2,), threshold=0.1))
    assert ("A", "B") not in got and got[("A", "A")].count == 2


def test_saving_and_ranking(tmp_path):
    t = trace_of(tmp_path, list("ABCABCAB"), api=4)
    cands = find_candidates(t, lengths=(2, 3), threshold=1.0)
    # C is always followed by A, B (PS 2/2): saving (3 - 1) * 2 * 4 = 16 beats A-B's 12
    top = cands[0]
    assert top.chain == ("C", "A", "B") and top.saving_us == pytest.approx(16)
    ab = by_chain(cands)[("A", "B")]
    assert ab.saving_us == pytest.approx((2 - 1) * 3 * 4)
    assert [c.saving_us for c in cands] == sorted((c.saving_us for c in cands), reverse=True)


def test_ops_are_attached(tmp_path):
    t = trace_of(tmp_path, list("ABAB"), with_ops=True)
    ab = by_chain(find_candidates(t, lengths=(2,)))[("A", "B")]
    assert set(ab.ops) == {"aten::op_A", "aten::op_B"}


def test_real_trace_candidates_are_consistent():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "data/kineto/sampled_rank0.json.gz"
    t = skipnative.load(path)
    cands = find_candidates(t, lengths=(2, 3), threshold=1.0)
    assert cands
    names = [t.strings[i] for i in t.kernels["name_id"]]
    from collections import Counter

    first = Counter(names)
    for c in cands:
        assert c.ps == pytest.approx(c.count / first[c.chain[0]]) and c.ps >= 1.0 - 1e-12
        assert c.count <= first[c.chain[0]]


def test_cli_json(tmp_path):
    t = trace_of(tmp_path, list("ABAB"))
    t.save(tmp_path / "t.skip")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "skipnative",
            "fusion",
            str(tmp_path / "t.skip"),
            "--json",
            "--lengths",
            "2",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["candidates"][0]) == {"chain", "count", "ps", "saving_us", "ops"}
    bad = subprocess.run(
        [sys.executable, "-m", "skipnative", "fusion", str(tmp_path / "t.skip"), "--lengths", "1"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "at least 2" in bad.stderr


def _with_regions(t, bounds, name="iter"):
    strings = [*t.strings, name]
    regions = np.zeros(len(bounds), dtype=REGION_DTYPE)
    regions["t_begin"], regions["t_end"] = zip(*bounds)
    regions["name_id"] = len(strings) - 1
    return replace(t, strings=strings, regions=regions)


def test_a_region_name_selects_every_region_of_that_name(tmp_path):
    """Two regions named "iter": a chain that only the second one holds is found."""
    t = trace_of(tmp_path, list("XYXYABAB"))
    lb = np.sort(t.launches["t_begin"])
    t = _with_regions(t, [(lb[0], lb[4]), (lb[4], lb[-1] + 1)])
    got = by_chain(find_candidates(t, lengths=(2,), threshold=1.0, region="iter"))
    assert got[("A", "B")].count == 2 and got[("X", "Y")].count == 2
    only_first = _with_regions(t, [(lb[0], lb[4])])
    assert ("A", "B") not in by_chain(find_candidates(only_first, lengths=(2,), region="iter"))
    with pytest.raises(ValueError, match="no region named 'step'"):
        find_candidates(t, region="step")


def test_hip_synchronisation_cuts_chains(tmp_path):
    """The synchronising calls come from the one call-kind table, HIP names too."""
    ev = [launch(0, 3, 1), kernel(20, 5, 1, "A"), launch(50, 3, 9, name="hipDeviceSynchronize")]
    ev += [launch(100, 3, 2), kernel(120, 5, 2, "B")]
    ev += [launch(200, 3, 3), kernel(220, 5, 3, "A"), launch(300, 3, 4), kernel(320, 5, 4, "B")]
    t = skipnative.load(write(tmp_path / "t.json", ev))
    assert by_chain(find_candidates(t, lengths=(2,), threshold=0.1))[("A", "B")].count == 1


def test_cli_json_carries_the_total_and_whether_it_was_cut(tmp_path):
    t = trace_of(tmp_path, list("ABCDEFGH"))  # 7 chains of 2, 6 of 3: all PS 1
    t.save(tmp_path / "t.skip")

    def run(*extra):
        r = subprocess.run(
            [sys.executable, "-m", "skipnative", "fusion", str(tmp_path / "t.skip"), *extra],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        return r.stdout

    cut = json.loads(run("--json", "--top", "5"))
    assert (cut["total"], cut["cut"], len(cut["candidates"])) == (13, True, 5)
    whole = json.loads(run("--json", "--top", "0"))
    assert (whole["total"], whole["cut"], len(whole["candidates"])) == (13, False, 13)
    assert whole["candidates"][:5] == cut["candidates"]
    assert "5 of 13 candidates shown" in run("--top", "5")


def _fusion_text(path, *extra):
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", "fusion", str(path), "--lengths", "2", *extra],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_a_trace_without_ops_says_so_instead_of_an_empty_column(tmp_path):
    # a native capture records no ATen op: no column left blank without a word
    t = trace_of(tmp_path, list("ABAB"))
    assert len(t.ops) == 0
    t.save(tmp_path / "t.skip")
    out = _fusion_text(tmp_path / "t.skip")
    assert "A -> B" in out and out.split()[:4] == ["chain", "count", "PS", "saving_us"]
    assert "top-level ops" not in out.splitlines()[0]  # no column, blank all the way down
    notes = [ln for ln in out.splitlines() if "no ATen op" in ln]
    assert len(notes) == 1 and "skipnative.profile()" in notes[0] and "torch.profiler" in notes[0]
    # with ops, the column stays and the note goes
    (tmp_path / "ops").mkdir()
    with_ops = trace_of(tmp_path / "ops", list("ABAB"), with_ops=True)
    with_ops.save(tmp_path / "ops.skip")
    out = _fusion_text(tmp_path / "ops.skip")
    assert "top-level ops" in out.splitlines()[0] and "aten::op_A" in out
    assert "no ATen op" not in out
