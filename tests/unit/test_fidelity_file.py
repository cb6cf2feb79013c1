"""bench/fidelity_file.py: fidelity.json from a gpu_overhead.py result."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "fidelity_file.py"


@pytest.fixture(scope="module")
def ff():
    spec = importlib.util.spec_from_file_location("fidelity_file", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def overhead(configs: dict[str, tuple[float, float]]) -> dict:
    loop = {c: ns for c, (ns, _) in configs.items()}
    il = {c: ms for c, (_, ms) in configs.items()}
    return {
        "device": "NVIDIA H200",
        "cupti_version": 130001,
        "launch_loop": loop,
        "added_ns_per_launch": {c: v - loop["unprofiled"] for c, v in loop.items()},
        "perturbation": {
            "small_ops_x300": {c: v / il["unprofiled"] - 1 for c, v in il.items()},
            "llama1b_decode_b1_ctx512": {c: v / il["unprofiled"] - 1 for c, v in il.items()},
        },
    }


ALL = {
    "unprofiled": (2000.0, 10.0),
    "unprofiled_before_any_session": (1990.0, 10.0),
    "kernel_activity_only": (3400.0, 11.5),
    "timing_pass": (3600.0, 11.6),
    "timing_pass_hook": (3450.0, 11.55),
    "torch_profiler": (9000.0, 20.0),
}


def test_the_schema_of_the_issue(ff, tmp_path):
    res = tmp_path / "overhead.json"
    res.write_text(json.dumps(overhead(ALL)))
    assert ff.main([str(res), "--results", str(tmp_path), "--date", "2026-12-01"]) == 0
    doc = json.loads((tmp_path / "h200-2026-12-01" / "fidelity.json").read_text())
    assert set(doc) == {"card", "cupti", "workload", "rows"}
    assert doc["card"] == "NVIDIA H200" and doc["cupti"] == "130001"
    assert doc["workload"] == "llama1b_decode_b1_ctx512"  # the decoder by default
    rows = {r["config"]: r for r in doc["rows"]}
    assert set(ff.REQUIRED) <= set(rows)
    assert "unprofiled_before_any_session" not in rows
    assert rows["unprofiled"]["perturbation"] == 0.0
    assert rows["kernel_activity_only"]["perturbation"] == pytest.approx(0.15)
    assert rows["torch_profiler"]["added_ns_per_launch"] == pytest.approx(7000.0)


def test_a_config_refused_on_the_card_is_named_missing(ff):
    configs = {k: v for k, v in ALL.items() if k != "timing_pass_hook"}
    doc = ff.fidelity_doc(overhead(configs))
    assert doc["missing"] == ["timing_pass_hook"]


def test_whether_the_hooks_joined_their_kernels_is_kept(ff):
    res = overhead(ALL)
    join = {
        "launches": 640,
        "kernels": 637,
        "launches_unjoined": 640,
        "hook_api_records": "per call",
    }
    res["hook_join"] = join
    replay = {"queued": {"work_calls": 700, "agreed": 700, "wrong": 0}}
    res["order_replay"] = replay
    doc = ff.fidelity_doc(res)
    assert doc["hook_join"] == join and doc["order_replay"] == replay


def test_bad_input_is_one_line_naming_the_file(ff, tmp_path, capsys):
    bad = tmp_path / "overhead.json"
    bad.write_text("{}")
    assert ff.main([str(bad), "--results", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and len(err.strip().splitlines()) == 1


def test_card_slugs(ff):
    assert ff.card_slug("NVIDIA H100 80GB HBM3") == "h100"
    assert ff.card_slug("NVIDIA B200") == "b200"
    assert ff.card_slug("skipnative simulated GPU") == "skipnative-simulated-gpu"


def test_a_run_cut_short_keeps_what_its_finished_blocks_measured(ff, tmp_path):
    # gpu_overhead.py writes its result after each block; torch.profiler, measured
    # last, is missing from a run the stage's timeout ended
    import sys

    sys.path.insert(0, str(BENCH.parent))
    try:
        import gpu_overhead as go
    finally:
        sys.path.remove(str(BENCH.parent))
    res = {"device": "NVIDIA H100", "workloads": {"w_decode": {}}, "launch_loop": {}}
    samples = {
        "unprofiled": [(2000.0, {"w_decode": 10.0}), (2100.0, {"w_decode": 10.2})],
        "timing_pass": [(3000.0, {"w_decode": 11.0}), (3100.0, {"w_decode": 11.4})],
    }
    go.summarize(res, samples, {})
    res["complete"] = False
    out = tmp_path / "o.json"
    go.write_json(str(out), res)
    back = json.loads(out.read_text())
    assert back["perturbation"]["w_decode"]["timing_pass"] == pytest.approx(11.2 / 10.1 - 1)
    assert back["added_ns_per_launch"]["timing_pass"] == pytest.approx(1000.0)
    doc = ff.fidelity_doc(back)
    assert doc["complete"] is False and "torch_profiler" in doc["missing"]
    assert not (tmp_path / "o.json.tmp").exists()
