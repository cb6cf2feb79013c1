"""Native captures of cross-stream waits (capture option stream_waits): CUPTI's event
and synchronisation records, through the CUPTI double, joined into Trace.waits."""

from __future__ import annotations

import time

import numpy as np
import pytest
from test_run import LAUNCHER, skip_run

import skipnative
from skipnative import _native
from skipnative.analysis.whatif import replay
from skipnative.capturing.waits import waits_from_events
from skipnative.io import runfolder
from skipnative.trace import GPU_DTYPE, HOST_WAITS

COST, LATENCY = 2000, 1000


def waiting_work(gpu, *, record_event=5):
    """A (200 us) on stream 7, the event recorded behind it, stream 20 made to wait,
    then B on stream 20: B starts when A ends, though launched long before."""
    gpu.launch("A", 200_000, stream=7)
    gpu.advance(10_000)
    rec = gpu.event_record(record_event, stream=7)
    wait = gpu.stream_wait_event(record_event, stream=20)
    gpu.launch("B", 5_000, stream=20)
    gpu.sync()
    return rec, wait


def rows(t, name):
    return t.gpu[np.array(t.name(t.gpu["name_id"])) == name][0]


# 130001: CUDA 13 (CudaEvent2, sync ids); 24: CUDA 12.6 (first versions: no sync id)
@pytest.mark.parametrize("version", [130001, 26, 24])
def test_a_wait_joins_the_record_it_waits_on(gpu, version):
    gpu.reset(version)
    gpu.configure(launch_cost_ns=COST, submit_latency_ns=LATENCY)
    with skipnative.capture(clock="library", stream_waits=True) as cap:
        rec, wait = waiting_work(gpu)
    t = cap.trace
    assert t.waits.tolist() == [(wait, rec, 0, 20, 7)]
    a, b = rows(t, "A"), rows(t, "B")
    assert b["t_start"] == a["t_end"]  # the double ran the wait


def test_without_the_sync_id_a_wait_takes_the_events_latest_earlier_record(gpu):
    """CUPTI before 12.8: the event recorded twice, waited on after the second
    record, is the second record's wait (as CUDA defines it)."""
    gpu.reset(24)
    gpu.configure(launch_cost_ns=COST, submit_latency_ns=LATENCY)
    with skipnative.capture(clock="library", stream_waits=True) as cap:
        gpu.event_record(5, stream=7)
        gpu.launch("A", 200_000, stream=7)
        second = gpu.event_record(5, stream=7)
        wait = gpu.stream_wait_event(5, stream=20)
        gpu.event_record(5, stream=7)  # a later record: not the one waited on
        gpu.launch("B", 5_000, stream=20)
        gpu.sync()
    assert cap.trace.waits.tolist() == [(wait, second, 0, 20, 7)]


def test_the_replay_keeps_a_captured_wait(gpu):
    with skipnative.capture(clock="library", stream_waits=True) as cap:
        waiting_work(gpu)
    p = replay(cap.trace, cpu_scale=0.25)
    assert rows(p, "B")["t_start"] >= rows(p, "A")["t_end"]
    unchanged = replay(cap.trace)
    assert unchanged.gpu["t_start"].tolist() == cap.trace.gpu["t_start"].tolist()


@pytest.mark.parametrize("version", [130001, 24])
def test_a_stream_sync_is_a_wait_of_its_thread_on_its_stream(gpu, version):
    """A cudaStreamSynchronize of stream 7 while stream 20 runs on: kept as the
    thread's wait on stream 7, so the replay returns it after stream 7's work
    (with a slower CPU it kept its measured length, as if it had not waited)."""
    gpu.reset(version)
    gpu.configure(launch_cost_ns=COST, submit_latency_ns=LATENCY)
    with skipnative.capture(clock="library", stream_waits=True) as cap:
        gpu.launch("A", 5_000_000, stream=20)
        gpu.launch("B", 1_000_000, stream=7)
        corr = gpu.stream_sync(7)
        gpu.launch("C", 100_000, stream=7)
        gpu.sync()
    t = cap.trace
    assert t.waits.tolist() == [(corr, corr, 0, HOST_WAITS, 7)]
    sync = t.launches[t.launches["correlation"] == corr][0]
    assert rows(t, "B")["t_end"] <= sync["t_end"] < rows(t, "A")["t_end"]
    replayed_sync_follows(t, corr, "B")


