"""What-if replay: a trace as a schedule, replayed with changes.

CPU threads issue calls separated by host work; GPU streams run their work in
order; synchronising calls make a thread wait for the GPU. Replay keeps every
measured quantity that the change does not touch:

- per thread, the host gap before each call and each call's duration (both
  scaled by ``cpu_scale``: a slower or faster CPU);
- per GPU activity, its duration, and either its measured latency after its
  launch call returned (when it did not queue; a kernel that started inside
  its call keeps its place as a fraction of the call) or its measured gap
  after its stream predecessor (when it queued; offset capped by the measured one);
- per synchronising call that waited for the GPU, the tail from the GPU's
  completion to the call's return (for a ``cudaStreamSynchronize`` whose stream
  the trace names, Kineto's "Stream Sync", that stream's completion; for a
  ``cudaEventSynchronize``, "Event Sync", that of the work on the record's
  stream before the ``cudaEventRecord`` call); likewise
  per copy or set call that returned after its own GPU work ended (it waited for
  it, as ``cudaMemcpyAsync`` to or from pageable memory does), the tail from
  that work's end.

``launch_add_ns`` adds time to every kernel and graph launch call (e.g. the
difference in null-kernel launch cost between two machines, from
``skip bench launch``), on top of ``cpu_scale``.

Unchanged (``cpu_scale=1``), the replay reproduces the measured schedule.
Cross-stream waits (``cudaStreamWaitEvent``) are kept where the trace says which
event record each waits on (``Trace.waits``: Kineto's cuda_sync events; see
whatif_waits): the first GPU row after the wait starts no earlier than the
awaited row's end (and, where the wait decided its start as measured, no
earlier than its measured lag after it; such a row is treated as queued).
Elsewhere cross-stream order is not modelled beyond the per-activity offsets.
Steps (step and marker regions) are barriers: a call of a later step, on any
thread, begins after every call of the earlier steps has begun, so each step
keeps its calls and their kernels. Ops and region bounds move with the replayed
calls around them (the host work in between scaled), each within its step.
Changes: ``fuse`` chains of kernel names (each occurrence becomes one kernel
running the chain's total duration; the launch calls of the chain's later
kernels disappear), and ``graphs`` (each region's kernel launches become one
graph launch: host work between them disappears, kernels run back to back).

The result is a predicted Trace; every metric is computed from it as usual.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from skipnative.analysis.fusion import find_candidates
from skipnative.analysis.kernels import (
    join_by_correlation,
    join_kernels,
    queued_at_return,
    take,
)
from skipnative.analysis.whatif_times import predicted_trace, step_bounds
from skipnative.analysis.whatif_waits import HostWaits, WaitEdges, wait_edges
from skipnative.trace import API_KINDS, KIND_GRAPH, KIND_KERNEL, KIND_SYNC, Trace


@dataclass
class _GpuPlan:
    """Per GPU row, what the replay keeps of the measured schedule."""

    gl: np.ndarray  # row of its launch call, -1: none
    so: np.ndarray  # GPU rows in per-stream start order
    queued: np.ndarray  # the queued test (kernels.queued_at_return)
    rho: np.ndarray  # start - launch-call begin (capped at the median where queued)
    rho_measured: np.ndarray  # start - launch-call begin, as measured
    gap: np.ndarray  # where queued: start - the stream predecessor's end
    dur: np.ndarray
    launch_begin: np.ndarray  # its launch call's begin as measured (its start if none)
    waits: WaitEdges  # cross-stream waits between rows


def _gpu_plan(t: Trace, waits: WaitEdges) -> _GpuPlan:
    ln, g = t.launches, t.gpu
    gl = join_by_correlation(ln["correlation"], g["correlation"])
    has = gl >= 0
    l_b, l_e = take(ln["t_begin"], gl, 0), take(ln["t_end"], gl, 0)
    so, prev_end, queued = queued_at_return(g, has, l_e)
    # rows that queued, behind their stream or another stream they waited for,
    # keep at most the median latency of those that did not
    behind = queued | waits.waited
    rho_measured = rho = (g["t_start"] - l_b).astype(np.int64)
    if (has & ~behind).any():
        med = int(np.median(rho[has & ~behind]))
        rho = np.where(behind, np.minimum(rho, med), rho)
    # negative where it started before its predecessor ended, as kernels of one
    # graph may (programmatic dependent launch): kept, so the replay reproduces it
    gap = g["t_start"] - np.where(queued, prev_end, g["t_start"])
    dur = (g["t_end"] - g["t_start"]).astype(np.int64)
    launch_begin = np.where(has, l_b, g["t_start"])
    return _GpuPlan(gl, so, queued, rho, rho_measured, gap, dur, launch_begin, waits)


def replay(
    trace: Trace,
    *,
    cpu_scale: float = 1.0,
    fuse: list[tuple[str, ...]] | None = None,
    graphs: bool = False,
    launch_add_ns: int = 0,
) -> Trace:
    """The trace's schedule replayed with the changes (module docstring): a
    predicted Trace."""
    if not cpu_scale > 0:
        raise ValueError("cpu_scale must be > 0")
    _check_fits(trace, cpu_scale, launch_add_ns)
    t = trace
    # removed: calls a change took away (run in no time, kept for their host gaps);
    # no_host: calls whose preceding host work a change took away
    removed = np.zeros(len(t.launches), dtype=bool)
    waits = wait_edges(t)  # as measured, before a change merges rows
    syncs = HostWaits(t)  # by correlation id, which no change renumbers
    if fuse:
        t, removed, row_map, merged = _apply_fusion(t, fuse)
        waits = waits.remapped(row_map, merged, len(t.gpu))
    plan = _gpu_plan(t, waits)
    no_host = np.zeros(len(t.launches), dtype=bool)
    if graphs:
        ln, plan.gl, plan.rho, plan.gap, removed, no_host = _apply_graphs(
            t, plan.gl, plan.rho, plan.gap, plan.queued, removed
        )
        t = replace(t, launches=ln)
    times = _Replay(t, plan, removed, no_host, cpu_scale, launch_add_ns, syncs).run()
    change = {
        "cpu_scale": cpu_scale,
        "launch_add_ns": launch_add_ns,
        "fuse": [list(c) for c in fuse or []],
        "graphs": graphs,
    }
    return predicted_trace(t, plan.gl, removed, times, change)


class ReplayRangeError(ValueError):
    """The change would put the replayed schedule beyond 64-bit nanoseconds."""


_TIME_LIMIT = 2**62  # replayed times stay below (int64 ns, with room for sums)


def _check_fits(t: Trace, cpu_scale: float, launch_add_ns: int) -> None:
    """Refuses a change whose replayed times could leave int64 ns (they would wrap or
    fail midway): bounded by the trace's span scaled, every launch call's added time
    and all GPU time run back to back."""
    ln, g = t.launches, t.gpu
    ts = np.concatenate([ln["t_begin"], ln["t_end"], g["t_start"], g["t_end"]]).astype(np.int64)
    lo, hi = (int(ts.min()), int(ts.max())) if len(ts) else (0, 0)
    add = min(abs(int(launch_add_ns)), _TIME_LIMIT)
    gpu = float((g["t_end"] - g["t_start"]).sum())
    if not max(-lo, hi) + (hi - lo) * 2.0 * max(cpu_scale, 1.0) + len(ln) * add + gpu < _TIME_LIMIT:
        raise ReplayRangeError(
            f"cpu_scale {cpu_scale:g} and launch_add_ns {launch_add_ns} would put this "
            "trace's replayed times beyond 64-bit nanoseconds"
        )


class _Replay:
    """The event loop: per thread, calls in order, each GPU row placed when its
    launch call has been replayed."""

    def __init__(self, t: Trace, plan: _GpuPlan, removed, no_host, cpu_scale, launch_add_ns, syncs):
        ln, g = t.launches, t.gpu
        self.syncs: HostWaits = syncs  # stream and event syncs, by correlation id
        self.ln, self.g, self.plan = ln, g, plan
        self.removed, self.no_host = removed, no_host
        self.cpu_scale, self.launch_add_ns = cpu_scale, launch_add_ns
        gl = plan.gl
        # each GPU row's launch-call duration as measured, and its latency after the
        # call returned (negative: it started inside the call)
        self.api_r = take(ln["t_end"] - ln["t_begin"], gl, 0)
        n_l = len(ln)
        self.launching = (ln["kind"] == KIND_KERNEL) | (ln["kind"] == KIND_GRAPH)
        # GPU rows per launch, in stream order
        self.rows_by_launch: dict[int, list[int]] = {}
        for r in plan.so.tolist():
            if gl[r] >= 0:
                self.rows_by_launch.setdefault(int(gl[r]), []).append(r)
        # measured GPU completion before each sync (for the post-completion tail)
        self.go = np.argsort(plan.launch_begin, kind="stable")
        self.cum_end = np.maximum.accumulate(g["t_end"][self.go]) if len(g) else g["t_end"][:0]
        self.dep = _handoffs(ln)
        # copy and set calls that returned after their own GPU work ended waited for
        # it (a copy to or from pageable memory): the tail from its end to the return
        self.wait_tail = _copy_waits(t, gl)
        self.bounds = step_bounds(t)
        self.new_b = np.zeros(n_l, dtype=np.int64)
        self.new_e = np.zeros(n_l, dtype=np.int64)
        self.done = np.zeros(n_l, dtype=bool)
        self.new_s = g["t_start"].astype(np.int64).copy()
        self.new_end = g["t_end"].astype(np.int64).copy()
        self.placed = gl < 0  # rows without a launch keep their measured times
        self.stream_free: dict[tuple[int, int], int] = {}
        self.done_so_far = int(np.iinfo(np.int64).min)
        self.stream_done: dict[tuple[int, int], int] = {}  # per stream, as done_so_far

    def gpu_done_measured(self, t0: int) -> int | None:
        k = np.searchsorted(self.plan.launch_begin[self.go], t0, side="left")
        return int(self.cum_end[k - 1]) if k > 0 else None

    def run(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        ln, scale = self.ln, self.cpu_scale
        threads: dict[tuple[int, int], list[int]] = {}
        for i in np.argsort(ln["t_begin"], kind="stable").tolist():
            threads.setdefault((int(ln["pid"][i]), int(ln["tid"][i])), []).append(i)
        origin = int(ln["t_begin"].min()) if len(ln) else 0
        heap: list[tuple[int, tuple[int, int], int]] = []
        waiting: dict[int, list] = {}
        for key, calls in threads.items():
            start = origin + int((ln["t_begin"][calls[0]] - origin) * scale)
            heapq.heappush(heap, (start, key, 0))
        # Steps are barriers: a call of a later step (any thread) begins after every
        # call of the earlier ones has begun, as measured; so each step keeps its
        # calls, and their kernels, however much faster or slower one thread gets.
        step = np.searchsorted(self.bounds, ln["t_begin"], side="right")
        left = np.bincount(step, minlength=len(self.bounds) + 1)
        open_step = 0
        while open_step < len(self.bounds) and left[open_step] == 0:
            open_step += 1
        held: dict[int, list] = {}
        floor = int(np.iinfo(np.int64).min)  # earliest begin in the open step
        last_begin = floor
        while heap:
            tb, key, pos = heapq.heappop(heap)
            calls = threads[key]
            i = calls[pos]
            if step[i] > open_step:
                held.setdefault(int(step[i]), []).append((tb, key, pos))
                continue
            tb = max(tb, floor)
            d_i = int(self.dep[i])
            if d_i >= 0:
                # Hand-offs between threads: a call that began within HANDOFF_NS after
                # a call of another thread ended keeps that distance to it (the
                # autograd thread picking up work, a worker waiting on the main
                # thread), so threads do not drift apart.
                if not self.done[d_i]:
                    waiting.setdefault(d_i, []).append((tb, key, pos))
                    continue
                lag = int(ln["t_begin"][i] - ln["t_end"][d_i])
                tb = max(tb, int(self.new_e[d_i]) + int(lag * scale))
            te = self.call(i, tb)
            last_begin = max(last_begin, tb)
            for item in waiting.pop(i, ()):
                heapq.heappush(heap, item)
            left[step[i]] -= 1
            while open_step < len(self.bounds) and left[open_step] == 0:
                open_step += 1
                floor = last_begin + 1
                for item in held.pop(open_step, ()):
                    heapq.heappush(heap, item)
            if pos + 1 < len(calls):
                nxt = calls[pos + 1]
                gap_cpu = 0 if self.no_host[nxt] else int(ln["t_begin"][nxt] - ln["t_end"][i])
                heapq.heappush(heap, (te + int(gap_cpu * scale), key, pos + 1))
        # GPU rows with no launch keep their measured times
        return self.new_b, self.new_e, self.new_s, self.new_end

    def call(self, i: int, tb: int) -> int:
        """Replays call i from tb: its end, and the GPU rows it launched."""
        ln = self.ln
        d = 0 if self.removed[i] else int(ln["t_end"][i] - ln["t_begin"][i])
        te = tb + int(d * self.cpu_scale)
        if self.launching[i] and not self.removed[i]:
            te = max(tb, te + self.launch_add_ns)
        corr = int(ln["correlation"][i])
        self.syncs.replayed(corr, self.stream_done)
        if ln["kind"][i] == KIND_SYNC:
            waits = self.syncs.waits(corr, self.stream_done)
            if waits is None:  # for all the GPU's work so far
                measured, done = self.gpu_done_measured(int(ln["t_begin"][i])), self.done_so_far
            else:  # for one stream's
                measured, done = waits
                if done < 0:  # its work's calls are not replayed yet (other threads)
                    done = self.done_so_far
            if measured is not None and ln["t_begin"][i] < measured <= ln["t_end"][i]:
                te = max(tb, done + int(ln["t_end"][i] - measured))
        rows = self.rows_by_launch.get(i, ())
        for r in rows:
            self.place(r, tb, te)
        if self.wait_tail[i] >= 0 and rows:
            te = max(te, max(int(self.new_end[r]) for r in rows) + int(self.wait_tail[i]))
        self.new_b[i], self.new_e[i] = tb, te
        self.done[i] = True
        return te

    def place(self, r: int, tb: int, te: int) -> None:
        """GPU row r, launched by a call replayed over [tb, te)."""
        g, plan = self.g, self.plan
        sk = (int(g["device"][r]), int(g["stream"][r]))
        free = self.stream_free.get(sk)
        edges = plan.waits.after.get(r, ())
        # a row whose start a wait decided, waiting for a row the replay has not
        # placed yet (its launch now comes later): its measured latency, uncapped
        pending = any(not self.placed[a] for a, _ in edges)
        rho = int(plan.rho_measured[r] if pending and plan.waits.waited[r] else plan.rho[r])
        api = int(self.api_r[r])
        if rho >= api:  # submitted after the call returned, as measured
            ready = te + rho - api
        else:  # started inside its call: the same fraction of the (new) call
            ready = tb + (int(float(rho) * (te - tb) / api) if api > 0 else rho)
        s = ready if free is None else max(ready, free + int(plan.gap[r]))
        for a, lag in edges:
            if self.placed[a]:
                s = max(s, int(self.new_end[a]) + lag)
        self.new_s[r], self.new_end[r] = s, s + int(plan.dur[r])
        self.placed[r] = True
        self.stream_free[sk] = int(self.new_end[r])
        self.done_so_far = max(self.done_so_far, int(self.new_end[r]))
        end = int(self.new_end[r])
        self.stream_done[sk] = max(self.stream_done.get(sk, end), end)


HANDOFF_NS = 20_000
_COPY_KINDS = (API_KINDS.index("copy"), API_KINDS.index("set"))


def _copy_waits(t: Trace, gl: np.ndarray) -> np.ndarray:
    """Per call, -1, or for a copy or set call that waited for its GPU work (as
    cudaMemcpyAsync from or to pageable memory does, behind the stream's earlier
    work), the time from that work's end to its return. It waited where it returned
    at or after the end of all the GPU work it launched, unless that work's names
    say it touched only pinned or device memory (torch.profiler's "Memcpy HtoD
    (Pinned -> Device)": such a copy is asynchronous, and one that ended inside its
    call says nothing of a wait)."""
    ln, g = t.launches, t.gpu
    tail = np.full(len(ln), -1, dtype=np.int64)
    has = np.flatnonzero(gl >= 0)
    if len(has) == 0:
        return tail
    never = np.iinfo(np.int64).min
    last = np.full(len(ln), never, dtype=np.int64)
    np.maximum.at(last, gl[has], g["t_end"][has].astype(np.int64))
    names = t.strings
    ids = np.unique(g["name_id"][has])
    async_ids = [i for i in ids.tolist() if _asynchronous_copy(names[i])]
    all_async = np.ones(len(ln), dtype=bool)
    np.logical_and.at(all_async, gl[has], np.isin(g["name_id"][has], async_ids))
    ends = ln["t_end"].astype(np.int64)
    waited = np.isin(ln["kind"], _COPY_KINDS) & ~all_async & (last > never) & (ends >= last)
    tail[waited] = ends[waited] - last[waited]
    return tail


_COPY_ENDS = re.compile(r"\((\w+) -> (\w+)\)")


def _asynchronous_copy(name: str) -> bool:
    """A copy whose name gives both ends as memory no host thread has to wait on:
    pinned host memory, device memory or an array ("Memcpy HtoD (Pinned ->
    Device)"); not pageable or unspecified host memory ("Host -> Device")."""
    m = _COPY_ENDS.search(name)
    return m is not None and {m.group(1), m.group(2)} <= {"Pinned", "Device", "Array"}


