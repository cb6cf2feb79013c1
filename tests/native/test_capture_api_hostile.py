"""The Python capture API used the way a careless or unlucky user does: options of
the wrong type or out of range, the raw tables edited in place, a capture stopped
by another thread while its `with` block ends, two threads starting captures at
once, a capture dropped while running. On the CUPTI test double."""

from __future__ import annotations

import gc
import re
import sys
import threading
import time

import numpy as np
import pytest

import skipnative
from skipnative import _native

# The kind of each option, from its native default (cupti/session.h).
_DEFAULTS = _native.capture_options()
_BOOLS = [n for n, d in _DEFAULTS.items() if isinstance(d, bool)]
_COUNTS = [n for n, d in _DEFAULTS.items() if isinstance(d, int) and not isinstance(d, bool)]
_STRINGS = [n for n, d in _DEFAULTS.items() if isinstance(d, str)]

# (option, value, exception): each a value no reading of the option can mean.
_WRONG: list[tuple[str, object, type]] = []
for _n in _BOOLS:  # a string is truthy whatever it says; None, a float mean nothing here
    _WRONG += [(_n, "false", TypeError), (_n, 1.5, TypeError), (_n, None, TypeError)]
for _n in _COUNTS:
    _WRONG += [(_n, None, TypeError), (_n, "8", TypeError), (_n, 8.0, TypeError)]
    _WRONG += [(_n, True, TypeError), (_n, 2**64, ValueError)]
    if _n != "completion_cpu":  # sizes and counts: none is negative
        _WRONG += [(_n, -1, ValueError)]
_WRONG += [("completion_cpu", -2, ValueError), ("completion_cpu", 2**31, ValueError)]
for _n in _STRINGS:
    _WRONG += [(_n, None, TypeError), (_n, 0, TypeError)]
_WRONG += [("finalize", "no", TypeError), ("finalize", 0.0, TypeError)]
_WRONG += [("api_domains", None, TypeError), ("api_domains", 1, TypeError)]


@pytest.mark.parametrize(
    ("name", "value", "error"), _WRONG, ids=[f"{n}={v!r}" for n, v, _ in _WRONG]
)
def test_an_option_of_the_wrong_type_or_range_is_a_one_line_error_naming_it(
    gpu, name, value, error
):
    options = {name: value}
    if name == "hook_join":  # only with launch_records="hook"
        options["launch_records"] = "hook"
    with pytest.raises(error) as e:
        skipnative.capture(**options)
    msg = str(e.value)
    assert name in msg and "\n" not in msg, msg
    assert not gpu.subscribed


@pytest.mark.parametrize("name", _COUNTS)
def test_a_numpy_integer_is_an_integer_option(gpu, name):
    # the value of a sweep's numpy array: taken for what it is
    value = np.int64(_DEFAULTS[name] if name == "completion_cpu" else max(_DEFAULTS[name], 4096))
    with skipnative.capture(clock="library", **{name: value}) as cap:
        gpu.launch("k", 100)
    assert cap.metadata[name] == int(value)
    assert len(cap.trace.gpu) == 1


def test_a_numpy_bool_is_a_bool_option_and_one_domain_may_be_named_alone(gpu):
    with skipnative.capture(
        clock="library", latency_timestamps=np.bool_(True), api_domains="driver"
    ) as cap:
        gpu.launch("runtime", 100)  # not recorded: runtime domain left out
        gpu.launch("driver", 100, api="cuLaunchKernel")
    assert cap.metadata["latency_timestamps"] is True
    assert cap.metadata["api_domains"] == ["driver"]
    t = cap.trace
    assert list(t.name(t.launches["name_id"])) == ["cuLaunchKernel"]


def test_synchronize_is_a_bool_too(gpu):
    with pytest.raises(TypeError, match="synchronize"):
        skipnative.capture(synchronize="no")


def test_the_raw_tables_are_read_only(gpu):
    # raw() views the session's own tables, which cap.trace is built from: an
    # edit of "my" array (say, times made relative to the first launch) would
    # silently change the trace and every later raw().
    with skipnative.capture(clock="library") as cap:
        gpu.launch("k", 5000)
    raw = cap.raw()
    begin = int(raw["launches"]["t_begin"][0])
    for table, arr in raw.items():
        with pytest.raises(ValueError, match="read-only"):
            arr[...] = arr
        assert not arr.flags.writeable, table
    assert int(cap.raw()["launches"]["t_begin"][0]) == begin
    (m,) = [r for r in cap.trace.metrics() if r.name == "all"]
    assert m.metrics["tklqt_us"] < 10  # 2 us call + 1 us submission on the double


def test_raw_before_start_is_refused_as_the_trace_is(gpu):
    cap = skipnative.capture(clock="library")
    with pytest.raises(skipnative.CaptureError, match="after stop"):
        cap.raw()
    with pytest.raises(skipnative.CaptureError, match="after stop"):
        cap.trace  # noqa: B018


