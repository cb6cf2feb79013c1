"""The Perfetto export loses nothing: a Kineto source keeps every event, a native
capture's regions and latency timestamps come back, and the output is a valid
chrome trace (checked by a structural validator of the trace-event format)."""

from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import skipnative
from realdata import CUDA, OLD_FORMAT, ROCM
from skipnative.io.perfetto import export_perfetto

NATIVE = Path(skipnative.__file__).parent / "data" / "h100_llama1b_prefill" / "b1.skip"
SMALL = [CUDA[0], CUDA[2], OLD_FORMAT, ROCM]

# the trace-event format's phases (Chrome's "Trace Event Format" document)
PHASES = set("BEXiIbneCstfPONDMVvRc") | {"(", ")"}


def _doc(path) -> dict:
    raw = Path(path).read_bytes()
    return json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


def _events(doc) -> list:
    return doc["traceEvents"] if isinstance(doc, dict) else doc


def validate_chrome_trace(doc) -> None:
    """Raises AssertionError where `doc` breaks the trace-event format: an object
    with a traceEvents list (or a bare list); each event with a known phase,
    numeric ts (but metadata), pid and tid; complete events with dur >= 0;
    metadata events of known names with args; flow steps with an id and every
    flow end after a start of its id."""
    assert isinstance(doc, (dict, list))
    events = _events(doc)
    assert isinstance(events, list)
    starts: dict = {}
    for e in events:
        assert isinstance(e, dict), e
        ph = e.get("ph")
        assert ph in PHASES, e
        assert "pid" in e and ("tid" in e or ph == "M"), e
        if ph == "M":
            assert isinstance(e.get("name"), str), e
            assert isinstance(e.get("args"), dict), e
            continue
        assert isinstance(e.get("ts"), (int, float)), e
        if ph == "X":
            assert isinstance(e.get("name"), str), e
            assert isinstance(e.get("dur"), (int, float)) and e["dur"] >= 0, e
        if ph in ("s", "t", "f"):
            assert "id" in e, e
            key = (e.get("cat"), e["id"])
            if ph == "s":
                starts[key] = min(starts.get(key, e["ts"]), e["ts"])
            elif ph == "f":
                assert key in starts and starts[key] <= e["ts"], e


def _count(doc) -> Counter:
    return Counter((e.get("cat"), e.get("ph")) for e in _events(doc))