def _handoffs(ln: np.ndarray) -> np.ndarray:
    """For each call, the call of another thread that ended last before it began, if
    within HANDOFF_NS; else -1."""
    n = len(ln)
    dep = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return dep
    eo = np.argsort(ln["t_end"], kind="stable")
    ends = ln["t_end"][eo]
    k = np.searchsorted(ends, ln["t_begin"], side="right") - 1
    ok = k >= 0
    cand = np.where(ok, eo[np.maximum(k, 0)], -1)
    other = ok & (ln["tid"][np.maximum(cand, 0)] != ln["tid"])
    close = other & (ln["t_begin"] - ln["t_end"][np.maximum(cand, 0)] <= HANDOFF_NS)
    dep[close] = cand[close]
    return dep


def _apply_fusion(t: Trace, chains: list[tuple[str, ...]]):
    """Each occurrence of a chain: its first kernel runs the chain's total time; the
    later kernels and their single-kernel launch calls disappear. Returns the
    fused trace, the removed calls, and per measured GPU row its row in the fused
    trace and whether it was merged into another."""
    wanted = {tuple(c) for c in chains}
    lengths = sorted({len(c) for c in wanted})
    cands = find_candidates(t, lengths=lengths, threshold=0.0)
    kt = join_kernels(t)
    kernel_rows = np.flatnonzero(t.gpu["kind"] == 0)  # join order -> gpu rows
    drop_gpu, drop_launch = set(), set()
    g = t.gpu.copy()
    into = np.arange(len(g))  # the row each row's work runs in
    for c in cands:
        if c.chain not in wanted:
            continue
        for occ in c.occurrences:
            rows = [int(kernel_rows[k]) for k in occ]
            if any(r in drop_gpu for r in rows):
                continue  # overlapping occurrence: fused already
            total = int(sum(g["t_end"][r] - g["t_start"][r] for r in rows))
            g["t_end"][rows[0]] = g["t_start"][rows[0]] + total
            for k, r in zip(occ[1:], rows[1:]):
                drop_gpu.add(r)
                into[r] = rows[0]
                li = int(kt.launch[k])
                if li >= 0 and t.launches["kind"][li] == KIND_KERNEL:
                    drop_launch.add(li)
    keep_g = np.ones(len(g), dtype=bool)
    keep_g[list(drop_gpu)] = False
    # A removed call stays in the schedule (marked in the returned mask) and runs in
    # no time, so the host gaps around it keep their measured lengths; replay()
    # leaves it out of the predicted trace.
    removed = np.zeros(len(t.launches), dtype=bool)
    removed[list(drop_launch)] = True
    ln = t.launches.copy()
    ln["correlation"][removed] = -1  # its kernels are gone: nothing may join it
    new_row = np.cumsum(keep_g) - 1
    return replace(t, gpu=g[keep_g], launches=ln), removed, new_row[into], ~keep_g


