"""The .skip file: exact round trip, compact, self-describing, corruption detected."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import skipnative
from skipnative import TraceError
from skipnative.io.perfetto import export_perfetto

DATA = Path(__file__).resolve().parents[1] / "data" / "kineto"


@pytest.fixture(scope="module")
def trace():
    return skipnative.load(DATA / "v100_ns_resolution_rank0.json.gz")


def same(a, b):
    for name in ("launches", "gpu", "ops", "regions"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.strings == b.strings


def test_round_trip_is_exact(trace, tmp_path):
    p = tmp_path / "t.skip"
    trace.save(p)
    back = skipnative.load(p)
    same(trace, back)
    assert back.meta["source"] == "kineto" and back.meta["devices"] == trace.meta["devices"]
    assert [r.metrics for r in back.metrics()] == [r.metrics for r in trace.metrics()]


def test_paths_with_spaces_and_non_ascii(trace, tmp_path):
    d = tmp_path / "dir with spaces" / "données"
    d.mkdir(parents=True)
    p = d / "trace ü.skip"
    trace.save(p)
    same(trace, skipnative.load(p))


def test_no_silent_overwrite_and_no_partial_files(trace, tmp_path):
    p = tmp_path / "t.skip"
    trace.save(p)
    before = p.read_bytes()
    with pytest.raises(TraceError, match="already exists"):
        trace.save(p)
    assert p.read_bytes() == before
    trace.save(p, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["t.skip"]  # no temporary left behind


@pytest.mark.parametrize("overwrite", ["no", "False", 0, None])
def test_overwrite_that_is_no_bool_is_refused_and_the_file_kept(trace, tmp_path, overwrite):
    # a str is truthy whatever it says: overwrite="no" replaced the file
    p = tmp_path / "t.skip"
    p.write_bytes(b"keep me")
    with pytest.raises(TypeError, match=r"^overwrite: expected True or False, not "):
        trace.save(p, overwrite=overwrite)
    with pytest.raises(TypeError, match=r"^overwrite: expected True or False, not "):
        export_perfetto(trace, str(p), overwrite=overwrite)
    assert p.read_bytes() == b"keep me"
    trace.save(p, overwrite=np.True_)  # numpy's bool is a bool
    assert skipnative.load(p).strings == trace.strings


def test_compact(trace, tmp_path):
    p = tmp_path / "t.skip"
    trace.save(p)
    events = len(trace.gpu) + len(trace.launches) + len(trace.ops)
    assert p.stat().st_size / events < 12


@pytest.mark.parametrize("where", [0.3, 0.6, 0.95])
def test_flipped_byte_is_detected(trace, tmp_path, where):
    p = tmp_path / "t.skip"
    trace.save(p)
    data = bytearray(p.read_bytes())
    i = int(len(data) * where)
    data[i] ^= 0x55
    p.write_bytes(bytes(data))
    with pytest.raises(TraceError, match=r"corrupted \.skip"):
        skipnative.load(p)


def test_truncated_file(trace, tmp_path):
    p = tmp_path / "t.skip"
    trace.save(p)
    data = p.read_bytes()
    for n in (4, 12, 100, len(data) - 10):
        p.write_bytes(data[:n])
        with pytest.raises(TraceError, match=r"corrupted \.skip"):
            skipnative.load(p)


def test_unknown_version(trace, tmp_path):
    p = tmp_path / "t.skip"
    trace.save(p)
    data = bytearray(p.read_bytes())
    data[8] = 99
    p.write_bytes(bytes(data))
    with pytest.raises(TraceError, match="format version 99"):
        skipnative.load(p)


def test_dataframe_views(trace):
    pd = pytest.importorskip("pandas")
    g = trace.gpu_df()
    assert isinstance(g, pd.DataFrame) and len(g) == len(trace.gpu)
    assert {"t_start", "t_end", "grid_x", "block_z", "name"} <= set(g.columns)
    assert g["name"].iloc[0] == trace.strings[trace.gpu["name_id"][0]]
    assert len(trace.launches_df()) == len(trace.launches)
    assert (trace.ops_df()["depth"] >= 0).all()


def test_an_empty_or_bytes_output_path(trace, tmp_path, monkeypatch):
    # "" failed in os.replace, naming the temporary file (made in the folder
    # above the current one); a bytes path failed mixing bytes and str
    monkeypatch.chdir(tmp_path)
    for write in (trace.save, lambda p: export_perfetto(trace, p)):
        with pytest.raises(ValueError, match=r"^the output path is empty"):
            write("")
    assert os.listdir(tmp_path) == [] and not list(tmp_path.parent.glob(".skipnative-*"))
    trace.save(os.fsencode(tmp_path / "b.skip"))
    export_perfetto(trace, os.fsencode(tmp_path / "b.json"))
    same(trace, skipnative.load(os.fsencode(tmp_path / "b.skip")))
