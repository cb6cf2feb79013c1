"""Cross-stream waits: read from Kineto's cuda_sync events, kept by .skip files and
exports, and honoured by the what-if replay (a row that waits for another
stream's work never starts before that work ends)."""

from __future__ import annotations

import copy
import gzip
import json
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import skipnative
from kineto_gen import event_sync, kernel, launch, step, stream_sync, stream_wait, write
from realdata import DATA
from skipnative import TraceError
from skipnative.analysis.whatif import replay
from skipnative.io.perfetto import export_perfetto
from skipnative.trace import HOST_WAITS

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


def test_the_reader_keeps_the_waits_on_one_stream(tmp_path):
    t = two_streams(tmp_path)
    assert t.waits.tolist() == [(3, 2, 0, 20, 7)]
    # a stream sync: the calling thread (HOST_WAITS) waits for its stream's work
    # launched before the sync call itself; a context sync waits for all, as any
    # sync call is taken to: not kept
    doc = json.loads((tmp_path / "w.json").read_text())
    doc["traceEvents"][5] = stream_sync(1020, 5, stream=7)
    doc["traceEvents"].append(stream_sync(1500, 5, stream=4294967295, name="Context Sync"))
    (tmp_path / "s.json").write_text(json.dumps(doc))
    assert skipnative.load(tmp_path / "s.json").waits.tolist() == [(5, 5, 0, HOST_WAITS, 7)]
    # one that does not name its stream says nothing: ignored
    del doc["traceEvents"][5]["args"]["stream"]
    (tmp_path / "n.json").write_text(json.dumps(doc))
    assert len(skipnative.load(tmp_path / "n.json").waits) == 0


def busy_side_stream(tmp_path):
    """A cudaStreamSynchronize of stream 7 (200..1045 us) waits for kernel B on 7
    (40..1040) while kernel A on stream 20 runs on to 5020; then C on stream 7."""
    ev = [
        step(0, 6000, 1),
        launch(10, 5, 1),
        kernel(20, 5000, 1, name="A", stream=20),
        launch(30, 5, 2),
        kernel(40, 1000, 2, name="B", stream=7),
        launch(200, 845, 3, name="cudaStreamSynchronize"),
        stream_sync(200, 3, stream=7),
        launch(1100, 5, 4),
        kernel(1110, 100, 4, name="C", stream=7),
        launch(5100, 10, 5, name="cudaDeviceSynchronize"),
    ]
    return skipnative.load(write(tmp_path / "sync.json", ev))


def call(t, name):
    return t.launches[np.array(t.name(t.launches["name_id"])) == name][0]


def test_a_stream_sync_waits_for_its_own_stream_not_for_the_whole_gpu(tmp_path):
    """The replay took every sync to wait for all the GPU's work: a stream sync
    that returned 5 us after its stream's last kernel, while another stream ran
    on, read as one that had not waited, so a 2x slower CPU doubled its measured
    wait (to 1,690 us) instead of keeping it tied to the kernel it waits for."""
    t = busy_side_stream(tmp_path)
    same = replay(t)
    for name in ("cudaStreamSynchronize", "cudaLaunchKernel"):
        assert call(same, name).tolist() == call(t, name).tolist()
    for f in ("t_start", "t_end"):
        assert same.gpu[f].tolist() == t.gpu[f].tolist()
    for scale in (2.0, 0.5):
        p = replay(t, cpu_scale=scale)
        sync, b = call(p, "cudaStreamSynchronize"), rows(p, "B")
        # it returns 5 us after B ends, as measured: B's end, not A's, decides it
        assert sync["t_end"] == max(sync["t_begin"], b["t_end"] + 5 * US)
        assert sync["t_end"] < rows(p, "A")["t_end"]
        assert rows(p, "C")["t_start"] > sync["t_end"]


