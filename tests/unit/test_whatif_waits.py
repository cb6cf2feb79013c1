"""Cross-stream waits: read from Kineto's cuda_sync events, kept by .skip files and
exports, and honoured by the what-if replay (a row that waits for another
stream's work never starts before that work ends)."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pytest

import skipnative
from kineto_gen import kernel, launch, step, stream_wait, write
from realdata import DATA
from skipnative import TraceError
from skipnative.analysis.whatif import replay
from skipnative.io.perfetto import export_perfetto

US = 1000
ALEXNET = DATA / "a100_alexnet_train.json.gz"  # 20 "Stream Wait Event" records


def two_streams(tmp_path, *, name="w.json"):
    """One thread: a long kernel A on stream 7, host work, then an event recorded
    on 7, stream 20 made to wait for it, and kernel B on 20. B starts 5 us after
    A ends (it waited), long after its own launch call returned."""
    ev = [
        step(0, 3000, 1),
        launch(10, 5, 1),
        kernel(20, 1000, 1, name="A", stream=7),  # 20..1020
        launch(400, 3, 2, name="cudaEventRecord"),
        launch(405, 3, 3, name="cudaStreamWaitEvent"),
        stream_wait(1020, 3, 2, stream=20, on_stream=7),
        launch(410, 5, 4),
        kernel(1025, 50, 4, name="B", stream=20),
        launch(1500, 1200, 5, name="cudaDeviceSynchronize"),
    ]
    return skipnative.load(write(tmp_path / name, ev))


def rows(t, name):
    return t.gpu[np.array(t.name(t.gpu["name_id"])) == name][0]


def test_the_reader_keeps_stream_waits_only(tmp_path):
    t = two_streams(tmp_path)
    assert t.waits.tolist() == [(3, 2, 0, 20, 7)]
    # stream and context synchronisation are the CPU's sync calls: not waits
    doc = json.loads((tmp_path / "w.json").read_text())
    doc["traceEvents"][5]["name"] = "Stream Sync"
    (tmp_path / "s.json").write_text(json.dumps(doc))
    assert len(skipnative.load(tmp_path / "s.json").waits) == 0


@pytest.mark.parametrize(
    "arg, value, problem",
    [
        ("wait_on_stream", None, "missing 'args.wait_on_stream'"),
        ("wait_on_cuda_event_record_corr_id", "x", "corr_id' is not a number"),
        ("device", 2**40, "'args.device' 1099511627776 is not a device index"),
        ("correlation", None, "missing 'args.correlation'"),
    ],
)
def test_a_wait_the_replay_cannot_use_is_refused_by_event_and_field(tmp_path, arg, value, problem):
    doc = {"traceEvents": [stream_wait(1, 3, 2, 20, 7)]}
    args = doc["traceEvents"][0]["args"]
    if value is None:
        del args[arg]
    else:
        args[arg] = value
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(TraceError) as e:
        skipnative.load(tmp_path / "bad.json")
    msg = str(e.value)
    assert "bad.json" in msg and "traceEvents[0]" in msg and problem in msg, msg


def test_skip_files_and_exports_keep_the_waits(tmp_path):
    t = two_streams(tmp_path)
    t.save(str(tmp_path / "w.skip"))
    back = skipnative.load(tmp_path / "w.skip")
    assert back.waits.tolist() == t.waits.tolist()
    # an export of a trace that is no longer its source file writes them out
    export_perfetto(back, str(tmp_path / "w.trace.json"))
    again = skipnative.load(tmp_path / "w.trace.json")
    assert again.waits.tolist() == t.waits.tolist()


def test_a_skip_file_written_before_waits_reads_with_none(tmp_path):
    p = tmp_path / "old.skip"
    two_streams(tmp_path).save(str(p))
    data = p.read_bytes()
    magic, version, hlen = struct.unpack_from("<8sII", data)
    header = json.loads(data[16 : 16 + hlen])
    del header["tables"]["waits"]
    h = json.dumps(header).encode()
    p.write_bytes(struct.pack("<8sII", magic, version, len(h)) + h + data[16 + hlen :])
    t = skipnative.load(p)
    assert len(t.waits) == 0 and len(t.gpu) == 2


@pytest.mark.parametrize("scale", [0.25, 0.5, 2.0])
def test_the_waiting_kernel_follows_the_awaited_one_at_its_measured_lag(tmp_path, scale):
    """B waited for A: in the replay it starts its measured 5 us after A's replayed
    end, whether the CPU is faster (without the wait it would start before A ended)
    or slower (without it, B would keep its whole measured delay after its call)."""
    p = replay(two_streams(tmp_path), cpu_scale=scale)
    a, b = rows(p, "A"), rows(p, "B")
    b_call = p.launches[p.launches["correlation"] == 4][0]
    assert b["t_start"] == a["t_end"] + 5 * US
    assert b["t_start"] >= b_call["t_end"]


def test_a_wait_already_over_when_the_launch_returns_costs_nothing(tmp_path):
    """Four times slower, B's launch call returns after A has ended: B starts the
    latency of a kernel that did not wait (A's: 10 us after its call began, 5 us
    after it returned) after its call returns."""
    p = replay(two_streams(tmp_path), cpu_scale=4.0)
    a, b = rows(p, "A"), rows(p, "B")
    b_call = p.launches[p.launches["correlation"] == 4][0]
    assert b_call["t_end"] > a["t_end"]
    assert b["t_start"] == b_call["t_end"] + 5 * US


def test_unchanged_replay_of_waits_is_exact(tmp_path):
    t = two_streams(tmp_path)
    p = replay(t)
    assert p.gpu["t_start"].tolist() == t.gpu["t_start"].tolist()
    assert p.launches["t_end"].tolist() == t.launches["t_end"].tolist()


def _waits_in_the_file(path):
    """(wait call, record call, waiting stream, awaited stream) of each Stream Wait
    Event, read straight from the JSON."""
    with gzip.open(path) as f:
        doc = json.load(f)
    return [
        (
            a["correlation"],
            a["wait_on_cuda_event_record_corr_id"],
            a["stream"],
            a["wait_on_stream"],
        )
        for e in doc["traceEvents"]
        if e.get("cat") == "cuda_sync" and e.get("name") == "Stream Wait Event"
        for a in [e["args"]]
    ]


@pytest.mark.parametrize("scale", [0.25, 0.5, 1.0, 2.0])
def test_replay_of_a_real_trace_never_starts_work_before_what_it_waits_for(scale):
    """On the A100 training trace (stream 20 waits on 7 and 7 on 20-22, one thread
    launching; CUPTI correlation ids grow in call order): after each wait, the
    waiting stream's next work starts no earlier than the end of the awaited
    stream's work launched before the record."""
    t = skipnative.load(ALEXNET)
    p = replay(t, cpu_scale=scale)
    g = p.gpu
    checked = 0
    for wait, record, stream, on in _waits_in_the_file(ALEXNET):
        before = (g["stream"] == on) & (g["correlation"] < record) & (g["correlation"] >= 0)
        after = (g["stream"] == stream) & (g["correlation"] > wait)
        if before.any() and after.any():
            checked += 1
            assert g["t_start"][after].min() >= g["t_end"][before].max(), (wait, scale)
    assert checked >= 6
