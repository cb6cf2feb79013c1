"""The order join (csrc/core/order_join.h) replayed on a capture whose correlation
ids are true: how a hook capture with ``hook_join="order"`` would have paired the
same launch calls with the same GPU work.

A hook capture joins by per-stream order because no correlation id reaches its
launch side. Any capture that has one (callbacks, API records, a torch.profiler
trace) is a test of that join: give each launch the stream its own work ran on,
forget its correlation id, join by order, and compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from skipnative.capturing.loader import native
from skipnative.trace import LAUNCH_KINDS, Trace

__all__ = ["OrderReplay", "join_by_stream_order", "replay_order_join"]


def join_by_stream_order(
    trace: Trace, device: np.ndarray, stream: np.ndarray, *, queued: bool = True
) -> tuple[np.ndarray, dict[str, int]]:
    """The correlation id the order join gives each of `trace`'s launches (0:
    none), given each launch's device and stream (-1: unknown), and its counts.
    `queued=False` leaves the kernels' queued times out (order and kind alone)."""
    mod, why = native()
    if mod is None:
        raise RuntimeError(why)
    ln, g = trace.launches, trace.gpu
    t_queued = g["t_queued"] if queued else np.zeros(len(g), dtype=np.int64)
    return mod.join_by_stream_order(
        ln["t_begin"], ln["t_end"], ln["kind"], device, stream,
        g["t_start"], t_queued, g["correlation"], g["device"], g["stream"],
        g["kind"], g["graph_id"],
    )  # fmt: skip


@dataclass(frozen=True)
class OrderReplay:
    """What the order join made of a capture's true pairs."""

    work_calls: int  # launches of a GPU-work kind with work in the capture
    agreed: int  # of those, given their true correlation id
    wrong: int  # given another call's
    counts: dict[str, int]  # the join's own counts

    @property
    def exact(self) -> bool:
        return self.agreed == self.work_calls and self.wrong == 0


def replay_order_join(trace: Trace, *, queued: bool = True) -> OrderReplay:
    """Joins `trace` by order and counts the agreement with its true correlation
    ids. Each launch is on the stream of its true work; a launch of a GPU-work
    kind with none (it enqueued nothing recorded) on the stream of its thread's
    latest launch before it that has work, as the hooks would see most such
    calls; one with no such launch before it, on no stream."""
    ln, g = trace.launches, trace.gpu
    corr = ln["correlation"].astype(np.int64)
    row = np.full(len(g), -1, dtype=np.int64)  # each GPU row's launch
    if len(corr):
        by_corr = np.argsort(corr, kind="stable")
        pos = np.minimum(np.searchsorted(corr[by_corr], g["correlation"]), len(corr) - 1)
        hit = corr[by_corr][pos] == g["correlation"]
        row[hit] = by_corr[pos][hit]
    device = np.full(len(ln), -1, dtype=np.int64)
    stream = np.full(len(ln), -1, dtype=np.int64)
    has = row >= 0
    device[row[has]] = g["device"][has]
    stream[row[has]] = g["stream"][has]
    with_work = stream >= 0
    _carry_thread_streams(ln, device, stream, np.isin(ln["kind"], LAUNCH_KINDS))
    got, counts = join_by_stream_order(trace, device, stream, queued=queued)
    work = with_work & np.isin(ln["kind"], LAUNCH_KINDS)
    agreed = int((work & (got == corr)).sum())
    # a call given work that is not its own: another's, or any for one that has none
    wrong = int(((got != 0) & (got != corr)).sum())
    return OrderReplay(int(work.sum()), agreed, wrong, dict(counts))


def _carry_thread_streams(ln: np.ndarray, device: np.ndarray, stream: np.ndarray, calls) -> None:
    """Puts each GPU-work call (`calls`) without a stream on the stream of its
    thread's latest call before it that has one, in place."""
    order = np.lexsort((ln["t_begin"], ln["tid"]))
    last_tid, last = None, (-1, -1)
    for i in order.tolist():
        if ln["tid"][i] != last_tid:
            last_tid, last = ln["tid"][i], (-1, -1)
        if stream[i] >= 0:
            last = (device[i], stream[i])
        elif calls[i]:
            device[i], stream[i] = last