def test_stream_syncs_survive_an_export(tmp_path):
    t = busy_side_stream(tmp_path)
    export_perfetto(t, tmp_path / "x.json")
    back = skipnative.load(tmp_path / "x.json")
    assert back.waits.tolist() == t.waits.tolist() == [(3, 3, 0, HOST_WAITS, 7)]
    t.save(tmp_path / "x.skip")
    assert skipnative.load(tmp_path / "x.skip").waits.tolist() == t.waits.tolist()


@pytest.mark.parametrize(
    "arg, value, problem",
    [
        ("wait_on_stream", -(2**64), "'args.wait_on_stream' is out of range"),
        ("wait_on_cuda_event_record_corr_id", "x", "corr_id' is not a number"),
        ("device", 2**40, "'args.device' 1099511627776 is not a device index"),
        ("correlation", 1.5, "'args.correlation' is not an integer"),
    ],
)
@pytest.mark.parametrize("wait", [stream_wait(1, 3, 2, 20, 7), event_sync(1, 3, 2, 7)])
def test_a_wait_written_wrongly_is_refused_by_event_and_field(tmp_path, arg, value, problem, wait):
    doc = {"traceEvents": [copy.deepcopy(wait)]}
    doc["traceEvents"][0]["args"][arg] = value
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(TraceError) as e:
        skipnative.load(tmp_path / "bad.json")
    msg = str(e.value)
    assert "bad.json" in msg and "traceEvents[0]" in msg and problem in msg, msg


@pytest.mark.parametrize(
    "arg", ["wait_on_stream", "wait_on_cuda_event_record_corr_id", "stream", "correlation"]
)
def test_a_wait_that_does_not_say_what_it_waits_for_is_ignored(tmp_path, arg):
    """A trace that loaded before waits were read still loads (a writer that leaves
    out the record or the stream gives the replay nothing to use)."""
    two_streams(tmp_path)
    doc = json.loads((tmp_path / "w.json").read_text())
    del doc["traceEvents"][5]["args"][arg]
    (tmp_path / "partial.json").write_text(json.dumps(doc))
    t = skipnative.load(tmp_path / "partial.json")
    assert len(t.waits) == 0 and len(t.gpu) == 2


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


def long_over(tmp_path, *, record_after_wait=False, devices=(0, 0)):
    """A ended long before B's launch (B starts 4 us after its call returns): the
    wait holds but decides nothing."""
    rec, wait = (9005, 9000) if record_after_wait else (9000, 9005)
    ev = [
        step(0, 20000, 1),
        launch(10, 5, 1),
        kernel(20, 80, 1, name="A", stream=7, device=devices[0]),  # ends at 100
        launch(rec, 3, 2, name="cudaEventRecord"),
        launch(wait, 3, 3, name="cudaStreamWaitEvent"),
        stream_wait(9006, 3, 2, stream=20, on_stream=7, device=devices[1]),
        launch(9010, 5, 4),
        kernel(9019, 50, 4, name="B", stream=20, device=devices[1]),
        launch(10000, 100, 5, name="cudaDeviceSynchronize"),
    ]
    return skipnative.load(write(tmp_path / "long.json", ev))


@pytest.mark.parametrize("scale", [0.25, 0.5])
def test_a_wait_that_decided_nothing_does_not_hold_the_kernel_back(tmp_path, scale):
    """B keeps its 4 us after its (now earlier) call; the wait's 8.9 ms measured lag,
    host time really, is not a distance the replay keeps."""
    t = long_over(tmp_path)
    assert len(t.waits) == 1
    p = replay(t, cpu_scale=scale)
    b = rows(p, "B")
    b_call = p.launches[p.launches["correlation"] == 4][0]
    assert b["t_start"] == b_call["t_end"] + 4 * US


def test_graphs_keep_a_wait_that_decided_nothing_as_an_order_only(tmp_path):
    """As one graph B is launched right behind A: it starts when A ends, not at the
    measured 8.9 ms after it."""
    p = replay(long_over(tmp_path), graphs=True)
    assert rows(p, "B")["t_start"] == rows(p, "A")["t_end"]