def test_the_validator_rejects_broken_traces():
    good = {"traceEvents": [{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 1, "dur": 2}]}
    validate_chrome_trace(good)
    for bad in (
        [{"ph": "Q", "pid": 1, "tid": 1, "ts": 1}],
        [{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": 1, "dur": -1}],
        [{"ph": "X", "name": "a", "pid": 1, "tid": 1, "ts": "1", "dur": 1}],
        [{"ph": "f", "id": 3, "cat": "ac2g", "pid": 1, "tid": 1, "ts": 5}],
        [{"ph": "M", "name": "process_name", "pid": 1, "tid": 0}],
    ):
        with pytest.raises(AssertionError):
            validate_chrome_trace({"traceEvents": bad})


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.name)
@pytest.mark.parametrize("out", ["out.json", "out.json.gz"])
def test_kineto_source_keeps_every_event(tmp_path, path, out):
    t = skipnative.load(path)
    export_perfetto(t, str(tmp_path / out))
    a, b = _doc(path), _doc(tmp_path / out)
    assert _count(b) == _count(a)
    counts = _count(a)
    assert counts[("user_annotation", "X")] == len(
        [e for e in _events(a) if e.get("cat") == "user_annotation"]
    )
    if isinstance(a, dict):
        for key in ("distributedInfo", "deviceProperties"):
            assert b.get(key) == a.get(key)
    assert skipnative.load(tmp_path / out).metrics() == t.metrics()


def test_a_changed_source_is_rebuilt_not_copied(tmp_path):
    src = tmp_path / "t.json.gz"
    src.write_bytes(Path(CUDA[2]).read_bytes())
    t = skipnative.load(src)
    src.write_bytes(Path(CUDA[0]).read_bytes())  # the file changed since it was read
    os.utime(src, ns=(1, 1))
    export_perfetto(t, str(tmp_path / "o.json"))
    back = skipnative.load(tmp_path / "o.json")
    assert len(back.gpu) == len(t.gpu) and len(back.launches) == len(t.launches)


def test_native_export_is_valid_and_reads_back_identically(tmp_path):
    t = skipnative.load(NATIVE)
    assert len(t.regions) and (t.gpu["t_submitted"] > 0).any()  # what must survive
    out = tmp_path / "n.json.gz"
    export_perfetto(t, str(out))
    doc = _doc(out)
    validate_chrome_trace(doc)
    ann = [e for e in doc["traceEvents"] if e.get("cat") == "user_annotation"]
    assert sorted(e["name"] for e in ann) == sorted(t.name(t.regions["name_id"]))
    back = skipnative.load(out)
    assert [r.to_dict() for r in back.metrics(top=None)] == [
        r.to_dict() for r in t.metrics(top=None)
    ]
    shift = int(back.regions["t_begin"][0] - t.regions["t_begin"][0])
    assert (back.regions["t_begin"] - shift == t.regions["t_begin"]).all()
    assert (back.regions["t_end"] - shift == t.regions["t_end"]).all()
    assert back.name(back.regions["name_id"]) == t.name(t.regions["name_id"])
    assert (back.regions["kind"] == t.regions["kind"]).all()
    order = np.lexsort((t.gpu["correlation"], t.gpu["t_start"]))
    border = np.lexsort((back.gpu["correlation"], back.gpu["t_start"]))
    for col in ("t_queued", "t_submitted"):
        a, b = t.gpu[col][order], back.gpu[col][border]
        assert ((a == 0) == (b == 0)).all()
        assert (b[a != 0] - shift == a[a != 0]).all()


def test_a_simulated_capture_stays_simulated_through_an_export(tmp_path):
    from skipnative.testing import simulate_cuda
    from skipnative.trace import vendor

    gpu = simulate_cuda()
    with skipnative.capture() as cap:
        gpu.launch("k", duration_ns=1_000)
        gpu.sync()
    assert vendor(cap.trace) == "simulated"
    export_perfetto(cap.trace, str(tmp_path / "s.json"))
    assert vendor(skipnative.load(tmp_path / "s.json")) == "simulated"
    real = tmp_path / "r.json"
    export_perfetto(skipnative.load(NATIVE), str(real))
    assert vendor(skipnative.load(real)) == "NVIDIA"


def _many_iterations(n: int):
    """A simulated capture with latency timestamps, its one iteration repeated
    `n` times (built directly: capturing that many through the double is slow)."""
    from skipnative.testing import simulate_cuda

    gpu = simulate_cuda()
    with skipnative.capture(latency_timestamps=True) as cap:
        cap.mark("it0")
        gpu.launch("k", duration_ns=1_000)
        gpu.sync()
    t, step = cap.trace, 10_000
    k = next(i for i, r in enumerate(t.launches) if r["correlation"] == t.gpu["correlation"][0])
    launches = np.repeat(t.launches[k : k + 1], n)
    gpu_rows = np.repeat(t.gpu[:1], n)
    regions = np.repeat(t.regions[:1], n)
    strings = list(t.strings)
    shift = np.arange(n, dtype=np.int64) * step
    for col in ("t_begin", "t_end"):
        launches[col] += shift
        regions[col] = t.regions["t_begin"][0] + shift + (step if col == "t_end" else 0)
    for col in ("t_start", "t_end", "t_queued", "t_submitted"):
        gpu_rows[col] += shift
    launches["correlation"] = gpu_rows["correlation"] = np.arange(1, n + 1)
    regions["name_id"] = np.arange(len(strings), len(strings) + n)
    strings += [f"it{i}" for i in range(n)]
    return skipnative.Trace(
        launches=launches,
        gpu=gpu_rows,
        ops=t.ops[:0],
        regions=regions,
        strings=strings,
        meta=t.meta,
    )


def test_a_big_native_export_reads_back_every_region_and_latency(tmp_path):
    from skipnative.trace import vendor

    t = _many_iterations(30_000)  # its regions' JSON alone is more than 1 MiB
    out = tmp_path / "big.json"
    export_perfetto(t, str(out))
    back = skipnative.load(out)
    assert vendor(back) == "simulated"
    assert len(back.regions) == len(t.regions) == 30_000
    assert back.name(back.regions["name_id"]) == t.name(t.regions["name_id"])
    assert (back.regions["kind"] == t.regions["kind"]).all()
    shift = int(back.regions["t_begin"][0] - t.regions["t_begin"][0])
    assert (back.regions["t_end"] - shift == t.regions["t_end"]).all()
    assert len(back.gpu) == len(t.gpu)
    for col in ("t_queued", "t_submitted"):
        assert (t.gpu[col] != 0).all() and (back.gpu[col] - shift == t.gpu[col]).all()
