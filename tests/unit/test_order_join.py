"""The order join (hook_join="order", csrc/core/order_join.h) on real captures.

Every capture with true correlation ids is a test of the join that pairs a hook
capture's launch calls with their GPU work by per-stream order: each launch is
put on the stream of its own work, its correlation id forgotten, and the join's
answer compared with the truth. The captures: the H100 and H200 sweeps of
bench/results (skipnative's callbacks, with CUPTI's queued timestamps) and the
torch.profiler traces of tests/data (A100, V100, MI250; several streams and
threads, no queued timestamps).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import skipnative
from realdata import CUDA, OLD_FORMAT, ROCM
from skipnative.capturing.order_join import join_by_stream_order, replay_order_join
from skipnative.trace import API_KINDS, LAUNCH_KINDS

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
# every capture of bench/results: the sweeps and first iterations (kernels with
# queued times: 53,508 in all, the number the join's header quotes) and the
# graph sweep (graph launches)
CAPTURES = sorted(RESULTS.glob("*/sweep/*.skip")) + sorted(RESULTS.glob("*/first_iteration/*.skip"))
CAPTURES += [RESULTS / "h100-2026-11-26" / "graphs" / "b1.skip"]
KERNEL = API_KINDS.index("kernel")


@pytest.mark.parametrize(
    "path", CAPTURES + CUDA + [ROCM, OLD_FORMAT], ids=lambda p: f"{p.parent.parent.name}/{p.name}"
)
@pytest.mark.parametrize("queued", [True, False], ids=["queued", "order-only"])
def test_the_order_join_finds_every_true_pair(path, queued):
    t = skipnative.load(path)
    r = replay_order_join(t, queued=queued)
    assert r.work_calls > 0
    assert r.exact, r
    # the calls that enqueued nothing recorded (put on their thread's stream, as
    # the hooks would see them) are told apart, and no work is left over
    assert r.counts["launches_unjoined"] == _calls_without_work_after_one_with(t)
    assert r.counts["work_unjoined"] == 0
    if r.counts["launches_unjoined"] == 0:  # nothing unpaired: no pair in doubt
        assert r.counts["pairs_unverified"] == 0
    if queued and path.suffix == ".skip" and path.parent.name != "graphs":
        # each kernel's queued time lies inside its own call's span: every pair checked
        assert r.counts["pairs_checked"] == int((t.gpu["t_queued"] > 0).sum()) > 0
    else:
        assert r.counts["pairs_checked"] == 0


def _calls_without_work_after_one_with(t) -> int:
    """GPU-work calls without GPU work whose thread made a call with work before."""
    ln = t.launches
    has = np.isin(ln["correlation"], t.gpu["correlation"])
    work_kind = np.isin(ln["kind"], LAUNCH_KINDS)
    n = 0
    for tid in np.unique(ln["tid"]):
        mine = np.flatnonzero(ln["tid"] == tid)
        mine = mine[np.argsort(ln["t_begin"][mine], kind="stable")]
        seen = np.cumsum(has[mine]) > 0
        before = np.concatenate([[False], seen[:-1]])
        n += int((work_kind[mine] & ~has[mine] & before).sum())
    return n


def _true_streams(t):
    """Each launch's device and stream, from its true work (-1: none)."""
    device = np.full(len(t.launches), -1, dtype=np.int64)
    stream = device.copy()
    corr = t.launches["correlation"]
    row = {int(c): i for i, c in enumerate(corr)}
    for g in t.gpu:
        i = row.get(int(g["correlation"]))
        if i is not None:
            device[i], stream[i] = g["device"], g["stream"]
    return device, stream


@pytest.fixture(scope="module")
def b1():
    return skipnative.load(CAPTURES[0])


def test_work_of_calls_not_recorded_is_left_out(b1):
    # the first 40 calls were in flight when the capture started: their kernels
    # were recorded, the calls were not
    t = b1
    device, stream = _true_streams(t)
    first = np.argsort(t.launches["t_begin"], kind="stable")[:40]
    keep = np.ones(len(t.launches), dtype=bool)
    keep[first] = False
    lost = np.isin(t.gpu["correlation"], t.launches["correlation"][first]).sum()
    cut = dataclasses.replace(t, launches=t.launches[keep])
    got, counts = join_by_stream_order(cut, device[keep], stream[keep])
    truth = cut.launches["correlation"]
    has_work = stream[keep] >= 0
    assert (got[has_work] == truth[has_work]).all()
    assert counts["work_unjoined"] == lost > 0 and counts["launches_unjoined"] == 0


def test_calls_that_enqueued_nothing_are_told_apart_by_queued_times(b1):
    # a kernel launch call between each pair of the first 200 kernel calls that
    # enqueued no recorded work (a stream capturing into a graph, say)
    t = b1
    device, stream = _true_streams(t)
    ln = t.launches
    kernels = np.flatnonzero((ln["kind"] == KERNEL) & (stream >= 0))
    kernels = kernels[np.argsort(ln["t_begin"][kernels])][:200]
    extra = ln[kernels[:-1]].copy()
    gap = ln["t_begin"][kernels[1:]] - ln["t_end"][kernels[:-1]]
    assert (gap > 2).all()
    extra["t_begin"] = ln["t_end"][kernels[:-1]] + gap // 3
    extra["t_end"] = ln["t_end"][kernels[:-1]] + 2 * gap // 3
    extra["correlation"] = 0
    more = dataclasses.replace(t, launches=np.concatenate([ln, extra]))
    dev = np.concatenate([device, device[kernels[:-1]]])
    st = np.concatenate([stream, stream[kernels[:-1]]])
    got, counts = join_by_stream_order(more, dev, st)
    truth = more.launches["correlation"]
    assert (got[: len(ln)][stream >= 0] == truth[: len(ln)][stream >= 0]).all()
    assert (got[len(ln) :] == 0).all()
    assert counts["launches_unjoined"] == len(extra) and counts["work_unjoined"] == 0


def test_work_lost_at_the_end_leaves_its_calls_alone(b1):
    t = b1
    device, stream = _true_streams(t)
    last = np.argsort(t.gpu["t_start"], kind="stable")[-25:]
    keep = np.ones(len(t.gpu), dtype=bool)
    keep[last] = False
    lost_calls = np.isin(t.launches["correlation"], t.gpu["correlation"][last])
    cut = dataclasses.replace(t, gpu=t.gpu[keep])
    got, counts = join_by_stream_order(cut, device, stream)
    truth = t.launches["correlation"]
    on = stream >= 0
    assert (got[on & ~lost_calls] == truth[on & ~lost_calls]).all()
    assert (got[lost_calls] == 0).all()
    assert counts["launches_unjoined"] == int(lost_calls.sum()) > 0


def test_columns_of_different_lengths_are_refused(b1):
    device, stream = _true_streams(b1)
    with pytest.raises(ValueError, match="stream has"):
        join_by_stream_order(b1, device, stream[:-1])


def test_every_queued_kernel_of_the_captures_is_checked():
    # the count the join's header quotes: each kernel with a queued time lies in
    # its own call's span, in all 21 captures
    checked = [
        replay_order_join(skipnative.load(p)).counts["pairs_checked"]
        for p in CAPTURES
        if p.parent.name != "graphs"
    ]
    assert len(checked) == 21 and sum(checked) == 53508