def test_a_wait_on_a_later_record_is_left_out(tmp_path):
    """A record call after the wait call cannot be the one waited for (the trace
    contradicts itself; here its kernel is even launched after the waiting one):
    the unchanged replay stays exact."""
    ev = [
        step(0, 3000, 1),
        launch(1, 1, 9),
        kernel(3, 5, 9, name="X", stream=20),
        launch(5, 1, 3, name="cudaStreamWaitEvent"),
        stream_wait(5, 3, 2, stream=20, on_stream=7),
        launch(10, 5, 4),
        kernel(1025, 50, 4, name="B", stream=20),
        launch(300, 5, 1),
        kernel(310, 710, 1, name="A", stream=7),
        launch(400, 3, 2, name="cudaEventRecord"),
        launch(1500, 1200, 5, name="cudaDeviceSynchronize"),
    ]
    t = skipnative.load(write(tmp_path / "later.json", ev))
    assert len(t.waits) == 1
    assert replay(t).gpu["t_start"].tolist() == t.gpu["t_start"].tolist()


@pytest.mark.parametrize("wait_device", [1, 0])
def test_a_wait_on_another_devices_stream_is_found(tmp_path, wait_device):
    """Stream 7 is on device 0, the waiting stream on device 1, and the wait names
    either device (writers differ): the stream ids name one stream each, so the
    wait holds across the devices."""
    same_device = two_streams(tmp_path)
    doc = json.loads((tmp_path / "w.json").read_text())
    for e in doc["traceEvents"]:
        if e.get("cat") in ("kernel", "cuda_sync") and e["args"].get("stream") == 20:
            e["args"]["device"] = e["pid"] = 1
        if e.get("cat") == "cuda_sync":
            e["args"]["device"] = e["pid"] = wait_device
    (tmp_path / "x.json").write_text(json.dumps(doc))
    t = skipnative.load(tmp_path / "x.json")
    assert len(same_device.waits) == len(t.waits) == 1
    p = replay(t, cpu_scale=0.25)
    assert rows(p, "B")["t_start"] == rows(p, "A")["t_end"] + 5 * US


def test_fusion_moves_a_wait_to_the_kernel_that_holds_the_waiting_work(tmp_path):
    """Stream 20 runs P then Q per step; Q waits for A on stream 7. Fusing (P, Q) puts
    Q's work into P's kernel, which must now wait for A, in every step, and no
    step's wait may fall on the next step's kernel."""
    ev, rec = [], 100
    for i in range(3):
        t0 = i * 3000
        ev += [
            step(t0, 2900, i + 1),
            launch(t0 + 10, 5, rec + 1),
            kernel(t0 + 20, 1000, rec + 1, name="A", stream=7),
            launch(t0 + 30, 5, rec + 2),
            kernel(t0 + 40, 10, rec + 2, name="P", stream=20),
            launch(t0 + 60, 3, rec + 3, name="cudaEventRecord"),
            launch(t0 + 70, 3, rec + 4, name="cudaStreamWaitEvent"),
            stream_wait(t0 + 71, rec + 4, rec + 3, stream=20, on_stream=7),
            launch(t0 + 80, 5, rec + 5),
            kernel(t0 + 1025, 50, rec + 5, name="Q", stream=20),
            launch(t0 + 90, 1100, rec + 6, name="cudaDeviceSynchronize"),
        ]
        rec += 10
    t = skipnative.load(write(tmp_path / "f.json", ev))
    p = replay(t, cpu_scale=0.25, fuse=[("P", "Q")])
    names = np.array(p.name(p.gpu["name_id"]))
    a, fused = p.gpu[names == "A"], p.gpu[names == "P"]
    assert len(fused) == 3 and "Q" not in names
    assert (fused["t_start"] >= a["t_end"]).all()
    assert (fused["t_start"] - a["t_end"] < 100 * US).all()