def replayed_sync_follows(t, corr: int, name: str) -> None:
    """With a 2x slower and a 2x faster CPU, sync call `corr` returns the measured
    tail after kernel `name` ends (or at once, where it ends before the call)."""
    sync = t.launches[t.launches["correlation"] == corr][0]
    tail = int(sync["t_end"] - rows(t, name)["t_end"])
    for scale in (2.0, 0.5):
        p = replay(t, cpu_scale=scale)
        s = p.launches[p.launches["correlation"] == corr][0]
        assert s["t_end"] == max(s["t_begin"], rows(p, name)["t_end"] + tail)


def test_waits_are_recorded_only_when_asked_for(gpu):
    cuda_event, synchronization = 36, 38  # CUPTI_ACTIVITY_KIND_*
    with skipnative.capture(clock="library") as cap:
        assert not gpu.kind_enabled(cuda_event) and not gpu.kind_enabled(synchronization)
        waiting_work(gpu)
    assert len(cap.trace.waits) == 0
    with skipnative.capture(clock="library", stream_waits=True) as cap:
        assert gpu.kind_enabled(cuda_event) and gpu.kind_enabled(synchronization)
        waiting_work(gpu)
    assert len(cap.trace.waits) == 1


def test_waits_survive_a_skip_file(gpu, tmp_path):
    with skipnative.capture(clock="library", stream_waits=True) as cap:
        waiting_work(gpu)
    cap.trace.save(str(tmp_path / "w.skip"))
    assert skipnative.load(tmp_path / "w.skip").waits.tolist() == cap.trace.waits.tolist()


def test_a_wait_with_the_launch_hooks_is_refused_with_the_reason(gpu):
    with pytest.raises(ValueError, match="stream_waits needs launch_records 'callbacks' or"):
        skipnative.capture(stream_waits=True, launch_records="hook")


def test_event_rows_count_against_the_gpu_row_cap(gpu):
    """max_gpu_records bounds what decoding keeps, event rows included."""
    cap = skipnative.capture(clock="library", stream_waits=True, max_gpu_records=2).start()
    waiting_work(gpu)
    gpu.launch("C", 1000, stream=7)
    with pytest.warns(RuntimeWarning, match="max_gpu_records"):
        cap.stop()
    t = cap.trace
    assert len(t.gpu) + len(cap.raw()["events"]) == 2


def test_skip_run_records_the_waits_of_each_process(tmp_path):
    """skip run --stream-waits: the dump carries the event rows, and the process's
    .skip its wait, from the launcher's first stream to the one made to wait."""

    r = skip_run(tmp_path, "--stream-waits", "--", *LAUNCHER, "10", "--waits")
    assert r.returncode == 0, r.stderr
    p = runfolder.read_run(tmp_path)["processes"][0]
    t = skipnative.load(tmp_path / p["file"])
    assert len(t.waits) == 1
    w = t.waits[0]
    first, after = rows(t, "kernel_b0"), rows(t, "after_wait")
    assert (int(w["on_stream"]), int(w["stream"])) == (int(first["stream"]), int(after["stream"]))
    names = dict(zip(t.launches["correlation"].tolist(), t.name(t.launches["name_id"])))
    assert names[int(w["correlation"])] == "cudaStreamWaitEvent"
    assert names[int(w["record_correlation"])] == "cudaEventRecord"
    # and without the option, none
    r = skip_run(tmp_path / "plain", "--", *LAUNCHER, "10", "--waits")
    assert r.returncode == 0, r.stderr
    p = runfolder.read_run(tmp_path / "plain")["processes"][0]
    assert len(skipnative.load(tmp_path / "plain" / p["file"]).waits) == 0


@pytest.mark.parametrize("version", [130001, 24])
def test_a_wait_across_devices_keeps_its_order(gpu, version):
    """Stream 7 of device 0 records, stream 20 of device 1 waits: the wait names the
    waiting stream's device, and the replay keeps B behind A."""
    gpu.reset(version)
    gpu.configure(launch_cost_ns=COST, submit_latency_ns=LATENCY, device=0)
    with skipnative.capture(clock="library", stream_waits=True) as cap:
        gpu.launch("A", 200_000, stream=7)
        gpu.advance(10_000)
        rec = gpu.event_record(5, stream=7)
        gpu.configure(launch_cost_ns=COST, submit_latency_ns=LATENCY, device=1)
        wait = gpu.stream_wait_event(5, stream=20)
        gpu.launch("B", 5_000, stream=20)
        gpu.sync()
    t = cap.trace
    assert t.waits.tolist() == [(wait, rec, 1, 20, 7)]
    p = replay(t, cpu_scale=0.25)
    assert rows(p, "B")["t_start"] >= rows(p, "A")["t_end"]


