"""skip report's --whatif-cpu is refused at parse time outside what a replay can
hold, and a replay a point's trace cannot hold is one line naming the point."""

from __future__ import annotations

import pytest

from skipnative.errors import TraceError
from test_sweep_folder_validation import BUNDLED, one_point, skip


@pytest.mark.parametrize(
    "value", ["1e18", "1e6,2e6", "2,inf", "0", "-1", "x", "nan", "1,,x", "2,,3", ",", "2,", ",2"]
)
def test_report_whatif_cpu_out_of_range_is_refused_at_parse_time(tmp_path, value):
    r = skip("report", f"--whatif-cpu={value}", "--out", tmp_path / "r", BUNDLED)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "--whatif-cpu" in lines[0] and "internal error" not in lines[0]
    assert not (tmp_path / "r").exists()


def test_report_whatif_cpu_parses_lists_within_the_bounds():
    from skipnative.cli.report import _scales

    assert _scales("2,0.5") == (2.0, 0.5)
    assert _scales("1e6, 1e-3") == (1e6, 1e-3)
    assert _scales("") == () and _scales(" ") == ()


def test_a_replay_the_trace_cannot_hold_is_one_line_naming_the_point(tmp_path, monkeypatch):
    from skipnative.analysis import report_data
    from skipnative.analysis.whatif import ReplayRangeError

    def failing(t, **change):
        raise ReplayRangeError("cpu_scale 1e+06 would put this trace's times beyond int64")

    monkeypatch.setattr(report_data, "replay", failing)
    folder = one_point(tmp_path / "s")
    with pytest.raises(TraceError) as e:
        report_data.sweep_data(str(folder), whatif_cpu=(1e6,))
    assert e.value.path == str(folder / "b1.skip") and "int64" in e.value.problem
