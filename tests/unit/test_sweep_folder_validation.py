"""sweep.json is checked when a sweep folder is loaded: a point the report or
`skip whatif DIR` could not use is refused in one line naming sweep.json and the
point, never an internal error (TypeError, KeyError, AttributeError) later."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from skipnative.errors import TraceError
from skipnative.io.sweep import load_sweep

BUNDLED = Path(__file__).parents[2] / "src" / "skipnative" / "data" / "h100_llama1b_prefill"


def skip(*args):
    return subprocess.run(
        [sys.executable, "-m", "skipnative", *map(str, args)], capture_output=True, text=True
    )


def one_point(folder: Path, change=None, trace=None) -> Path:
    """A one-point sweep folder: the bundled sweep's first point (or `trace` saved as
    b1.skip), sweep.json changed by `change(doc, point)`."""
    doc = json.loads((BUNDLED / "sweep.json").read_text())
    doc["points"] = doc["points"][:1]
    if change:
        change(doc, doc["points"][0])
    folder.mkdir(exist_ok=True)
    (folder / "sweep.json").write_text(json.dumps(doc))
    if trace is not None:
        trace.save(folder / "b1.skip")
    else:
        (folder / "b1.skip").write_bytes((BUNDLED / "b1.skip").read_bytes())
    return folder


def refused(folder: Path) -> str:
    with pytest.raises(TraceError) as e:
        load_sweep(str(folder))
    msg = str(e.value)
    assert e.value.path == str(folder / "sweep.json"), msg
    assert "\n" not in msg
    return e.value.problem


def setter(key, value):
    return lambda doc, p: p.__setitem__(key, value)


POINT_CASES = {
    "file_null": setter("file", None),
    "file_number": setter("file", 7),
    "file_list": setter("file", ["b1.skip"]),
    "file_empty": setter("file", ""),
    "file_parent": setter("file", "../b1.skip"),
    "file_parent_inside": setter("file", "sub/../../b1.skip"),
    "file_absolute": setter("file", "/etc/hostname"),
    "file_nul": setter("file", "b1\0.skip"),
    "batch_bool": setter("batch", True),
    "batch_zero": setter("batch", 0),
    "batch_negative": setter("batch", -4),
    "batch_huge": setter("batch", 10**30),
    "batch_float": setter("batch", 1.5),
    "batch_string": setter("batch", "1"),
    "native_str": setter("native", "x"),
    "native_iterations_str": lambda doc, p: p["native"].__setitem__("iterations", "3"),
    "native_iterations_negative": lambda doc, p: p["native"].__setitem__("iterations", -2),
    "kineto_str": setter("kineto", "x"),
    "kineto_partial": setter("kineto", {"il_us": 1}),
    "kineto_tklqt_str": lambda doc, p: p["kineto"].__setitem__("tklqt_us", "5"),
    "ops_str": setter("ops", "x"),
    "ops_entry_str": setter("ops", ["aten::mm"]),
    "ops_missing_keys": setter("ops", [{"op": "aten::mm", "kernels": 1}]),
    "ops_name_not_str": lambda doc, p: p["ops"][0].__setitem__("op", 3),
    "ops_kernels_bool": lambda doc, p: p["ops"][0].__setitem__("kernels", True),
    "fidelity_str": setter("fidelity", "x"),
    "fidelity_perturbation_str": setter("fidelity", {"perturbation": "10%", "reps": 20}),
    "fidelity_floor_str": setter(
        "fidelity", {"perturbation": 0.1, "reps": 20, "floor_perturbation": [1]}
    ),
    "fidelity_without_reps": setter("fidelity", {"perturbation": 0.1}),
    "fidelity_reps_float": setter("fidelity", {"perturbation": 0.1, "reps": 2.5}),
    "match_rate_str": setter("match_rate", "high"),
}


@pytest.mark.parametrize("name", list(POINT_CASES))
def test_a_point_the_report_cannot_use_is_refused_naming_the_point(tmp_path, name):
    problem = refused(one_point(tmp_path / "s", POINT_CASES[name]))
    assert "point 1" in problem, problem


def test_a_nan_in_a_point_is_refused_naming_it(tmp_path):
    # refused as it is read (NaN is no JSON number), before the point's checks
    change = lambda doc, p: p["kineto"].__setitem__("queued_fraction", float("nan"))  # noqa: E731
    problem = refused(one_point(tmp_path / "s", change))
    assert "points[0].kineto.queued_fraction is NaN" in problem, problem


SWEEP_CASES = {
    "points_not_list": lambda doc, p: doc.__setitem__("points", {"batch": 1}),
    "point_not_object": lambda doc, p: doc["points"].__setitem__(0, 1),
    "failed_str": lambda doc, p: doc.__setitem__("failed", "x"),
    "failed_error_list": lambda doc, p: doc.__setitem__("failed", {"batch": 2, "error": []}),
    "script_list": lambda doc, p: doc.__setitem__("script", ["w.py"]),
    "seq_len_str": lambda doc, p: doc.__setitem__("seq_len", {"n": 1}),
    "duplicate_batch": lambda doc, p: doc["points"].append(dict(p)),
    # "false" was taken as true; a list or an object printed as Python's repr
    "graphs_str": lambda doc, p: doc.__setitem__("graphs", "false"),
    "graphs_number": lambda doc, p: doc.__setitem__("graphs", 0),
    "card_list": lambda doc, p: doc.__setitem__("card", [1]),
    "phase_object": lambda doc, p: doc.__setitem__("phase", {"a": 1}),
}


@pytest.mark.parametrize("name", list(SWEEP_CASES))
def test_a_sweep_json_the_report_cannot_use_is_refused(tmp_path, name):
    refused(one_point(tmp_path / "s", SWEEP_CASES[name]))


@pytest.mark.parametrize(("key", "value"), [("graphs", "false"), ("card", [1]), ("phase", {})])
def test_a_sweep_field_of_the_wrong_type_is_named(tmp_path, key, value):
    problem = refused(one_point(tmp_path / "s", lambda doc, p: doc.__setitem__(key, value)))
    assert problem.startswith(f"'{key}' must be "), problem


def test_graphs_card_and_phase_may_be_null_as_older_sweeps_wrote_them(tmp_path):
    def nulls(doc, p):
        doc.update(graphs=None, card=None, phase=None)

    sw = load_sweep(str(one_point(tmp_path / "s", nulls)))
    assert (sw.card, sw.phase) == ("", "")


def test_a_top_level_that_is_no_object_is_refused(tmp_path):
    (tmp_path / "sweep.json").write_text("[1, 2]")
    assert "points" in refused(tmp_path)


def test_a_point_file_that_is_a_folder_is_refused(tmp_path):
    folder = one_point(tmp_path / "s", setter("file", "sub"))
    (folder / "sub").mkdir()
    with pytest.raises(TraceError) as e:
        load_sweep(str(folder))
    assert e.value.path == str(folder / "sub") and "\n" not in str(e.value)


def test_the_bundled_sweep_and_optional_summaries_load(tmp_path):
    sw = load_sweep(str(BUNDLED))
    assert sw.values == sorted(sw.values) and len(sw.files) == len(sw.values) > 1

    def bare(doc, p):  # what an older or smaller sweep writes: no summaries at all
        for k in ("file", "native", "kineto", "ops", "fidelity", "match_rate"):
            p.pop(k, None)
        doc["script"] = None

    sw = load_sweep(str(one_point(tmp_path / "bare", bare)))
    assert sw.files == [str(tmp_path / "bare" / "b1.skip")]

    def nulls(doc, p):  # a pass that did not run: null, an empty op list
        p.update(kineto=None, fidelity={"perturbation": None}, ops=[], match_rate=None)
        doc["failed"] = {"batch": 2, "error": "out of memory"}
        doc["script"] = "/w/work.py"

    assert load_sweep(str(one_point(tmp_path / "nulls", nulls))).values == [1]

    def sub(doc, p):  # a point file in a subfolder of the sweep is inside it
        p["file"] = "points/b1.skip"

    folder = one_point(tmp_path / "sub", sub)
    (folder / "points").mkdir()
    (folder / "b1.skip").rename(folder / "points" / "b1.skip")
    assert load_sweep(str(folder)).files == [str(folder / "points" / "b1.skip")]


@pytest.mark.parametrize(
    "name",
    ["ops_str", "native_str", "fidelity_str", "kineto_partial", "fidelity_perturbation_str"]
    + ["ops_missing_keys", "file_null"],
)
def test_skip_report_and_whatif_refuse_a_bad_point_in_one_line(tmp_path, name):
    folder = one_point(tmp_path / "s", POINT_CASES[name])
    for args in (["report", "--out", tmp_path / "r", folder], ["whatif", folder]):
        r = skip(*args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1, r.stderr
        assert "sweep.json" in lines[0] and "internal error" not in lines[0], lines[0]


def test_skip_report_refuses_a_script_that_is_not_a_path(tmp_path):
    folder = one_point(tmp_path / "s", SWEEP_CASES["script_list"])
    r = skip("report", "--out", tmp_path / "r", folder)
    assert r.returncode == 1 and "script" in r.stderr and "internal error" not in r.stderr


@pytest.mark.parametrize("depth", [150, 100_000])
def test_a_deeply_nested_sweep_json_is_refused_in_one_line(tmp_path, depth):
    def deep(doc, p):
        p["extra"] = json.loads("[" * 50 + "]" * 50)  # a nesting any reader walks
        doc["note"] = "DEEP"

    text = json.dumps(json.loads((one_point(tmp_path / "s", deep) / "sweep.json").read_text()))
    (tmp_path / "s" / "sweep.json").write_text(text.replace('"DEEP"', "[" * depth + "]" * depth))
    assert "nested" in refused(tmp_path / "s")