def test_a_stream_sync_keeps_its_stream_when_graphs_renumber_the_calls(tmp_path):
    """_apply_graphs drops kernel launch rows: a sync keyed by its launch row
    took another sync's stream (and returned before the kernel it waited for)."""
    ev = [
        step(0, 6000, 1),
        launch(10, 5, 1),
        kernel(20, 3000, 1, name="A", stream=20),
        launch(30, 5, 2),
        kernel(40, 500, 2, name="B1", stream=7),
        launch(100, 445, 3, name="cudaStreamSynchronize"),
        stream_sync(100, 3, stream=7),
        launch(600, 5, 4),
        kernel(610, 100, 4, name="B2", stream=7),
        launch(800, 2225, 5, name="cudaStreamSynchronize"),
        stream_sync(800, 5, stream=20),
    ]
    t = skipnative.load(write(tmp_path / "g.json", ev))
    p = replay(t, graphs=True)
    sync = p.launches[p.launches["correlation"] == 5][0]
    assert sync["t_end"] == rows(p, "A")["t_end"] + 5 * US


def test_a_stream_sync_on_rows_without_launch_calls_is_reproduced(tmp_path):
    """The stream's awaited row has no launch call (kept at its measured times):
    the unchanged replay made the sync wait for the other stream's kernel."""
    ev = [
        step(0, 6000, 1),
        launch(10, 5, 1),
        kernel(20, 5000, 1, name="A", stream=20),
        kernel(40, 1000, 99, name="B", stream=7),
        launch(200, 845, 3, name="cudaStreamSynchronize"),
        stream_sync(200, 3, stream=7),
    ]
    t = skipnative.load(write(tmp_path / "l.json", ev))
    assert (
        call(replay(t), "cudaStreamSynchronize").tolist()
        == call(t, "cudaStreamSynchronize").tolist()
    )


def test_a_stream_sync_on_a_stream_the_trace_lacks_waits_for_all(tmp_path):
    """Its stream has no GPU row (an id the trace does not use): it was taken to
    have waited for nothing, and a faster CPU returned it before its kernel ended."""
    ev = [
        step(0, 3000, 1),
        launch(10, 5, 1),
        kernel(20, 1000, 1, name="B", stream=7),
        launch(30, 995, 2, name="cudaStreamSynchronize"),
        stream_sync(30, 2, stream=4294967295),
    ]
    t = skipnative.load(write(tmp_path / "u.json", ev))
    p = replay(t, cpu_scale=0.5)
    assert call(p, "cudaStreamSynchronize")["t_end"] == rows(p, "B")["t_end"] + 5 * US


def event_synced(tmp_path, *, record_corr=2, name="e.json"):
    """An event recorded on stream 7 after kernel A (20..1020 us); kernel B, launched
    after the record, queues behind A on 7 (to 5020); a cudaEventSynchronize
    (200..1025) returns 5 us after A, the work it waits for, long before B ends;
    then C on 7."""
    ev = [
        step(0, 6000, 1),
        launch(10, 5, 1),
        kernel(20, 1000, 1, name="A", stream=7),
        launch(30, 3, 2, name="cudaEventRecord"),
        launch(40, 5, 3),
        kernel(1020, 4000, 3, name="B", stream=7),
        launch(200, 825, 4, name="cudaEventSynchronize"),
        event_sync(200, 4, record_corr, on_stream=7),
        launch(1100, 5, 5),
        kernel(5020, 100, 5, name="C", stream=7),
        launch(5200, 10, 6, name="cudaDeviceSynchronize"),
    ]
    return skipnative.load(write(tmp_path / name, ev))


def test_the_reader_keeps_an_event_sync_as_a_wait_of_the_thread(tmp_path):
    t = event_synced(tmp_path)
    # the thread waits for stream 7's work before the record call (2), not the sync's
    assert t.waits.tolist() == [(4, 2, 0, HOST_WAITS, 7)]
    export_perfetto(t, tmp_path / "x.json")
    assert skipnative.load(tmp_path / "x.json").waits.tolist() == t.waits.tolist()
    t.save(tmp_path / "x.skip")
    assert skipnative.load(tmp_path / "x.skip").waits.tolist() == t.waits.tolist()


