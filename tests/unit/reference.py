"""A slow, obvious implementation of SPEC.md §2–3, straight from the raw JSON.

It shares no code with skipnative: the trace is read with the json module
(decimals kept exact), and every metric is a Python loop over events.
"""

from __future__ import annotations

import gzip
import json
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
GRAPH = {"cudaGraphLaunch", "cuGraphLaunch", "cudaGraphLaunch_ptsz", "cuGraphLaunch_ptsz"}


def ns(x) -> int:
    return int((Decimal(str(x)) * 1000).to_integral_value(rounding="ROUND_HALF_UP"))


def read(path: str) -> list[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f, parse_float=Decimal)["traceEvents"]


def reference(path: str) -> list[dict]:
    events = [e for e in read(path) if e.get("ph") == "X"]
    launches = {}
    kernels = []
    tops = []
    steps = []
    ops_by_thread: dict = {}
    for e in events:
        cat, args = e.get("cat"), e.get("args", {})
        b, end = ns(e["ts"]), ns(e["ts"]) + ns(e["dur"])
        if cat in ("cuda_runtime", "cuda_driver"):
            launches[args.get("correlation")] = (b, end, e["name"])
        elif cat == "kernel":
            kernels.append(
                {
                    "start": b,
                    "end": end,
                    "corr": args.get("correlation"),
                    "device": args.get("device"),
                    "stream": args.get("stream"),
                    "name": e["name"],
                }
            )
        elif cat in ("user_annotation", "cpu_op") and e["name"].startswith("ProfilerStep#"):
            steps.append((e["name"], b, end))
        elif cat == "cpu_op":
            ops_by_thread.setdefault((e["pid"], e["tid"]), []).append((b, end))
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
    tops.sort()

    # graph launches: the earliest kernel of each counts
    first_of_graph = {}
    for k in kernels:
        lk = launches.get(k["corr"])
        if lk and lk[2] in GRAPH:
            cur = first_of_graph.get(k["corr"])
            if cur is None or k["start"] < cur["start"]:
                first_of_graph[k["corr"]] = k
    by_stream: dict = {}
    for k in sorted(kernels, key=lambda k: k["start"]):
        by_stream.setdefault((k["device"], k["stream"]), []).append(k)
    prev_end = {}
    for seq in by_stream.values():
        for a, b in zip(seq, seq[1:]):
            prev_end[id(b)] = a["end"]

    regions = [("all", None, None)] + sorted(((n, b, e) for n, b, e in steps), key=lambda r: r[1])
    out = []
    for name, t0, t1 in regions:

        def anchor(k):
            lk = launches.get(k["corr"])
            return lk[0] if lk else k["start"]

        inr = [k for k in kernels if t0 is None or t0 <= anchor(k) < t1]
        if t0 is None:
            start = tops[0] if tops else min(lb for lb, _e, _n in launches.values())
        else:
            cand = [t for t in tops if t0 <= t < t1]
            start = cand[0] if cand else t0
        for dev in sorted({k["device"] for k in inr}):
            ks = [k for k in inr if k["device"] == dev]
            counted = []
            for k in ks:
                lk = launches.get(k["corr"])
                if lk and (lk[2] in SINGLE or first_of_graph.get(k["corr"]) is k):
                    counted.append((k, lk))
            tklqt = api = wait = neg = queued = 0
            for k, (lb, le, _n) in counted:
                lq = k["start"] - lb
                if lq < 0:
                    neg += 1
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
            idle_host = idle_launch = 0
            for st in {k["stream"] for k in ks}:
                seq = sorted((k for k in ks if k["stream"] == st), key=lambda k: k["start"])
                free = min(start, seq[0]["start"])
                for k in seq:
                    gap = max(k["start"] - free, 0)
                    lk = launches.get(k["corr"])
                    if lk:
                        before = min(max(min(lk[0], k["start"]) - free, 0), gap)
                        idle_host += before
                        idle_launch += gap - before
                    free = max(free, k["end"])
            qf = queued / len(counted) if counted else 0.0
            out.append(
                {
                    "name": name,
                    "device": dev,
                    "n_kernels": len(ks),
                    "n_counted_kernels": len(counted),
                    "n_unmatched_kernels": sum(1 for k in ks if k["corr"] not in launches),
                    "n_negative_lq": neg,
                    "tklqt_ns": tklqt,
                    "launch_api_ns": api,
                    "launch_wait_ns": wait,
                    "akd_ns": sum(durs) / len(durs),
                    "il_ns": il,
                    "gpu_idle_ns": il - sum(durs),
                    "gpu_busy_ns": busy,
                    "gpu_idle_union_ns": il - busy,
                    "gpu_idle_host_ns": idle_host,
                    "gpu_idle_launch_ns": idle_launch,
                    "queued_fraction": qf,
                    "bound": "gpu" if qf >= 0.5 else "cpu",
                }
            )
    return out
