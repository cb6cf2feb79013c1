"""A capture holds what was launched between its start and the call to stop(): calls
another thread makes while stop() flushes are recorded, but are not part of it."""

from __future__ import annotations

import threading
import time

import numpy as np

import skipnative


def test_calls_made_while_stop_flushes_are_left_out(gpu):
    """Another thread launches throughout; stop()'s flush takes 50 ms. Before, most
    of the trace (7,139 of 8,366 calls in one run) began after stop() was called,
    with their kernels, and an on-demand window of skip run ran on past its end."""
    gpu.flush_delay(50_000_000)
    done = threading.Event()

    def launcher():
        while not done.is_set():
            gpu.launch("k", 100)

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
    t = cap.trace
    assert len(t.launches) > 0
    assert (t.launches["t_begin"] <= t.meta["t_stop_ns"]).all()
    # every kernel left is one of the calls kept (none was launched before start)
    assert np.isin(t.gpu["correlation"], t.launches["correlation"]).all()
    raw = cap.raw()
    assert t.meta["launches_after_stop"] == len(raw["launches"]) - len(t.launches) > 0
    assert t.meta["gpu_rows_after_stop"] == len(raw["kernels"]) - len(t.gpu) > 0