def test_an_event_sync_waits_for_the_work_before_its_record_not_all_the_gpu(tmp_path):
    """An event sync was taken to wait for all the GPU: returning long before B (on
    the same stream, launched after the record) ended, it read as a call that had
    not waited, so a 2x slower CPU doubled its measured wait (to 1,650 us) instead
    of keeping it tied to A, and a faster CPU returned it before A ended."""
    t = event_synced(tmp_path)
    same = replay(t)
    assert call(same, "cudaEventSynchronize").tolist() == call(t, "cudaEventSynchronize").tolist()
    for f in ("t_start", "t_end"):
        assert same.gpu[f].tolist() == t.gpu[f].tolist()
    for scale in (2.0, 0.5):
        p = replay(t, cpu_scale=scale)
        sync = call(p, "cudaEventSynchronize")
        assert sync["t_end"] == max(sync["t_begin"], rows(p, "A")["t_end"] + 5 * US)
        assert sync["t_end"] < rows(p, "B")["t_end"]


def test_an_event_sync_whose_record_the_trace_lacks_waits_for_all(tmp_path):
    """Kineto writes -1 where it did not see the record: nothing says which work
    the call waited for, so the replay takes it to wait for all, as any sync call."""
    t = event_synced(tmp_path, record_corr=-1)
    assert t.waits.tolist() == [(4, -1, 0, HOST_WAITS, 7)]
    blind = replace(t, waits=t.waits[:0])
    for scale in (2.0, 0.5):
        got, want = replay(t, cpu_scale=scale), replay(blind, cpu_scale=scale)
        assert got.launches.tolist() == want.launches.tolist()


