"""Kineto events whose kind-deciding fields are of the wrong type ('ph' no
one-letter string, 'cat' no string, 'args' no object) are ignored as any unknown
event is, but counted and said once, on stderr and in `skip analyze --json`;
the other phases real traces hold (metadata, instants, flows) are no such event."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import skipnative
from kineto_gen import kernel, launch, write
from load_refusal import load_refused

DATA = Path(__file__).resolve().parents[1] / "data" / "kineto"

# normal events of kinds the reader does not use
OTHER_PHASES = [
    {"ph": "M", "name": "process_name", "pid": 0, "args": {"name": "python"}},
    {"ph": "i", "s": "t", "name": "mark", "pid": 0, "tid": 1, "ts": 3},
    {"ph": "s", "cat": "ac2g", "id": 1, "name": "ac2g", "pid": 0, "tid": 1, "ts": 1},
    {"ph": "f", "cat": "ac2g", "id": 1, "name": "ac2g", "pid": 0, "tid": 7, "ts": 2, "bp": "e"},
    {"ph": "X", "cat": "python_function", "name": "f", "pid": 0, "tid": 1, "ts": 0, "dur": 9},
]


def _malformed_trace(tmp_path) -> str:
    bad_ph = kernel(5, 1, 2)
    bad_ph["ph"] = 5
    bad_cat = kernel(6, 1, 3)
    bad_cat["cat"] = None
    bad_args = {"ph": "X", "cat": "python_function", "name": "f", "ts": 1, "dur": 1, "args": [1]}
    good = [launch(0, 1, 1), kernel(2, 1, 1)]
    return write(tmp_path / "t.json", [*good, bad_ph, bad_cat, bad_args, *OTHER_PHASES])


def test_malformed_events_are_counted_and_said_once(tmp_path):
    path = _malformed_trace(tmp_path)
    with pytest.warns(RuntimeWarning) as caught:
        t = skipnative.load(path)
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert msg.startswith(f"{path}: 3 malformed trace events ignored (")
    assert "'ph'" in msg and "'cat'" in msg and "'args'" in msg and "\n" not in msg
    assert len(t.gpu) == 1  # the two broken kernels are not read


def test_skip_analyze_says_them_on_stderr_and_in_json(tmp_path):
    path = _malformed_trace(tmp_path)
    for json_out in (False, True):
        argv = [sys.executable, "-m", "skipnative", "analyze", path, *(["--json"] * json_out)]
        r = subprocess.run(argv, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert lines[0].startswith(f"skip: warning: {path}: 3 malformed trace events ignored")
    assert json.loads(r.stdout)["malformed_events"] == {"ph": 1, "cat": 1, "args": 1}


def test_other_phases_and_real_traces_hold_no_malformed_event(tmp_path):
    path = write(tmp_path / "t.json", [launch(0, 1, 1), kernel(2, 1, 1), *OTHER_PHASES])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = skipnative.load(path)
        assert "malformed_events" not in t.meta
        for real in sorted(DATA.glob("*.json.gz")):
            assert "malformed_events" not in skipnative.load(real).meta, real
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", "analyze", path, "--json"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and r.stderr == ""
    assert json.loads(r.stdout)["malformed_events"] == {}


def test_args_of_the_wrong_type_on_an_event_the_metrics_use_are_refused(tmp_path):
    ev = kernel(2, 1, 1)
    ev["args"] = [1, 7]  # its correlation, device and stream unreadable
    path = write(tmp_path / "t.json", [launch(0, 1, 1), ev])
    load_refused(path, "traceEvents[1]", "'args' is not an object")
