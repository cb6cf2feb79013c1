"""Load and lifecycle through the CUPTI test double: many threads, caps, exits, fork."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import skipnative
from skipnative.testing import library_path

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


@pytest.mark.slow
def test_ten_million_launches_from_eight_threads(gpu):
    # 10M launch records against a 96 MiB cap (4,000,000 records): memory stays
    # within the cap while launching, every record is kept or counted as dropped.
    threads, per = 8, 1_250_000
    chunk = 16384
    cap_bytes = 96 << 20
    kept_max = (cap_bytes // (chunk * 24)) * chunk
    base = rss()
    peak = [base]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.01)

    w = threading.Thread(target=watch)
    w.start()
    t0 = time.time()
    with (
        pytest.warns(RuntimeWarning, match=r"dropped [\d,]+ launch calls \(max_launch_bytes\)"),
        skipnative.capture(
            clock="library",
            kernel_activity=False,
            memcpy=False,
            memset=False,
            max_launch_bytes=cap_bytes,
            launch_chunk_records=chunk,
        ) as cap,
    ):
        ts = [
            threading.Thread(target=gpu.launch_many, args=(per, "k", 10, i)) for i in range(threads)
        ]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        peak[0] = max(peak[0], rss())
        done.set()
        w.join()
    after_stop = rss()
    md = cap.metadata
    n = len(cap.raw()["launches"])
    assert n == kept_max
    assert n + md["dropped"]["launches"] == threads * per
    # while capturing: the cap (plus thread stacks and allocator slack)
    assert peak[0] - base <= cap_bytes + (32 << 20), (peak[0] - base) / 2**20
    # after stop: the cap plus the output rows (32 bytes each)
    assert after_stop - base <= cap_bytes + 32 * n + (48 << 20), (after_stop - base) / 2**20
    lr = cap.raw()["launches"]
    assert len(np.unique(lr["correlation"])) == n  # no record written twice or torn
    assert (lr["t_end"] >= lr["t_begin"]).all()
    assert time.time() - t0 < 120


def test_thousand_start_stop_cycles_do_not_grow(gpu):
    def cycles(k):
        for _ in range(k):
            with skipnative.capture(clock="library") as cap:
                gpu.launch_many(20, "k", 10)
            assert len(cap.trace.launches) == 20

    cycles(100)
    before = rss()
    cycles(1000)
    growth = rss() - before
    assert growth < (8 << 20), growth / 2**20
    assert not gpu.subscribed


def test_keyboard_interrupt_inside_a_capture(gpu):
    with pytest.raises(KeyboardInterrupt), skipnative.capture(clock="library") as cap:
        gpu.launch("k", 10)
        raise KeyboardInterrupt
    assert not cap.active and not gpu.subscribed
    assert len(cap.trace.gpu) == 1


# Every script starts a capture on the double: `gpu` and `cap` are defined.
PREAMBLE = """
import os
import skipnative
from skipnative import _native
from skipnative.testing import SimulatedGpu
_native.load_cupti([])
gpu = SimulatedGpu()
gpu.reset()
cap = skipnative.capture(clock="library").start()
"""


def _run(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SKIPNATIVE_CUPTI_LIBRARY": library_path()}
    return subprocess.run(
        [sys.executable, "-c", PREAMBLE + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_interpreter_exit_with_a_session_open():
    r = _run("""
        gpu.launch_many(1000, "k", 10)
        print("exiting")  # and no stop(): the exit handler stops the capture
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "exiting" and r.stderr == ""


def test_exit_handler_stops_and_detaches():
    r = _run("""
        gpu.launch_many(10, "k", 10)
        skipnative.capturing.session._stop_running_captures()
        print(gpu.subscribed, gpu.finalized, len(cap.trace.launches))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "1", "10"]


def test_fork_after_a_session_started():
    r = _run("""
        gpu.launch_many(10, "parent", 10)
        pid = os.fork()
        if pid == 0:
            gpu.launch_many(500, "child", 10)  # records nothing, corrupts nothing
            try:
                cap.stop()
                os._exit(3)
            except skipnative.CaptureError as e:
                os._exit(0 if "fork" in str(e) else 4)
        _, status = os.waitpid(pid, 0)
        gpu.launch_many(10, "parent", 10)
        t = cap.stop()
        names = set(t.name(t.gpu["name_id"]))
        print(os.waitstatus_to_exitcode(status), len(t.launches), len(t.gpu), sorted(names))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "20", "20", "['parent']"]


