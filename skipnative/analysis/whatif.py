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
  completion to the call's return.

``launch_add_ns`` adds time to every kernel and graph launch call (e.g. the
difference in null-kernel launch cost between two machines, from
``skip bench launch``), on top of ``cpu_scale``.

Unchanged (``cpu_scale=1``), the replay reproduces the measured schedule.
Cross-stream dependencies are not modelled beyond these per-activity offsets.
Changes: ``fuse`` chains of kernel names (each occurrence becomes one kernel
running the chain's total duration; the launch calls of the chain's later
kernels disappear), and ``graphs`` (each region's kernel launches become one
graph launch: host work between them disappears, kernels run back to back).

The result is a predicted Trace; every metric is computed from it as usual.
"""

from __future__ import annotations

import heapq
from dataclasses import replace
from typing import Any

import numpy as np

from skipnative.analysis.fusion import find_candidates
from skipnative.analysis.kernels import join_by_correlation, join_kernels, queued_at_return
from skipnative.trace import KIND_GRAPH, KIND_KERNEL, KIND_SYNC, Trace


def _map_times(times, tid, pid, call_tid, call_pid, old_b, new_b, scale):
    """Moves CPU times (op and region bounds) with the replayed calls of their thread:
    t' = new_begin(next call) - (old_begin(next call) - t) * scale."""
    out = np.asarray(times, dtype=np.int64).copy()
    for p, t in set(zip(pid.tolist(), tid.tolist())):
        sel = np.flatnonzero((pid == p) & (tid == t))
        calls = np.flatnonzero((call_pid == p) & (call_tid == t))
        if len(calls) == 0:
            calls = np.arange(len(old_b))  # no calls on that thread: use all
        if len(calls) == 0:
            continue
        o = calls[np.argsort(old_b[calls], kind="stable")]
        ob, nb = old_b[o], new_b[o]
        i = np.minimum(np.searchsorted(ob, out[sel]), len(o) - 1)
        out[sel] = nb[i] - ((ob[i] - out[sel]) * scale).astype(np.int64)
    return out


