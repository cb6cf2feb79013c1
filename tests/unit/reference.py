"""A slow, obvious implementation of SPEC.md §2–3, straight from the raw JSON.

It shares no code with skipnative: the trace is read with the json module
(decimals kept exact), and every metric is a Python loop over events.
"""

from __future__ import annotations

import gzip
import json
import re
from decimal import Decimal

SINGLE = {
    "cudaLaunchKernel",
    "cudaLaunchKernelExC",
    "cudaLaunchCooperativeKernel",
    "cuLaunchKernel",
    "cuLaunchKernelEx",
    "cuLaunchCooperativeKernel",
}
SINGLE |= {n + "_ptsz" for n in SINGLE}
SINGLE |= {  # SPEC.md v1.1 §1: the HIP twins (traces from AMD GPUs)
    "hipLaunchKernel",
    "hipExtLaunchKernel",
    "hipModuleLaunchKernel",
    "hipExtModuleLaunchKernel",
    "hipHccModuleLaunchKernel",
    "hipLaunchCooperativeKernel",
}
GRAPH = {"cudaGraphLaunch", "cuGraphLaunch", "cudaGraphLaunch_ptsz", "cuGraphLaunch_ptsz"}
GRAPH |= {"hipGraphLaunch"}
LAUNCH_CATS = {"cuda_runtime", "cuda_driver", "Runtime"}  # "Runtime": torch 1.8-1.10
KERNEL_CATS = {"kernel", "Kernel"}
OP_CATS = {"cpu_op", "Operator"}


def is_copy_or_set(name: str) -> bool:
    """SPEC.md §1's copy/set calls: the asynchronous copies and sets of the CUDA
    runtime and driver and of HIP, and hipMemcpyWithStream."""
    if name == "hipMemcpyWithStream":
        return True
    return re.match(r"^(cuda|cu|hip)Mem(cpy|set)\w*Async(_v\d+)?(_ptsz)?$", name) is not None


def ns(x) -> int:
    return int((Decimal(str(x)) * 1000).to_integral_value(rounding="ROUND_HALF_UP"))


def read(path: str) -> list[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f, parse_float=Decimal)["traceEvents"]


def _events(path: str):
    """(launches by correlation, first-launch begins, kernels, top-level op begins,
    annotations (name, begin, end)) of a trace."""
    launches, launch_begins, kernels, annotations = {}, [], [], []
    ops_by_thread: dict = {}
    for e in read(path):
        if e.get("ph") != "X":
            continue
        cat, args = e.get("cat"), e.get("args", {})
        b, end = ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])
        name = e["name"]
        if cat in LAUNCH_CATS:
            launches[args.get("correlation")] = (b, end, name)
            if name in SINGLE or name in GRAPH or is_copy_or_set(name):
                launch_begins.append(b)
        elif cat in KERNEL_CATS:
            kernels.append(
                {
                    "start": b,
                    "end": end,
                    "corr": args.get("correlation"),
                    "device": args.get("device"),
                    "stream": args.get("stream"),
                    "name": name,
                }
            )
        elif cat == "user_annotation" or (cat in OP_CATS and name.startswith("ProfilerStep#")):
            annotations.append((name, b, end))  # a ProfilerStep is never an ATen op
        elif cat in OP_CATS:
            ops_by_thread.setdefault((e["pid"], e["tid"]), []).append((b, end))
    tops = []
    for ops in ops_by_thread.values():
        # Top-level: no other op of its thread contains it. In start order (longer
        # first at equal starts) an op is contained exactly when an earlier op ends
        # at or after its end.
        ops.sort(key=lambda o: (o[0], -(o[1] - o[0])))
        max_end = None
        for b, end in ops:
            if max_end is None or end > max_end:
                tops.append(b)
                max_end = end
    return launches, sorted(launch_begins), kernels, sorted(tops), annotations