def test_a_with_block_that_ends_while_another_thread_stops_the_capture(gpu):
    # A watchdog thread stops the capture (after a time limit, say) while the
    # block ends: the block ends without an error, and the trace is there once
    # it has ended.
    gpu.flush_delay(300_000_000)  # the watchdog's stop flushes for 0.3 s
    try:
        with skipnative.capture(clock="library") as cap:
            gpu.launch_many(10, "k", 100)
            watchdog = threading.Thread(target=cap.stop)
            watchdog.start()
            time.sleep(0.05)  # the watchdog is inside stop(), flushing
            assert cap.active and watchdog.is_alive()
        assert not cap.active
        assert len(cap.trace.gpu) == 10
    finally:
        gpu.flush_delay(0)
        watchdog.join()


def test_two_threads_starting_captures_at_once_one_is_refused(gpu):
    barrier = threading.Barrier(2)
    outcome: dict[int, object] = {}

    def run(i):
        barrier.wait()
        try:
            with skipnative.capture(clock="library") as cap:
                gpu.launch(f"t{i}", 100)
                time.sleep(0.1)
            outcome[i] = cap.trace
        except skipnative.CaptureError as e:
            outcome[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    errors = [v for v in outcome.values() if isinstance(v, Exception)]
    traces = [v for v in outcome.values() if not isinstance(v, Exception)]
    assert len(errors) == 1 and "another skipnative session" in str(errors[0])
    assert len(traces) == 1 and len(traces[0].gpu) >= 1
    assert not gpu.subscribed


def test_started_in_one_thread_stopped_in_another(gpu):
    cap = skipnative.capture(clock="library")
    t = threading.Thread(target=cap.start)
    t.start()
    t.join()
    gpu.launch_many(3, "k", 100)
    out = []
    t = threading.Thread(target=lambda: out.append(cap.stop()))
    t.start()
    t.join()
    assert len(out[0].gpu) == 3 and len(out[0].launches) == 3
    assert not gpu.subscribed


def test_a_capture_dropped_while_running_leaves_cupti_free(gpu):
    cap = skipnative.capture(clock="library").start()
    gpu.launch("k", 100)
    del cap
    gc.collect()
    assert not gpu.subscribed
    assert skipnative.available()[0]
    with skipnative.capture(clock="library") as again:
        gpu.launch("k", 100)
    assert len(again.trace.gpu) == 1


def test_a_trace_outlives_its_capture_and_survives_a_file(gpu, tmp_path):
    with skipnative.capture(clock="library") as cap:
        gpu.launch_many(3, "k", 1000)
        cap.mark("r")
        gpu.launch_many(2, "k", 1000)
    trace = cap.trace
    del cap
    gc.collect()
    trace.save(str(tmp_path / "t.skip"))
    back = skipnative.load(str(tmp_path / "t.skip"))
    for table in ("launches", "gpu", "regions", "ops"):
        assert np.array_equal(getattr(trace, table), getattr(back, table)), table
    assert trace.strings == back.strings
    assert [r.metrics for r in trace.metrics()] == [r.metrics for r in back.metrics()]
    assert [r.name for r in back.metrics()] == ["all", "r"]


@pytest.mark.parametrize("iters", [0, -2])
def test_profile_with_no_iteration_to_time_is_refused(gpu, iters):
    def step():
        gpu.launch("k", 1000)
        gpu.sync()

    with pytest.raises(ValueError, match="iters"):
        skipnative.profile(step, attribution=False, clock="library", iters=iters)
    assert not gpu.subscribed


def test_profile_with_negative_fidelity_reps_names_the_option(gpu):
    with pytest.raises(ValueError, match="fidelity_reps"):
        skipnative.profile(lambda: None, attribution=False, fidelity_reps=-1)


@pytest.mark.parametrize("size", [2**64 - 1, 2**64 - 4, (1 << 30) + 8])
def test_an_activity_buffer_past_the_limit_is_refused_not_wrapped(gpu, size):
    # rounded up to 8 bytes, 2**64 - 4 would wrap to a 0-byte buffer
    with pytest.raises(ValueError, match=r"^activity_buffer_bytes must be <= 1073741824, not "):
        skipnative.capture(activity_buffer_bytes=size)
    assert not gpu.subscribed


def test_a_marker_may_not_take_the_whole_traces_name(gpu):
    with skipnative.capture(clock="library") as cap:
        with pytest.raises(ValueError, match="'all' names the whole trace"):
            cap.mark("all")
        cap.mark("decode")
        gpu.launch("k", 1000)
    assert list(cap.trace.name(cap.trace.regions["name_id"])) == ["decode"]


def test_the_blocks_own_exception_is_not_replaced_by_a_warning_made_an_error(gpu):
    # under -W error the stop's loss warning is an exception; it must not hide the
    # exception that ended the block
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with (
            pytest.raises(KeyError, match="the block's own"),
            skipnative.capture(clock="library", max_gpu_records=1),
        ):
            for _ in range(3):
                gpu.launch("k", 1000)
            raise KeyError("the block's own")
        # with no exception of its own, the warning is the block's error
        with (
            pytest.raises(RuntimeWarning, match="dropped"),
            skipnative.capture(clock="library", max_gpu_records=1),
        ):
            for _ in range(3):
                gpu.launch("k", 1000)


@pytest.mark.parametrize(
    "domains", [{"driver"}, frozenset({"driver"}), (d for d in ["driver"]), {"driver": 1}.keys()]
)
def test_api_domains_may_be_any_collection_of_names(gpu, domains):
    with skipnative.capture(clock="library", api_domains=domains) as cap:
        gpu.launch("k", 1000)
    assert cap.metadata["api_domains"] == ["driver"]


class _FailingCuda:
    """torch.cuda after a device-side assert: every synchronize raises again."""

    @staticmethod
    def is_available():
        return True

    @staticmethod
    def is_initialized():
        return True

    @staticmethod
    def synchronize():
        raise RuntimeError("CUDA error: device-side assert triggered")


def test_a_failed_synchronize_at_stop_still_releases_cupti(gpu, monkeypatch):
    # A CUDA error is sticky: stop()'s torch.cuda.synchronize() raises it again.
    # Raised before the session stopped, it left CUPTI subscribed, and every
    # later stop() raised it again: no capture could start in the process.
    import types

    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=_FailingCuda))
    with (
        pytest.raises(RuntimeError, match="device-side assert"),
        skipnative.capture(clock="library") as cap,
    ):
        gpu.launch("k", 1000)
    assert not cap.active and not gpu.subscribed
    assert len(cap.trace.gpu) == 1
    monkeypatch.delitem(sys.modules, "torch")
    with skipnative.capture(clock="library") as again:
        gpu.launch("k", 1000)
    assert len(again.trace.gpu) == 1


