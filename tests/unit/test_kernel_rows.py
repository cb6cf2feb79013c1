"""The per-kernel table: its counts and sums against the region metrics, its
views (DataFrame, Arrow, CSV, Parquet) and `skip kernels`."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import skipnative
from kineto_gen import kernel, launch, op, step, write
from realdata import CUDA
from skipnative.analysis.kernel_rows import COUNTS, kernel_rows


def skip(*args):
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", *map(str, args)], capture_output=True, text=True
    )
    assert "Traceback" not in r.stderr
    return r


def mixed(path):
    """One of each SPEC §2 count: counted, graph extra, unmatched, other call."""
    ev = [
        op(0, 400, name="aten::forward"),
        op(5, 20, name="aten::mm"),
        step(0, 500, 1),
        launch(10, 5, 1),
        kernel(20, 10, 1, name="gemm"),
        launch(40, 5, 2, name="cudaGraphLaunch"),
        kernel(50, 10, 2, name="g0"),
        kernel(62, 10, 2, name="g1"),
        kernel(90, 10, 99, name="orphan"),
        launch(110, 5, 3, name="cudaMemcpyAsync"),
        kernel(120, 10, 3, name="copyk"),
    ]
    return write(path, ev)


def test_every_kernel_in_exactly_one_count_like_the_metrics(tmp_path):
    t = skipnative.load(mixed(tmp_path / "t.json"))
    cols = kernel_rows(t)
    by = dict(zip(cols["name"].tolist(), cols["count"].tolist()))
    assert by == {
        "gemm": "counted",
        "g0": "counted",
        "g1": "graph_extra",
        "orphan": "unmatched",
        "copyk": "other_call",
    }
    m = t.metrics(region="all")[0].metrics
    assert (cols["count"] == "counted").sum() == m["n_counted_kernels"]
    assert (cols["count"] == "unmatched").sum() == m["n_unmatched_kernels"]
    gemm = list(cols["name"]).index("gemm")
    assert cols["op"][gemm] == "aten::mm" and cols["top_op"][gemm] == "aten::forward"
    assert cols["api"][gemm] == "cudaLaunchKernel" and cols["api_kind"][gemm] == "kernel"
    assert cols["region"][gemm] == "ProfilerStep#1"
    assert np.isnan(cols["lq_us"][list(cols["name"]).index("orphan")])


@pytest.mark.parametrize("path", CUDA[:3], ids=lambda p: p.name)
def test_counted_sums_are_the_region_metrics(path):
    t = skipnative.load(path)
    for rm in t.metrics(top=0):
        cols = kernel_rows(t, region=rm.name)
        cols = {k: v[cols["device"] == rm.device] for k, v in cols.items()}
        m = rm.metrics
        assert len(cols["name"]) == m["n_kernels"]
        c = cols["count"] == "counted"
        ok = c & (cols["lq_us"] >= 0)
        assert cols["lq_us"][ok].sum() == pytest.approx(m["tklqt_us"], rel=1e-9, abs=1e-6)
        assert cols["api_us"][ok].sum() == pytest.approx(m["launch_api_us"], rel=1e-9, abs=1e-6)
        assert cols["dur_us"].mean() == pytest.approx(m["akd_us"], rel=1e-9)
        assert (c & (cols["lq_us"] < 0)).sum() == m["n_negative_lq"]


def test_dataframe_views_have_readable_categoricals(tmp_path):
    t = skipnative.load(mixed(tmp_path / "t.json"))
    df = t.kernels_df()
    assert str(df["count"].dtype) == "category"
    assert set(df["count"].cat.categories) <= set(COUNTS)
    assert set(df["api_kind"].astype(str)) == {"kernel", "graph", "copy", ""}
    ln = t.launches_df()
    assert str(ln["kind"].dtype) == "category"
    assert set(ln["kind"].astype(str)) == {"kernel", "graph", "copy"}
    assert set(t.gpu_df()["kind"].astype(str)) == {"kernel"}
    mf = t.metrics_frame()
    assert list(mf["region"]) == [r.name for r in t.metrics(top=0)]
    assert mf["tklqt_us"].iloc[0] == t.metrics(top=0)[0].metrics["tklqt_us"]


def test_csv_and_parquet_hold_the_same_table(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    path = str(CUDA[2])
    n = len(kernel_rows(skipnative.load(path))["name"])
    assert skip("kernels", path, "--csv", tmp_path / "k.csv").returncode == 0
    assert skip("kernels", path, "--parquet", tmp_path / "k.parquet").returncode == 0
    with open(tmp_path / "k.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    tbl = pq.read_table(tmp_path / "k.parquet")
    assert len(rows) == tbl.num_rows == n
    assert [r["name"] for r in rows[:50]] == tbl.column("name").to_pylist()[:50]
    assert [int(r["t_start"]) for r in rows[:50]] == tbl.column("t_start").to_pylist()[:50]
    r = skip("kernels", path, "--csv", tmp_path / "k.csv")
    assert r.returncode == 1 and "already exists" in r.stderr


def test_region_and_window_select_like_the_metrics(tmp_path):
    p = mixed(tmp_path / "t.json")
    t = skipnative.load(p)
    assert len(kernel_rows(t, region="ProfilerStep#1")["name"]) == 5
    t0 = int(t.launches["t_begin"].min())
    w = kernel_rows(t, window=(t0, t0 + 35_000))  # anchors: the first two launches
    assert sorted(w["name"].tolist()) == ["g0", "g1", "gemm"]
    out = json.loads(skip("kernels", p, "--json").stdout)
    assert out["counts"] == {"counted": 2, "graph_extra": 1, "unmatched": 1, "other_call": 1}
    r = skip("kernels", p, "--region", "nope")
    assert r.returncode == 1 and "nope" in r.stderr
    r = skip("kernels", p, "--window", "5:1")
    assert r.returncode == 2 and "--window" in r.stderr  # a bad argument, as argparse's


def test_a_folder_table_tells_apart_files_that_share_a_rank(tmp_path):
    folder = tmp_path / "ranks"
    folder.mkdir()
    mixed(folder / "a_rank0.json")  # two runs' rank 0
    one = mixed(folder / "b_rank0.json")
    n = len(kernel_rows(skipnative.load(one))["name"])
    r = skip("kernels", folder, "--csv", tmp_path / "k.csv")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "k.csv") as f:
        rows = list(csv.DictReader(f))
    assert [k for k in rows[0]][:3] == ["rank", "file", "device"]
    want = [("0", "a_rank0.json")] * n + [("0", "b_rank0.json")] * n
    assert [(x["rank"], x["file"]) for x in rows] == want
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    assert skip("kernels", folder, "--parquet", tmp_path / "k.parquet").returncode == 0
    files = pq.read_table(tmp_path / "k.parquet").column("file").to_pylist()
    assert files == ["a_rank0.json"] * n + ["b_rank0.json"] * n
    single = skip("kernels", one, "--csv", "-").stdout.splitlines()[0]
    assert "file" not in single.split(",")  # one file: no column to tell files apart


def test_kernels_without_any_launch_call_are_unmatched_everywhere(tmp_path):
    # a trace of GPU activity alone (launch calls not recorded): every kernel
    # unmatched, nothing to average per name, and every command still answers
    path = write(tmp_path / "t.json", [kernel(10, 5, 1), kernel(20, 5, 2, name="other")])
    cols = kernel_rows(skipnative.load(path))
    assert list(cols["count"]) == ["unmatched", "unmatched"]
    r = skip("kernels", path, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)  # strict JSON: no NaN
    assert out["counts"]["unmatched"] == 2
    assert [s["mean_lq_us"] for s in out["by_name"]] == [None, None]
    text = skip("kernels", path).stdout
    assert "nan" not in text
    for cmd in (["whatif", "--graphs"], ["whatif", "--cpu-scale", "2"], ["analyze"]):
        r = skip(*cmd, path)
        assert r.returncode == 0 and "error" not in r.stderr, (cmd, r.stderr)


def test_csv_says_microseconds_in_whole_nanoseconds():
    # float noise such as 0.5759999999999998 in the µs columns
    r = skip("kernels", CUDA[0], "--csv", "-")
    rows = list(csv.DictReader(r.stdout.splitlines()))
    us = [k for k in rows[0] if k.endswith("_us")]
    for row in rows:
        for k in us:
            v = row[k]
            assert v == "nan" or len(v.partition(".")[2]) <= 3, (k, v)


@pytest.mark.parametrize(
    ("module", "view", "extra"),
    [("pyarrow", "to_arrow", "parquet"), ("pandas", "kernels_df", "pandas")],
)
def test_a_view_without_its_library_names_the_extra(tmp_path, monkeypatch, module, view, extra):
    # what the README installs: skipnative[parquet] / skipnative[pandas], as `skip`
    # names them, not the bare library
    t = skipnative.load(write(tmp_path / "t.json", [launch(0, 1, 1), kernel(2, 1, 1)]))
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    with pytest.raises(ImportError) as e:
        getattr(t, view)()
    assert e.value.name == module
    assert f"pip install 'skipnative[{extra}]'" in str(e.value)
    assert f"{module}, which is not installed" in str(e.value)


@pytest.mark.parametrize("option", ["--csv", "--parquet"])
def test_an_output_that_is_a_folder_is_refused_with_or_without_force(tmp_path, option):
    if option == "--parquet":
        pytest.importorskip("pyarrow")
    out = "out.csv" if option == "--csv" else "out.parquet"
    (tmp_path / out).mkdir()
    for force in ([], ["--force"]):
        r = subprocess.run(
            [sys.executable, "-m", "skipnative", "kernels", str(CUDA[0]), option, out, *force],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert r.stderr.strip().splitlines() == [
            f"skip: error: {out}: exists and is not a regular file; only a file is replaced"
        ], force


def test_parquet_to_dash_goes_to_stdout_as_csv_does(tmp_path):
    # it wrote a file named "-" in the current folder
    import io

    pq = pytest.importorskip("pyarrow.parquet")
    path = str(CUDA[2])
    argv = [sys.executable, "-m", "skipnative", "kernels", path, "--parquet", "-"]
    r = subprocess.run(argv, capture_output=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "-").exists() and r.stderr == b""
    tbl = pq.read_table(io.BytesIO(r.stdout))
    assert tbl.num_rows == len(kernel_rows(skipnative.load(path))["name"])


def test_parquet_to_a_terminal_is_a_usage_error(tmp_path):
    import os
    import pty

    pytest.importorskip("pyarrow")
    master, terminal = pty.openpty()
    argv = [sys.executable, "-m", "skipnative", "kernels", str(CUDA[2]), "--parquet", "-"]
    try:
        r = subprocess.run(argv, stdout=terminal, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    finally:
        os.close(terminal)
        os.close(master)
    assert r.returncode == 2 and "Parquet is binary" in r.stderr, r.stderr
    assert not (tmp_path / "-").exists()
