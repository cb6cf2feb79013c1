"""What the H100 sweep (`skip sweep`, bench/results/h100-2026-11-26/) holds, and
the claims the READMEs make from it, recomputed from the captures.

Each point's capture: one untimed iteration, then five timed ones (regions),
each ended by a synchronisation; a Kineto trace of one profiled step beside it.
`graphs/` is the same workload captured once as a CUDA graph and replayed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import skipnative
from skipnative.analysis.attribution import attribute
from skipnative.analysis.kernels import in_regions, join_kernels
from skipnative.analysis.metrics import top_kernels
from skipnative.analysis.whatif import replay
from skipnative.report import sweep_data
from skipnative.trace import KIND_GRAPH, KIND_KERNEL

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results" / "h100-2026-11-26"
SWEEP, GRAPHS = RESULTS / "sweep", RESULTS / "graphs"
BATCHES = [1, 2, 4, 8, 16, 32, 64]


@pytest.mark.parametrize("batch", BATCHES)
def test_the_untimed_iteration_is_outside_the_regions_and_takes_the_first_launch(batch):
    t = skipnative.load(SWEEP / f"b{batch}.skip")
    kt = join_kernels(t)
    timed = in_regions(t, kt)
    per_iter = int(timed.sum()) // len(t.regions)
    assert len(t.regions) == 5 and timed.sum() == 5 * per_iter
    assert (~timed).sum() == per_iter  # exactly one more iteration, before the timed ones
    assert kt.anchor[~timed].max() < t.regions["t_begin"].min()
    ln = t.launches
    kernel = ln["kind"] == KIND_KERNEL
    d = ln["t_end"] - ln["t_begin"]
    first = np.argmin(ln["t_begin"])
    # the session's first launch (CUPTI's setup) is the longest kernel launch call
    assert kernel[first] and d[first] == d[kernel].max()
    assert d[first] > 2 * np.percentile(d[kernel & (ln["t_begin"] >= t.regions["t_begin"][0])], 99)


def test_op_breakdown_is_per_timed_iteration_and_fully_attributed():
    native = skipnative.load(SWEEP / "b1.skip")
    p = attribute(native, skipnative.load(SWEEP / "b1_kineto.json.gz"))
    assert p.alignment.match_rate == 1.0
    rows = p.op_breakdown(top=100)
    assert "(no ATen op)" not in {r["op"] for r in rows}  # the untimed iteration is left out
    kt = join_kernels(native)
    per_iter = in_regions(native, kt).sum() / len(native.regions)
    assert sum(r["kernels"] for r in rows) == per_iter
    by_op = {r["op"]: r for r in rows}
    # 16 layers of q, k, v, o, gate, up, down projections and the LM head
    assert by_op["aten::linear"]["kernels"] == 16 * 7 + 1
    busy = (kt.t_end - kt.t_start)[in_regions(native, kt)].sum() / 1e3 / len(native.regions)
    assert sum(r["kernel_us"] for r in rows) == pytest.approx(busy)


def test_report_tables_are_per_timed_iteration():
    pytest.importorskip("matplotlib")
    data = sweep_data(str(SWEEP))
    t = skipnative.load(SWEEP / "b1.skip")
    kt = join_kernels(t)
    timed = in_regions(t, kt)
    every = top_kernels(t, kt, timed, None)
    top = data["top_kernels"][0]
    assert top[0]["name"] == every[0]["name"]
    assert top[0]["count"] == every[0]["count"] / 5
    assert top[0]["total_us"] == pytest.approx(every[0]["total_us"] / 5)
    # the sweep.json written by that run summed the breakdown over the whole
    # capture; the report reads such a file per iteration
    ops = {o["op"]: o for o in data["ops"][0]}
    assert ops["aten::linear"]["kernels"] == pytest.approx(565 / 5)


@pytest.mark.parametrize("batch", [1, 2, 4, 8, 16])
def test_graph_prediction_from_the_eager_sweep_against_the_measured_graph_sweep(batch):
    """Issue 6's check: `skip whatif SWEEP --graphs` on the eager captures against
    the same workload measured as a CUDA graph (IL per iteration, medians)."""
    eager = skipnative.load(SWEEP / f"b{batch}.skip")
    graph = skipnative.load(GRAPHS / f"b{batch}.skip")

    def il(t):
        return np.median([r.metrics["il_us"] for r in t.metrics(top=0) if r.name != "all"])

    measured, predicted = il(graph), il(replay(eager, graphs=True))
    assert abs(predicted / measured - 1) < 0.10
    if batch == 1:  # CPU-bound: graphs pay off, and the replay says by how much
        assert il(eager) / measured > 2.2 and il(eager) / predicted > 2.0


def test_the_graph_sweep_launches_one_graph_per_iteration():
    doc = json.loads((GRAPHS / "sweep.json").read_text())
    assert doc["graphs"] is True
    for p in doc["points"]:
        t = skipnative.load(GRAPHS / p["file"])
        kinds = t.launches["kind"]
        # the untimed iteration and the five timed ones; the capture came before
        assert (kinds == KIND_KERNEL).sum() == 0 and (kinds == KIND_GRAPH).sum() == 6, p["batch"]


def test_replay_predicts_the_profiled_pass_from_the_native_one():
    """As on the H200 (test_whatif_real.py): the Kineto pass is the same work on a
    slower host; calibrated on batch 1's IL alone, the replay of the native
    captures predicts its IL and queued fraction at every other batch size."""
    from skipnative.analysis.sweep import run_summary

    doc = json.loads((SWEEP / "sweep.json").read_text())
    kineto = [p["kineto"] for p in doc["points"]]
    runs = [skipnative.load(SWEEP / p["file"]) for p in doc["points"]]
    native = [run_summary(t) for t in runs]
    scale = kineto[0]["il_us"] / native[0]["il_us"]
    assert 1.2 < scale < 1.5
    for t, k, point in zip(runs[1:], kineto[1:], doc["points"][1:]):
        p = run_summary(replay(t, cpu_scale=scale))
        assert p["il_us"] == pytest.approx(k["il_us"], rel=0.05)
        assert abs(p["queued_fraction"] - k["queued_fraction"]) < 0.05
        if point["batch"] == 4:  # the README: either side of the transition's 0.5
            assert k["queued_fraction"] < 0.5 < p["queued_fraction"]


def test_the_bundled_demo_data_is_each_points_median_iteration():
    bundled = ROOT / "src" / "skipnative" / "data" / "h100_llama1b_prefill"
    doc = json.loads((bundled / "sweep.json").read_text())
    assert [p["batch"] for p in doc["points"]] == BATCHES
    for p in doc["points"]:
        full = skipnative.load(SWEEP / p["file"])
        ils = [r.metrics["il_us"] for r in full.metrics(top=0) if r.name != "all"]
        cut = skipnative.load(bundled / p["file"])
        (il,) = [r.metrics["il_us"] for r in cut.metrics(top=0) if r.name != "all"]
        assert il == pytest.approx(np.median(ils), abs=1e-3), p["batch"]
        assert len(cut.kernels) * 5 == in_regions(full, join_kernels(full)).sum()
        assert cut.metrics(top=0)[0].metrics["n_unmatched_kernels"] == 0
        assert all(o["per_iteration"] for o in p["ops"])
        assert "(no ATen op)" not in {o["op"] for o in p["ops"]}


def test_report_of_the_graph_sweep_says_the_queue_transition_does_not_apply(tmp_path):
    pytest.importorskip("matplotlib")
    from skipnative.report import write_report

    text = Path(write_report(str(GRAPHS), str(tmp_path))).read_text()
    assert "one CUDA graph launch" in text and "queue transition does not apply" in text
    assert "None" not in text


def test_whatif_of_the_graph_sweep_says_not_reached(capsys):
    from skipnative.cli.main import main

    assert main(["whatif", str(GRAPHS), "--graphs"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    # replayed as graphs: one launch per iteration, nothing to predict (as the report)
    na = "not applicable (one launch per iteration)"
    assert last.startswith(f"transition (queue): measured not reached, predicted {na};")
    assert last.endswith(f"predicted {na}") and "None" not in last


def test_whatif_json_of_a_graph_replay_predicts_no_transition(capsys):
    """--json gave the predicted transition and knee as numbers, where the text
    and the report say they do not apply."""
    from skipnative.cli.main import main

    assert main(["whatif", str(SWEEP), "--graphs", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["graphs"] is True
    p, m = out["predicted"], out["measured"]
    assert p["queue_transition"] is p["knee"] is p["agree"] is None
    assert "one launch per iteration" in out["not_applicable"]
    assert m["queue_transition"] is not None  # the measured side stays
    assert len(p["il_us"]) == len(m["il_us"]) > 1


def test_compare_per_iteration_shows_where_torch_profilers_cost_lies():
    """The README's reading of `skip compare --per-iteration` on batch 1: the same
    kernels and launch-call cost, but the GPU waits twice as long for the host."""
    from skipnative.cli.compare import comparison

    r = comparison(str(SWEEP / "b1.skip"), str(SWEEP / "b1_kineto.json.gz"), "all", True)
    (row,) = r["regions"]
    m = row["metrics"]
    assert row["name"] == "per iteration (mean of 5)"
    assert m["n_kernels"]["a"] == m["n_kernels"]["b"] == 637
    assert m["il_us"]["ratio"] == pytest.approx(1.36, abs=0.01)
    assert m["gpu_idle_host_us"]["ratio"] > 2  # 3.2 -> 7.1 ms
    assert m["gpu_idle_launch_us"]["ratio"] == pytest.approx(1.0, abs=0.1)  # 4.1 -> 4.3 ms
    launch = {c["name"]: c for c in r["api_calls"]}["cudaLaunchKernel"]
    assert launch["ratio"] == pytest.approx(1.0, abs=0.1)  # 5.12 -> 4.81 us
