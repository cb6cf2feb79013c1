"""Capture fidelity on a GPU (SPEC.md §6), all in one process run, in interleaved blocks:

- perturbation: inference latency (IL, CUDA events, median of --reps) of a
  launch-bound workload and of the default decoder at batch 1, unprofiled,
  under skipnative's timing session and under torch.profiler;
- per-launch overhead: added CPU time per launch of a one-kernel op loop;
- after stop: the unprofiled loop again after skipnative's session ended
  (a session must leave the process as fast as before it started).

torch.profiler runs last: it keeps CUPTI once used.

Configurations: the timing pass as `skip profile` runs it (timing_pass), the
kernel-activity-only floor (kernel_activity_only), the timing pass with launch
records from the launch hooks (timing_pass_hook, joined by CUPTI's external
correlation records, and timing_pass_hook_order, joined by stream order: the
process must be started with
LD_PRELOAD=$(python -c "import skipnative; print(skipnative.launch_hooks_library())");
without it the configuration is reported refused, not measured), CUPTI's buffer
knobs one at a time (knob_*), and the parts of the timing pass alone.
--only picks configurations by label (unprofiled and torch_profiler always run).

    python bench/gpu_overhead.py [--reps 20] [--blocks 5] [--json OUT.json] [--only a,b]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

import numpy as np
from _gpu import loop_ns_per_launch, require_cuda

import skipnative
from skipnative.profiling import cuda_event_ms


def il_ms(fn, reps, mark=None):
    """Median IL of `reps` runs by CUDA events (SPEC.md section 6), each marked as
    a region when `mark` is given."""
    out = []
    for i in range(reps):
        if mark:
            mark(f"rep{i}")
        out.append(cuda_event_ms(fn))
    return statistics.median(out)


def hook_join_counts(cap) -> dict:
    """A hook capture's launches, kernels and what its join left unjoined."""
    md, t = cap.metadata, cap.trace
    keys = (
        "hook_join",
        "hook_api_records",
        "launches_unjoined",
        "work_unjoined",
        "launches_captured",
        "launches_failed",
        "pairs_checked",
        "pairs_ambiguous",
        "pairs_unverified",
    )
    out = {k: md.get(k) for k in keys}
    out.update(
        launches=len(t.launches),
        kernels=len(t.kernels),
        kernels_joined=int(np.isin(t.kernels["correlation"], t.launches["correlation"]).sum()),
    )
    return out


def order_replay(trace) -> dict:
    """The stream-order join on a capture whose correlation ids are true: how many
    of its calls with GPU work it gives their own work, with and without queued times."""
    from skipnative.capturing.order_join import replay_order_join

    out = {}
    for name, queued in (("queued", True), ("order_only", False)):
        r = replay_order_join(trace, queued=queued)
        out[name] = {"work_calls": r.work_calls, "agreed": r.agreed, "wrong": r.wrong, **r.counts}
    return out


def summarize(res: dict, samples: dict, refused: dict[str, str]) -> None:
    """Medians of the blocks measured so far, per configuration, into `res`."""
    for label, rows in samples.items():
        res["launch_loop"][label] = statistics.median(r[0] for r in rows)
        for w in res["workloads"]:
            res["workloads"][w][label] = statistics.median(r[1][w] for r in rows)
    res["blocks"] = {label: len(rows) for label, rows in samples.items()}
    res["cupti_version"] = res.get("skipnative_metadata", {}).get("cupti_version")
    res["refused"] = refused
    base_loop = res["launch_loop"]["unprofiled"]
    res["added_ns_per_launch"] = {k: v - base_loop for k, v in res["launch_loop"].items()}
    res["perturbation"] = {
        w: {k: v / r["unprofiled"] - 1 for k, v in r.items()} for w, r in res["workloads"].items()
    }


def write_json(path: str | None, res: dict) -> None:
    """`res` to `path`, whole or not at all (a run cut short keeps its last write)."""
    if not path:
        return
    with open(path + ".tmp", "w") as f:
        json.dump(res, f, indent=2)
    os.replace(path + ".tmp", path)