def replay(
    trace: Trace,
    *,
    cpu_scale: float = 1.0,
    fuse: list[tuple[str, ...]] | None = None,
    graphs: bool = False,
    launch_add_ns: int = 0,
) -> Trace:
    if not cpu_scale > 0:
        raise ValueError("cpu_scale must be > 0")
    t = trace
    # removed: calls a change took away (run in no time, kept for their host gaps);
    # no_host: calls whose preceding host work a change took away
    removed = np.zeros(len(t.launches), dtype=bool)
    if fuse:
        t, removed = _apply_fusion(t, fuse)
    ln, g = t.launches, t.gpu
    n_l, n_g = len(ln), len(g)
    gl = join_by_correlation(ln["correlation"], g["correlation"])

    # per GPU row: stream predecessor, queued?, offset and gap
    has = gl >= 0
    l_b = np.where(has, ln["t_begin"][np.maximum(gl, 0)] if n_l else 0, 0)
    l_e = np.where(has, ln["t_end"][np.maximum(gl, 0)] if n_l else 0, 0)
    so, prev_end, queued = queued_at_return(g, has, l_e)
    rho = (g["t_start"] - l_b).astype(np.int64)
    if (has & ~queued).any():
        med = int(np.median(rho[has & ~queued]))
        rho = np.where(queued, np.minimum(rho, med), rho)
    gap = np.where(queued, np.maximum(g["t_start"] - prev_end, 0), 0)
    dur = (g["t_end"] - g["t_start"]).astype(np.int64)

    no_host = np.zeros(n_l, dtype=bool)
    if graphs:
        ln, gl, rho, gap, removed, no_host = _apply_graphs(t, gl, rho, gap, queued, removed)
        t = replace(t, launches=ln)
        n_l = len(ln)

    # each GPU row's launch-call duration as measured, and its latency after the
    # call returned (negative: it started inside the call)
    api_r = np.where(gl >= 0, (ln["t_end"] - ln["t_begin"])[np.maximum(gl, 0)], 0) if n_l else 0
    post = rho - api_r
    launching = (ln["kind"] == KIND_KERNEL) | (ln["kind"] == KIND_GRAPH)

    # GPU rows per launch, in stream order
    rows_by_launch: dict[int, list[int]] = {}
    for r in so.tolist():
        if gl[r] >= 0:
            rows_by_launch.setdefault(int(gl[r]), []).append(r)

    # measured GPU completion before each sync (for the post-completion tail)
    kinds = ln["kind"]
    lb_sorted = np.argsort(ln["t_begin"], kind="stable")
    g_launch_begin = np.where(has, l_b, g["t_start"])
    go = np.argsort(g_launch_begin, kind="stable")
    cum_end = np.maximum.accumulate(g["t_end"][go]) if n_g else np.zeros(0, np.int64)

    def gpu_done_measured(t0):
        k = np.searchsorted(g_launch_begin[go], t0, side="left")
        return int(cum_end[k - 1]) if k > 0 else None

    # per-thread call sequences
    threads: dict[tuple[int, int], list[int]] = {}
    for i in lb_sorted.tolist():
        threads.setdefault((int(ln["pid"][i]), int(ln["tid"][i])), []).append(i)
    # Hand-offs between threads: a call that began within HANDOFF_NS after a call of
    # another thread ended keeps that distance to it (the autograd thread picking up
    # work, a worker waiting on the main thread), so threads do not drift apart.
    dep = _handoffs(ln)
    origin = int(ln["t_begin"].min()) if n_l else 0
    new_b = np.zeros(n_l, dtype=np.int64)
    new_e = np.zeros(n_l, dtype=np.int64)
    done = np.zeros(n_l, dtype=bool)
    new_s = g["t_start"].astype(np.int64).copy()
    new_end = g["t_end"].astype(np.int64).copy()
    stream_free: dict[tuple[int, int], int] = {}
    done_so_far = np.iinfo(np.int64).min
    heap = []
    waiting: dict[int, list] = {}
    for key, calls in threads.items():
        first = calls[0]
        start = origin + int((ln["t_begin"][first] - origin) * cpu_scale)
        heapq.heappush(heap, (start, key, 0))
    while heap:
        tb, key, pos = heapq.heappop(heap)
        calls = threads[key]
        i = calls[pos]
        d_i = int(dep[i])
        if d_i >= 0:
            if not done[d_i]:
                waiting.setdefault(d_i, []).append((tb, key, pos))
                continue
            lag = int(ln["t_begin"][i] - ln["t_end"][d_i])
            tb = max(tb, int(new_e[d_i]) + int(lag * cpu_scale))
        d = 0 if removed[i] else int(ln["t_end"][i] - ln["t_begin"][i])
        te = tb + int(d * cpu_scale)
        if launching[i] and not removed[i]:
            te = max(tb, te + launch_add_ns)
        if kinds[i] == KIND_SYNC:
            measured = gpu_done_measured(int(ln["t_begin"][i]))
            if measured is not None and ln["t_begin"][i] < measured <= ln["t_end"][i]:
                te = max(tb, done_so_far + int(ln["t_end"][i] - measured))
        new_b[i], new_e[i] = tb, te
        done[i] = True
        for r in rows_by_launch.get(i, ()):
            sk = (int(g["device"][r]), int(g["stream"][r]))
            free = stream_free.get(sk)
            if post[r] >= 0:  # submitted after the call returned, as measured
                ready = te + int(post[r])
            else:  # started inside its call: the same fraction of the (new) call
                a = int(api_r[r])
                ready = tb + (int(float(rho[r]) * (te - tb) / a) if a > 0 else int(rho[r]))
            s = ready if free is None else max(ready, free + int(gap[r]))
            new_s[r], new_end[r] = s, s + int(dur[r])
            stream_free[sk] = new_end[r]
            done_so_far = max(done_so_far, int(new_end[r]))
        for item in waiting.pop(i, ()):
            heapq.heappush(heap, item)
        if pos + 1 < len(calls):
            nxt = calls[pos + 1]
            gap_cpu = int(ln["t_begin"][nxt] - ln["t_end"][i])
            heapq.heappush(
                heap, (te + (0 if no_host[nxt] else int(gap_cpu * cpu_scale)), key, pos + 1)
            )
    # GPU rows with no launch keep their measured times

    out_l = ln.copy()
    out_l["t_begin"], out_l["t_end"] = new_b, new_e
    out_g = g.copy()
    out_g["t_start"], out_g["t_end"] = new_s, new_end
    out_g["t_queued"] = 0
    out_g["t_submitted"] = 0
    if graphs:  # kernels now belong to their region's graph launch
        out_g["correlation"] = np.where(
            gl >= 0, ln["correlation"][np.maximum(gl, 0)], out_g["correlation"]
        )

    def move(times, tid, pid):
        return _map_times(times, tid, pid, ln["tid"], ln["pid"], ln["t_begin"], new_b, cpu_scale)

    ops = t.ops.copy()
    if len(ops):
        ops["t_begin"] = move(ops["t_begin"], ops["tid"], ops["pid"])
        ops["t_end"] = np.maximum(ops["t_begin"], move(ops["t_end"], ops["tid"], ops["pid"]))
    regions = t.regions.copy()
    if len(regions) and n_l:
        main = np.bincount(ln["tid"] - ln["tid"].min()).argmax() + ln["tid"].min()
        rt = np.full(len(regions), main)
        rp = np.full(len(regions), ln["pid"][ln["tid"] == main][0])
        regions["t_begin"] = move(regions["t_begin"], rt, rp)
        regions["t_end"] = move(regions["t_end"], rt, rp)
    out_l = out_l[~removed]
    meta = dict(t.meta)
    meta["whatif"] = {
        "cpu_scale": cpu_scale,
        "launch_add_ns": launch_add_ns,
        "fuse": [list(c) for c in fuse or []],
        "graphs": graphs,
    }
    return replace(t, launches=out_l, gpu=out_g, ops=ops, regions=regions, meta=meta)


HANDOFF_NS = 20_000


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


def _apply_fusion(t: Trace, chains: list[tuple[str, ...]]) -> tuple[Trace, np.ndarray]:
    """Each occurrence of a chain: its first kernel runs the chain's total time; the
    later kernels and their single-kernel launch calls disappear."""
    wanted = {tuple(c) for c in chains}
    lengths = sorted({len(c) for c in wanted})
    cands = find_candidates(t, lengths=lengths, threshold=0.0)
    kt = join_kernels(t)
    kernel_rows = np.flatnonzero(t.gpu["kind"] == 0)  # join order -> gpu rows
    drop_gpu, drop_launch = set(), set()
    g = t.gpu.copy()
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
    return replace(t, gpu=g[keep_g], launches=ln), removed


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
    bounds = [(int(r["t_begin"]), int(r["t_end"])) for r in t.regions] or [
        (int(ln["t_begin"].min()), int(ln["t_end"].max()) + 1)
    ]
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
    new_gl = np.where(new_gl >= 0, idx[np.maximum(new_gl, 0)], -1)
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