@pytest.mark.parametrize("version", [24, 130001])
def test_a_lost_record_is_never_replaced_by_an_older_one(gpu, version):
    """The event's second record is lost (no buffer for it): the wait on it is left
    out, not joined to the first record (CUPTI before 12.8 gives no sync id)."""
    gpu.reset(version)
    gpu.configure(launch_cost_ns=COST, submit_latency_ns=LATENCY)
    opts = {"activity_buffer_bytes": 4096, "max_activity_buffers": 2}
    cap = skipnative.capture(clock="library", stream_waits=True, **opts).start()
    first = gpu.event_record(5, stream=7)
    gpu.launch_many(400, "k", 10)  # the two buffers are full
    gpu.event_record(5, stream=7)  # its record has no buffer
    gpu.deliver_buffers()
    gpu.stream_wait_event(5, stream=20)
    gpu.sync()
    with pytest.warns(RuntimeWarning, match="dropped"):
        cap.stop()
    assert first not in cap.trace.waits["record_correlation"].tolist()


def test_many_waits_on_one_event_join_in_near_linear_time():
    """Before CUPTI 12.8 every wait looks up its event's latest earlier record: a
    search, not a scan (a decode loop reuses one event each step)."""

    def join(n):
        ev = np.zeros(2 * n, dtype=_native.record_dtypes()["events"])
        ev["correlation"] = np.arange(1, 2 * n + 1)
        ev["kind"] = np.tile([0, 1], n)  # record, wait, record, wait, ...: one event
        ev["event_id"], ev["context"], ev["device"] = 5, 1, 0xFFFFFFFF
        ev["stream"] = np.tile([7, 20], n)
        t0 = time.perf_counter()
        w = waits_from_events(ev, np.zeros(0, dtype=GPU_DTYPE))
        assert w["record_correlation"].tolist() == list(range(1, 2 * n, 2))
        return time.perf_counter() - t0

    small, large = min(join(2000) for _ in range(3)), min(join(16000) for _ in range(3))
    assert large < 20 * small  # 8x the waits: a scan would take ~64x


def test_skip_run_refuses_waits_with_the_hooks_before_starting(tmp_path):
    r = skip_run(tmp_path, "--stream-waits", "--launch-records", "hook", "--", *LAUNCHER, "1")
    assert r.returncode == 2  # a usage error
    assert r.stderr.startswith("skip: error: --stream-waits needs --launch-records callbacks")
    assert len(r.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.skip"))


@pytest.mark.parametrize("version", [130001, 24])
def test_an_event_sync_is_a_wait_of_its_thread_on_the_record(gpu, version):
    """A cudaEventSynchronize of an event recorded on stream 7 after A, while B,
    launched after the record, runs on 7: kept as the thread's wait on stream 7's
    work before the record (the record's correlation), so the replay returns it
    after A, not after B nor at its measured length."""
    gpu.reset(version)
    gpu.configure(launch_cost_ns=COST, submit_latency_ns=LATENCY)
    with skipnative.capture(clock="library", stream_waits=True) as cap:
        gpu.launch("A", 1_000_000, stream=7)
        rec = gpu.event_record(5, stream=7)
        gpu.launch("B", 5_000_000, stream=7)
        corr = gpu.event_sync(5)
        gpu.launch("C", 100_000, stream=7)
        gpu.sync()
    t = cap.trace
    assert t.waits.tolist() == [(corr, rec, 0, HOST_WAITS, 7)]
    sync = t.launches[t.launches["correlation"] == corr][0]
    assert rows(t, "A")["t_end"] <= sync["t_end"] < rows(t, "B")["t_end"]
    replayed_sync_follows(t, corr, "A")


def test_an_event_sync_on_an_event_never_recorded_in_the_capture_is_left_out(gpu):
    with skipnative.capture(clock="library", stream_waits=True) as cap:
        gpu.launch("A", 100_000, stream=7)
        gpu.event_sync(9)
        gpu.sync()
    assert len(cap.trace.waits) == 0