def configurations(cpu_count: int) -> dict[str, dict]:
    """Label -> skipnative.capture() options of every configuration measured
    besides "unprofiled" and "torch_profiler"."""
    from skipnative.profiling.passes import FLOOR_OPTIONS

    timing_pass = {"latency_timestamps": True}  # what skip profile's timing pass sets
    return {
        "timing_pass": timing_pass,
        "kernel_activity_only": FLOOR_OPTIONS,
        "timing_pass_hook": {**timing_pass, "launch_records": "hook"},
        # the hooks joined by stream order: no API record, no external correlation
        "timing_pass_hook_order": {**timing_pass, "launch_records": "hook", "hook_join": "order"},
        # CUPTI's event and synchronisation records (which record each wait is on)
        "timing_pass_stream_waits": {**timing_pass, "stream_waits": True},
        # CUPTI's documented knobs, each on top of the timing pass
        "knob_no_latency_timestamps": {},
        "knob_device_buffer_pre_allocate_16": {**timing_pass, "device_buffer_pre_allocate": 16},
        "knob_device_buffer_pool_limit_64": {**timing_pass, "device_buffer_pool_limit": 64},
        "knob_buffers_pooled_16": {**timing_pass, "activity_buffers_pooled": 16},
        "knob_buffers_8MiB": {
            **timing_pass,
            "activity_buffer_bytes": 8 << 20,
            "device_buffer_bytes": 8 << 20,
        },
        "knob_completion_cpu_last": {**timing_pass, "completion_cpu": cpu_count - 1},
        "skipnative": {},
        "skipnative_callbacks_only": {"kernel_activity": False, "memcpy": False, "memset": False},
        "skipnative_activity_only": {"launch_callbacks": False},
        "skipnative_driver_domain_only": {"api_domains": ("driver",)},
        "skipnative_device_buffer_64MiB": {"device_buffer_bytes": 64 << 20},
        "skipnative_latency_timestamps": {"latency_timestamps": True},
        # candidates for a cheaper kernel record, to compare with "skipnative"
        "skipnative_serial_kernels": {"serial_kernels": True},
        "skipnative_device_buffer_host_pinned": {"device_buffer_host_pinned": True},
        # launch times from CUPTI's API activity records instead of callbacks
        "skipnative_launch_activity": {"launch_records": "activity"},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--launches", type=int, default=20000)
    ap.add_argument("--json", metavar="OUT")
    ap.add_argument("--no-model", action="store_true", help="skip the decoder workloads")
    ap.add_argument("--only", help="comma-separated configuration labels to measure")
    ap.add_argument("--no-prefill", action="store_true", help="only the batch-1 decode step")
    args = ap.parse_args()
    require_cuda("gpu_overhead.py")

    import torch
    from torch.profiler import ProfilerActivity, profile

    dev = torch.cuda.get_device_name()
    x = torch.zeros(1024, device="cuda")

    def small_ops():  # launch-bound: 300 tiny kernels
        y = x
        for _ in range(100):
            y = (y * 1.0001 + 0.5).relu()
        return y

    workloads = {"small_ops_x300": small_ops}
    if not args.no_model:
        from skipnative.profiling import workloads as wl

        model = wl.build_decoder()
        if not args.no_prefill:
            workloads["llama1b_prefill_b1_s512"] = wl.prefill(model, 1, 512)
        workloads["llama1b_decode_b1_ctx512"] = wl.decode(model, 1, 512)

    for fn in workloads.values():  # warm-up
        for _ in range(5):
            fn()
    torch.cuda.synchronize()

    res: dict = {
        "device": dev,
        "reps": args.reps,
        "launches": args.launches,
        "workloads": {k: {} for k in workloads},
        "launch_loop": {},
    }

    samples: dict = {}

    def measure(label, cm=None):
        """Loop and IL medians of one block, under the context manager `cm` if given."""
        c = None
        if cm is None:
            loop = loop_ns_per_launch(x, args.launches, 3)
            il = {k: il_ms(f, args.reps) for k, f in workloads.items()}
        else:
            with cm as c:
                mark = getattr(c, "mark", None)
                loop = loop_ns_per_launch(x, args.launches, 3)
                il = {k: il_ms(f, args.reps, mark) for k, f in workloads.items()}
        samples.setdefault(label, []).append((loop, il))
        return c

    # Interleaved blocks, so drift of the machine hits every configuration alike;
    # each skipnative block starts and stops a session, so the unprofiled blocks
    # after the first also measure the process after a stop.
    configs = configurations(os.cpu_count() or 1)
    if args.only:
        keep = set(args.only.split(","))
        unknown = keep - set(configs) - {"unprofiled", "torch_profiler"}
        if unknown:
            raise SystemExit(f"gpu_overhead.py: --only: unknown {', '.join(sorted(unknown))}")
        configs = {k: v for k, v in configs.items() if k in keep}
    measure("unprofiled_before_any_session")
    refused: dict[str, str] = {}  # configurations this CUPTI or card does not take
    for block in range(args.blocks):
        measure("unprofiled")
        for label, opts in configs.items():
            if label in refused:
                continue
            try:
                cap = measure(label, skipnative.capture(**opts))
            except skipnative.CaptureError as e:
                refused[label] = str(e)
                print(f"{label}: refused here ({e})")
                continue
            fallback = cap.metadata.get("launch_hook_fallback")
            if opts.get("launch_records") == "hook" and fallback:
                refused[label] = fallback  # measured the callbacks: not this configuration
                samples.pop(label, None)
                print(f"{label}: not measured ({fallback})")
                continue
            if block == 0 and opts.get("launch_records") == "hook":
                # whether the hooks' launches joined their kernels on this CUPTI
                res.setdefault("hook_join", {})[label] = hook_join_counts(cap)
                print(f"{label}: {res['hook_join'][label]}")
            if block == 0 and label == "timing_pass":
                # the stream-order join replayed on this capture's true pairs
                res["order_replay"] = order_replay(cap.trace)
                print(f"order join replayed on {label}: {res['order_replay']}")
            if block == 0 and label in ("skipnative", "timing_pass"):
                res["skipnative_launch_records"] = len(cap.trace.launches)
                res["skipnative_metadata"] = {
                    k: v
                    for k, v in cap.metadata.items()
                    if k
                    in (
                        "cupti_version",
                        "cupti_path",
                        "cupti_origin",
                        "clock",
                        "dropped",
                        "cupti_finalized",
                    )
                }
        # what the blocks so far measured, kept should the run be cut short
        # (torch.profiler, measured last, is then missing)
        summarize(res, samples, refused)
        res["complete"] = False
        write_json(args.json, res)
    measure("unprofiled")
    if not args.only:
        measure("skipnative_no_finalize", skipnative.capture(finalize=False))
        measure("unprofiled_after_no_finalize")
    # torch.profiler keeps CUPTI once used, so it comes last: first with kernel
    # tracing alone (Kineto's share of what CUPTI costs), then as people use it
    if not args.only:
        measure("torch_profiler_cuda_only", profile(activities=[ProfilerActivity.CUDA]))
    measure("torch_profiler", profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]))
    summarize(res, samples, refused)
    res["complete"] = True
    write_json(args.json, res)
    labels = list(res["launch_loop"])
    print(f"capture fidelity on {dev} (medians; IL by CUDA events over {args.reps} reps)")
    print(
        f"{'configuration':<32}{'ns/launch':>10}{'added ns':>10}"
        + "".join(f"{w[:22]:>24}" for w in workloads)
    )
    for lab in labels:
        row = f"{lab:<32}{res['launch_loop'][lab]:>10.0f}{res['added_ns_per_launch'][lab]:>+10.0f}"
        for w in workloads:
            row += f"{res['workloads'][w][lab]:>14.3f} ms {res['perturbation'][w][lab]:>+6.1%}"
        print(row)


if __name__ == "__main__":
    main()
