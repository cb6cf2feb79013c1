"""A capture that counted records it did not keep says so wherever its numbers
are shown: the sweep report names the point and what it lost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import skipnative
from skipnative.analysis.report_data import sweep_data
from skipnative.report.sections import summary, title
from skipnative.trace import loss_text, losses

BUNDLED = Path(skipnative.__file__).parent / "data" / "h100_llama1b_prefill"


def _sweep(tmp_path) -> Path:
    out = tmp_path / "sweep"
    shutil.copytree(BUNDLED, out)
    return out


def test_losses_reads_only_positive_counts_of_known_kinds():
    meta = {"dropped": {"launches": 0, "gpu_rows": 7, "cupti": 2.0, "spilled": True, "x": 9}}
    assert losses(meta) == {"gpu_rows": 7, "cupti": 2}
    assert losses({}) == {} and losses({"dropped": "bad"}) == {}
    assert loss_text({"gpu_rows": 1234}) == "1,234 GPU records (max_gpu_records)"


def test_records_lost_for_want_of_memory_name_no_cap():
    assert losses({"dropped": {"unallocated": 3, "launches": 0}}) == {"unallocated": 3}
    said = loss_text({"unallocated": 3})
    assert said == "3 records no memory could be allocated for (out of memory, not a cap)"
    assert "max_" not in said


def test_the_report_names_a_point_that_dropped_records(tmp_path):
    out = _sweep(tmp_path)
    clean = sweep_data(str(out), whatif_cpu=(), whatif_graphs=False)
    assert not any("dropped" in str(b) for b in summary(clean).blocks)
    t = skipnative.load(out / "b4.skip")
    t.meta["dropped"] = {**t.meta.get("dropped", {}), "gpu_rows": 12}
    t.save(out / "b4.skip", overwrite=True)
    data = sweep_data(str(out), whatif_cpu=(), whatif_graphs=False)
    said = [str(b) for b in summary(data).blocks if "dropped" in str(b)]
    assert len(said) == 1 and "Batch 4's" in said[0] and "12 GPU records" in said[0]


def test_a_script_sweep_is_titled_by_its_script_not_the_default_workload(tmp_path):
    out = _sweep(tmp_path)
    assert title(sweep_data(str(out), whatif_cpu=(), whatif_graphs=False)) == (
        "TKLQT sweep: prefill, sequence length 512"
    )
    doc = json.loads((out / "sweep.json").read_text())
    doc["script"] = "/home/me/w.py:make"
    (out / "sweep.json").write_text(json.dumps(doc))
    assert (
        title(sweep_data(str(out), whatif_cpu=(), whatif_graphs=False)) == "TKLQT sweep: w.py:make"
    )