def reference(path: str, region: str | None = None, window=None) -> list[dict]:
    """SPEC.md v1.1 §2-3 per region and device: "all" and the ProfilerStep#N
    regions, or "all"/the regions named `region` (annotations too, each
    occurrence its own); with `window` (t0, t1) ns, only kernels whose launch
    (or, unmatched, whose start) begins in [t0, t1)."""
    launches, launch_begins, kernels, tops, annotations = _events(path)

    # graph launches: the earliest kernel of each counts
    first_of_graph = {}
    for k in kernels:
        lk = launches.get(k["corr"])
        if lk and lk[2] in GRAPH:
            cur = first_of_graph.get(k["corr"])
            if cur is None or k["start"] < cur["start"]:
                first_of_graph[k["corr"]] = k
    # a stream predecessor is the previous kernel of the stream in the whole trace
    by_stream: dict = {}
    for k in sorted(kernels, key=lambda k: k["start"]):
        by_stream.setdefault((k["device"], k["stream"]), []).append(k)
    prev_end = {}
    for seq in by_stream.values():
        for a, b in zip(seq, seq[1:]):
            prev_end[id(b)] = a["end"]

    def anchor(k):
        lk = launches.get(k["corr"])
        return lk[0] if lk else k["start"]

    lo, hi = window if window is not None else (None, None)

    def inside(t, t0, t1):
        return (t0 is None or t >= t0) and (t1 is None or t < t1)

    if region is None:
        regions = [("all", None, None)] + sorted(
            (a for a in annotations if a[0].startswith("ProfilerStep#")), key=lambda r: r[1]
        )
    elif region == "all":
        regions = [("all", None, None)]
    else:
        regions = sorted((a for a in annotations if a[0] == region), key=lambda r: r[1])
    out = []
    for name, t0, t1 in regions:
        inr = [k for k in kernels if inside(anchor(k), t0, t1) and inside(anchor(k), lo, hi)]
        # IL's start: first top-level op in the region (and window), else the
        # region's marker, else the first launch of §1
        a0 = t0 if lo is None else lo if t0 is None else max(t0, lo)
        a1 = t1 if hi is None else hi if t1 is None else min(t1, hi)
        cand = [t for t in tops if inside(t, a0, a1)]
        if cand:
            start = cand[0]
        elif t0 is not None and inside(t0, lo, hi):
            start = t0
        else:
            firsts = [t for t in launch_begins if inside(t, a0, a1)]
            start = firsts[0] if firsts else min((k["start"] for k in inr), default=None)
        for dev in sorted({k["device"] for k in inr}):
            out.append(
                _region(
                    name,
                    dev,
                    [k for k in inr if k["device"] == dev],
                    start,
                    launches,
                    first_of_graph,
                    prev_end,
                )
            )
    return out


def _region(name, dev, ks, start, launches, first_of_graph, prev_end) -> dict:
    counted, graph_extra, other, unmatched = [], 0, 0, 0
    for k in ks:
        lk = launches.get(k["corr"])
        if lk is None:
            unmatched += 1
        elif lk[2] in SINGLE or first_of_graph.get(k["corr"]) is k:
            counted.append((k, lk))
        elif lk[2] in GRAPH:
            graph_extra += 1
        else:
            other += 1
    tklqt = api = wait = neg = queued = 0
    min_neg = 0
    for k, (lb, le, _n) in counted:
        lq = k["start"] - lb
        if lq < 0:  # contributes 0 to every sum
            neg += 1
            min_neg = min(min_neg, lq)
            continue
        tklqt += lq
        api += le - lb
        wait += k["start"] - le
    for k, (_lb, le, _n) in counted:
        if prev_end.get(id(k), -(2**62)) > le:
            queued += 1
    durs = [k["end"] - k["start"] for k in ks]
    il = max(k["end"] for k in ks) - start
    # union of intervals
    busy, cur_s, cur_e = 0, None, None
    for s, e in sorted((k["start"], k["end"]) for k in ks):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                busy += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    busy += cur_e - cur_s
    # idle before each kernel on its stream, split at its launch call's begin
    idle = {}
    for st in {k["stream"] for k in ks}:
        seq = sorted((k for k in ks if k["stream"] == st), key=lambda k: k["start"])
        free = min(start, seq[0]["start"])
        host = launch = 0
        for k in seq:
            gap = max(k["start"] - free, 0)
            lk = launches.get(k["corr"])
            if lk:
                before = min(max(min(lk[0], k["start"]) - free, 0), gap)
                host += before
                launch += gap - before
            free = max(free, k["end"])
        idle[st] = (host, launch)
    qf = queued / len(counted) if counted else 0.0
    return {
        "name": name,
        "device": dev,
        "n_kernels": len(ks),
        "n_counted_kernels": len(counted),
        "n_graph_extra_kernels": graph_extra,
        "n_unmatched_kernels": unmatched,
        "n_other_call_kernels": other,
        "n_negative_lq": neg,
        "min_negative_lq_ns": min_neg,
        "tklqt_ns": tklqt,
        "launch_api_ns": api,
        "launch_wait_ns": wait,
        "akd_ns": sum(durs) / len(durs),
        "il_ns": il,
        "gpu_idle_ns": il - sum(durs),
        "gpu_busy_ns": busy,
        "gpu_idle_union_ns": il - busy,
        "gpu_idle_host_ns": sum(h for h, _ in idle.values()),
        "gpu_idle_launch_ns": sum(la for _, la in idle.values()),
        "idle_by_stream_ns": idle,
        "queued_fraction": qf,
        "bound": "none" if not counted else "gpu" if qf >= 0.5 else "cpu",
    }