def _apply_graphs(t: Trace, gl, rho, gap, queued, removed):
    """Per region, the kernel launches become one graph launch (the region's first
    kernel launch, now of kind graph, costing the median graph-launch call if the
    trace has one, else twice the median kernel-launch call); the host work
    between them disappears; kernels queue back to back with the trace's median
    inter-kernel gap."""
    ln = t.launches.copy()
    kl = ln["kind"] == KIND_KERNEL
    api = ln["t_end"] - ln["t_begin"]
    gk = ln["kind"] == KIND_GRAPH
    cost = int(np.median(api[gk])) if gk.any() else int(2 * np.median(api[kl])) if kl.any() else 0
    med_gap = int(np.median(gap[queued])) if queued.any() else 0
    bounds = [(int(r["t_begin"]), int(r["t_end"])) for r in t.iterations]
    if not bounds and len(ln):  # no iteration: the whole trace is one graph
        bounds = [(int(ln["t_begin"].min()), int(ln["t_end"].max()) + 1)]
    keep = np.ones(len(ln), dtype=bool)
    no_host = np.zeros(len(ln), dtype=bool)
    new_gl = gl.copy()
    for b, e in bounds:
        inr = np.flatnonzero(kl & (ln["t_begin"] >= b) & (ln["t_begin"] < e))
        if len(inr) == 0:
            continue
        inr = inr[np.argsort(ln["t_begin"][inr], kind="stable")]
        head = inr[0]
        ln["kind"][head] = KIND_GRAPH
        ln["t_end"][head] = ln["t_begin"][head] + cost
        keep[inr[1:]] = False
        rows = np.isin(gl, inr)
        new_gl[rows] = head
        # every call after the graph launch in the region: no host work before it
        after = np.flatnonzero(keep & (ln["t_begin"] > ln["t_begin"][head]) & (ln["t_begin"] < e))
        no_host[after] = True
    rho = np.where(new_gl != gl, np.maximum(cost, 0), rho)
    gap = np.where(new_gl != gl, med_gap, gap)
    # renumber launches after dropping
    idx = np.cumsum(keep) - 1
    new_gl = take(idx, new_gl, -1)
    return ln[keep], new_gl, rho, gap, removed[keep], no_host[keep]


def predict(trace: Trace, **kw: Any) -> list[dict[str, Any]]:
    """Measured and predicted metrics per region (device summed over: first device)."""
    pred = replay(trace, **kw)
    m = {(r.name, r.device): r.metrics for r in trace.metrics(top=0)}
    p = {(r.name, r.device): r.metrics for r in pred.metrics(top=0)}
    out = []
    for key, mm in m.items():
        pm = p.get(key)
        if pm is None:
            continue
        out.append(
            {
                "name": key[0],
                "device": key[1],
                "measured_il_us": mm["il_us"],
                "predicted_il_us": pm["il_us"],
                "measured_tklqt_us": mm["tklqt_us"],
                "predicted_tklqt_us": pm["tklqt_us"],
                "measured_queued_fraction": mm["queued_fraction"],
                "predicted_queued_fraction": pm["queued_fraction"],
                "measured_bound": mm["bound"],
                "predicted_bound": pm["bound"],
                "predicted_n_kernels": pm["n_kernels"],
            }
        )
    return out