def test_capture_in_a_forked_child():
    # While the parent captures, the child cannot (CUPTI has one subscriber, the
    # parent's): a one-line error, no hang. After the parent's capture stopped, a
    # capture in a child records the child's launches.
    r = _run("""
        gpu.launch_many(10, "parent", 10)
        pid = os.fork()
        if pid == 0:
            ok, why = skipnative.available()
            if ok or "parent was running when it forked" not in why:
                os._exit(6)
            try:
                skipnative.capture(clock="library").start()
                os._exit(3)
            except skipnative.CaptureError as e:
                said = str(e)
                parents = "its parent was running when it forked" in said
                os._exit(0 if parents and "torch.profiler" not in said else 4)
        _, during = os.waitpid(pid, 0)
        t = cap.stop()
        pid = os.fork()
        if pid == 0:
            with skipnative.capture(clock="library") as c:
                gpu.launch_many(5, "child", 10)
            names = set(c.trace.name(c.trace.gpu["name_id"]))
            os._exit(0 if len(c.trace.launches) == 5 and names == {"child"} else 5)
        _, after = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(during), os.waitstatus_to_exitcode(after), len(t.launches))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "0", "10"]


# A forked child inherits the parent's running capture. Whatever way it ends, it
# must not touch the CUPTI state behind it (the parent's): the double logs every
# teardown call with its process id, and no line may be the child's.
FORK_CHILD_ENDS = {
    # a normal exit: the atexit handler runs (and the capture is still running)
    "exits": "gpu.launch_many(50, 'child', 10)\nsys.exit(0)",
    # the capture object goes away in the child: the native destructor runs
    "drops the capture": "del cap\ngc.collect()\nsys.exit(0)",
    # exec: a new program, nothing of the capture left
    "execs": "os.execv(sys.executable, [sys.executable, '-c', 'pass'])",
}


@pytest.mark.parametrize("end", FORK_CHILD_ENDS, ids=list(FORK_CHILD_ENDS))
def test_forked_child_leaves_the_parents_capture_alone(tmp_path, end):
    log = tmp_path / "calls.log"
    child_code = textwrap.indent(FORK_CHILD_ENDS[end], " " * 12).strip()
    r = _run(f"""
        import ctypes, gc, sys
        ctypes.CDLL(os.environ["SKIPNATIVE_CUPTI_LIBRARY"]).skipnative_double_log_calls(
            {str(log)!r}.encode())
        gpu.launch_many(10, "parent", 10)
        pid = os.fork()
        if pid == 0:
            {child_code}
        _, status = os.waitpid(pid, 0)
        gpu.launch_many(10, "parent", 10)
        t = cap.stop()
        print(os.waitstatus_to_exitcode(status), pid, len(t.launches), len(t.gpu))
    """)
    assert r.returncode == 0, r.stderr
    code, child, launches, kernels = r.stdout.split()
    assert (code, launches, kernels) == ("0", "20", "20")
    calls = [line.split() for line in log.read_text().splitlines()]
    assert [c for c in calls if c[0] == child] == []
    assert {"cuptiUnsubscribe", "cuptiActivityFlushAll"} <= {c[1] for c in calls}  # the parent's


@pytest.mark.slow
def test_launches_with_kernel_activity_against_every_cap(gpu):
    """The longer stress run: eight threads launch with kernel
    activity on, against the launch-buffer cap, a small activity-buffer pool and
    a GPU-row cap; every launch is kept or counted, the rows stay within their
    cap and memory within the caps."""
    threads, per, cap_bytes, gpu_rows = 8, 500_000, 32 << 20, 1_000_000
    base = rss()
    with (
        pytest.warns(RuntimeWarning, match="the capture dropped"),
        skipnative.capture(
            clock="library",
            max_launch_bytes=cap_bytes,
            activity_buffer_bytes=1 << 20,
            max_activity_buffers=8,
            max_gpu_records=gpu_rows,
        ) as cap,
    ):
        ts = [
            threading.Thread(target=gpu.launch_many, args=(per, "k", 10, i)) for i in range(threads)
        ]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        peak = rss()
    md, raw = cap.metadata, cap.raw()
    total = threads * per
    assert len(raw["launches"]) + md["dropped"]["launches"] == total
    assert md["dropped"]["launches"] > 0  # the cap was reached
    assert 0 < len(raw["kernels"]) <= gpu_rows
    assert len(raw["kernels"]) + md["dropped"]["gpu_rows"] + md["dropped"]["cupti"] == total
    # while capturing: the launch cap, the activity pool and the GPU rows (48 bytes
    # each in the double's records), plus thread stacks and allocator slack
    assert peak - base <= cap_bytes + (8 << 20) + 48 * gpu_rows + (48 << 20), (peak - base) >> 20