def test_waits_the_trace_does_not_name_are_counted_and_said(tmp_path, capsys):
    """A trace without cuda_sync events (torch.profiler's default) gave no sign that
    the replay lets the work after a cudaStreamWaitEvent run early when the
    awaited work is delayed (the A100 control trace under --graphs: each step's
    side-stream copies ran ahead, so predicted IL grew step by step)."""
    from skipnative.analysis.whatif_waits import unknown_waits
    from skipnative.cli.main import main

    t = two_streams(tmp_path)
    assert unknown_waits(t) == (0, 1)
    doc = json.loads((tmp_path / "w.json").read_text())
    del doc["traceEvents"][5]  # the Stream Wait Event
    (tmp_path / "blind.json").write_text(json.dumps(doc))
    assert unknown_waits(skipnative.load(tmp_path / "blind.json")) == (1, 1)
    # a wait whose record call the trace lacks says nothing either
    doc = json.loads((tmp_path / "w.json").read_text())
    doc["traceEvents"][5]["args"]["wait_on_cuda_event_record_corr_id"] = 99
    (tmp_path / "norec.json").write_text(json.dumps(doc))
    assert unknown_waits(skipnative.load(tmp_path / "norec.json")) == (1, 1)

    assert main(["whatif", str(tmp_path / "blind.json"), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["unknown_waits"] == {"calls": 1, "of": 1}
    (note,) = out.err.strip().splitlines()
    assert note.startswith("skip: note: ") and "blind.json: 1 of 1 cudaStreamWaitEvent" in note
    assert main(["whatif", str(tmp_path / "w.json")]) == 0
    assert capsys.readouterr().err == ""


def test_the_report_says_how_many_waits_its_replays_cannot_keep(tmp_path):
    pytest.importorskip("matplotlib")
    from skipnative.report import sweep_data, write_report

    two_streams(tmp_path)
    doc = json.loads((tmp_path / "w.json").read_text())
    del doc["traceEvents"][5]  # the Stream Wait Event
    (tmp_path / "blind.json").write_text(json.dumps(doc))
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    for b, path in ((1, "blind.json"), (2, "w.json")):
        skipnative.load(tmp_path / path).save(sweep / f"b{b}.skip")
    (sweep / "sweep.json").write_text(
        json.dumps({"card": "test", "phase": "prefill", "points": [{"batch": 1}, {"batch": 2}]})
    )
    assert sweep_data(str(sweep))["unknown_waits"] == [1, 2]
    text = Path(write_report(str(sweep), str(tmp_path / "r"))).read_text()
    assert "1 of 2 `cudaStreamWaitEvent` calls do not say which work they wait for" in text
    # no replay, no sentence
    none = write_report(str(sweep), str(tmp_path / "n"), whatif_graphs=False, whatif_cpu=())
    assert "cudaStreamWaitEvent" not in Path(none).read_text()


def test_an_event_sync_replayed_before_its_record_waits_for_the_stream_so_far(tmp_path):
    """The record is on another thread that a faster CPU replays later than the
    sync: the sync took all the GPU's work so far (a kernel on an unrelated stream
    to 5030 us) plus the tail measured from the recorded work, ending at 5031 us
    instead of 5 us after A."""
    ev = [
        step(0, 20000, 1),
        launch(10, 2, 1, tid=1),
        kernel(20, 1000, 1, name="A", stream=7),
        launch(13, 2, 2, tid=1),
        kernel(25, 300, 2, name="K", stream=9),
        launch(16, 2, 3, tid=1),
        kernel(30, 5000, 3, name="L", stream=11),
        launch(20, 310, 4, name="cudaStreamSynchronize", tid=1),
        stream_sync(20, 4, 9),
        launch(340, 3, 5, name="cudaEventRecord", tid=1),
        launch(350, 3, 6, tid=1),
        kernel(1020, 2000, 6, name="B", stream=7),
        launch(400, 625, 7, name="cudaEventSynchronize", tid=2),
        event_sync(400, 7, 5, on_stream=7),
    ]
    t = skipnative.load(write(tmp_path / "x.json", ev))
    p = replay(t, cpu_scale=0.5)
    assert call(p, "cudaEventSynchronize")["t_begin"] < call(p, "cudaEventRecord")["t_begin"]
    assert call(p, "cudaEventSynchronize")["t_end"] == rows(p, "A")["t_end"] + 5 * US


def test_one_record_awaited_for_streams_on_two_devices_keeps_each(tmp_path):
    """Two event syncs name one record, with stream 7 on two devices: one snapshot
    per record gave one sync the other stream's end (the unchanged replay moved
    both)."""
    ev = [
        step(0, 20000, 1),
        launch(10, 5, 1),
        kernel(20, 1000, 1, name="A0", stream=7, device=0),
        launch(20, 5, 2),
        kernel(30, 2000, 2, name="A1", stream=7, device=1),
        launch(30, 3, 3, name="cudaEventRecord"),
        launch(40, 985, 4, name="cudaEventSynchronize"),
        event_sync(40, 4, 3, on_stream=7, device=0),
        launch(1100, 935, 5, name="cudaEventSynchronize"),
        event_sync(1100, 5, 3, on_stream=7, device=1),
    ]
    t = skipnative.load(write(tmp_path / "d.json", ev))
    assert replay(t).launches.tolist() == t.launches.tolist()


@pytest.mark.parametrize("stream", [None, "0x0", 4294967295])
def test_an_event_syncs_own_stream_is_neither_needed_nor_checked(tmp_path, stream):
    """CUPTI names no stream for an event sync (Kineto writes -1): the reader
    dropped one without it and refused a trace where it was not a number."""
    ev = event_sync(200, 4, 2, on_stream=7)
    if stream is None:
        del ev["args"]["stream"]
    else:
        ev["args"]["stream"] = stream
    t = skipnative.load(write(tmp_path / "s.json", [launch(30, 3, 2, name="cudaEventRecord"), ev]))
    assert t.waits.tolist() == [(4, 2, 0, HOST_WAITS, 7)]
