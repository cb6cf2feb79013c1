"""A capture holds what was launched between its start and the call to stop(): calls
another thread makes while stop() flushes are recorded, but are not part of it.
One rule for both ends of the window, applied by the native session, so the raw
rows, the trace and a skip run dump all hold the same calls."""

from __future__ import annotations

import threading
import time

import numpy as np

import skipnative


def test_calls_made_while_stop_flushes_are_left_out_with_their_gpu_work(gpu):
    """Another thread launches throughout; stop()'s flush takes 50 ms. Before, most
    of the trace (7,139 of 8,366 calls in one run) began after stop() was called,
    with their kernels, and an on-demand window of skip run ran on past its end."""
    gpu.flush_delay(50_000_000)
    done = threading.Event()
    made = [0]

    def launcher():
        while not done.is_set():
            gpu.launch("k", 100)
            made[0] += 1

    cap = skipnative.capture(clock="library", synchronize=False).start()
    th = threading.Thread(target=launcher)
    th.start()
    time.sleep(0.02)
    try:
        cap.stop()
    finally:
        done.set()
        th.join()
        gpu.flush_delay(0)
    raw, t, meta = cap.raw(), cap.trace, cap.metadata
    # the raw rows are the capture's, not only the trace made of them
    assert len(raw["launches"]) == len(t.launches) > 0
    assert (raw["launches"]["t_begin"] <= meta["t_stop_ns"]).all()
    assert (t.launches["t_begin"] <= t.meta["t_stop_ns"]).all()
    # every kernel left is one of the calls kept (none was launched before start)
    assert np.isin(raw["kernels"]["correlation"], raw["launches"]["correlation"]).all()
    # the calls left out are counted, with their kernels (each call launched one;
    # those launched after the flush were never delivered)
    assert 0 < meta["gpu_rows_outside"] <= meta["launches_outside"]
    assert sum(meta["dropped"].values()) == 0
    # every call the thread made while the session recorded is kept or counted
    assert len(raw["launches"]) + meta["launches_outside"] <= made[0]