def test_a_capture_that_failed_to_start_has_no_trace_not_an_empty_one(gpu):
    # its trace was an empty one (no launch, no kernel, t_start 0), as if the
    # capture had run and recorded nothing; it can be saved and analysed as such
    gpu.hold_subscriber(True)
    cap = skipnative.capture(clock="library")
    with pytest.raises(skipnative.CaptureError, match="already has a subscriber") as e:
        cap.start()
    for read in (lambda: cap.trace, cap.raw):
        with pytest.raises(skipnative.CaptureError, match="did not start") as no_trace:
            read()
        assert str(e.value) in str(no_trace.value) and "\n" not in str(no_trace.value)
    gpu.hold_subscriber(False)
    with skipnative.capture(clock="library") as again:
        gpu.launch("k", 1000)
    assert len(again.trace.gpu) == 1


def test_a_start_refused_leaves_the_capture_as_it_was(gpu):
    # refused while another capture runs, or started twice: not a failed capture
    first = skipnative.capture(clock="library").start()
    later = skipnative.capture(clock="library")
    with pytest.raises(skipnative.CaptureError, match="another skipnative session"):
        later.start()
    with pytest.raises(skipnative.CaptureError, match="already capturing"):
        first.start()
    gpu.launch("k", 1000)
    assert len(first.stop().gpu) == 1
    with pytest.raises(skipnative.CaptureError, match="finished"):
        first.start()
    assert len(first.trace.gpu) == 1
    with later:
        gpu.launch("k", 1000)
    assert len(later.trace.gpu) == 1


@pytest.mark.parametrize(
    ("arguments", "error", "said"),
    [
        ({"warmup": -1}, ValueError, "warmup must be >= 0, not -1"),
        ({"warmup": "3"}, TypeError, "warmup must be an int, not '3'"),
        ({"iters": 2.5}, TypeError, "iters must be an int, not 2.5"),
        ({"iters": True}, TypeError, "iters must be an int, not True"),
        ({"iters": None}, TypeError, "iters must be an int, not None"),
        ({"fidelity_reps": 1.0}, TypeError, "fidelity_reps must be an int, not 1.0"),
    ],
)
def test_profile_counts_that_are_no_count_are_refused_by_name(gpu, arguments, error, said):
    # warmup=-1 ran no warmup and iters=True one iteration, without a word; a
    # str or None failed in a comparison that named neither
    ran = []
    with pytest.raises(error, match=f"^profile: {re.escape(said)}$"):
        skipnative.profile(lambda: ran.append(1), attribution=False, **arguments)
    assert ran == [] and not gpu.subscribed


def test_profile_of_no_callable_is_refused_before_anything_runs(gpu):
    with pytest.raises(TypeError, match=r"^profile: fn must be a callable"):
        skipnative.profile("model", attribution=False)
    steps = []
    prof = skipnative.profile(
        lambda: steps.append(gpu.launch("k", 1000)), attribution=False, warmup=np.int64(0), iters=2
    )
    assert len(steps) == 3 and len(prof.native.gpu) == 3  # one unmarked, two timed
