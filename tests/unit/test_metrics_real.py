"""SPEC.md v1.1 metrics on the real Kineto traces (CUDA, ROCm and an old-format
one), against an independent reference."""

from __future__ import annotations

import numpy as np
import pytest

import skipnative
from realdata import CUDA, DATA, OLD_FORMAT, ROCM
from reference import reference

ALL = [*CUDA, ROCM, OLD_FORMAT]
TRACES = [p for p in ALL if p.is_file()]
COUNTS = (
    "n_kernels",
    "n_counted_kernels",
    "n_graph_extra_kernels",
    "n_unmatched_kernels",
    "n_other_call_kernels",
    "n_negative_lq",
    "bound",
)
TIMES = (
    "tklqt",
    "launch_api",
    "launch_wait",
    "il",
    "gpu_idle",
    "gpu_busy",
    "gpu_idle_union",
    "gpu_idle_host",
    "gpu_idle_launch",
    "akd",
    "min_negative_lq",
)


@pytest.fixture(scope="module", params=[p.name for p in TRACES] or ["missing"])
def pair(request):
    if request.param == "missing":
        pytest.fail(f"no real traces found in {DATA}")
    path = str(DATA / request.param)
    return skipnative.load(path), reference(path)


def test_traces_are_present():
    assert len(TRACES) == len(ALL), f"expected the six real traces in {DATA}"


def assert_matches(rows, ref):
    """Row for row (regions in begin order, devices ascending), leaving out rows
    without kernels, which the reference has not."""
    rows = [r for r in rows if r.metrics["n_kernels"]]
    assert [(r.name, r.device) for r in rows] == [(r["name"], r["device"]) for r in ref]
    for row, r in zip(rows, ref):
        m = row.metrics
        for key in COUNTS:
            assert m[key] == r[key], (r["name"], key)
        for key in TIMES:
            assert m[f"{key}_us"] == pytest.approx(r[f"{key}_ns"] / 1e3, rel=1e-12, abs=1e-9), (
                r["name"],
                key,
            )
        assert m["queued_fraction"] == pytest.approx(r["queued_fraction"], abs=1e-12)
        assert m["tklqt_us"] == pytest.approx(m["launch_api_us"] + m["launch_wait_us"])
        per_stream = {s["stream"]: [s["host_us"], s["launch_us"]] for s in row.idle_by_stream}
        want = {st: [h / 1e3, la / 1e3] for st, (h, la) in r["idle_by_stream_ns"].items()}
        assert sorted(per_stream) == sorted(want)
        for st, v in want.items():
            assert per_stream[st] == pytest.approx(v, rel=1e-12, abs=1e-9), (r["name"], st)
        assert m["gpu_idle_streams"] == len(want)


def test_metrics_match_reference(pair):
    trace, ref = pair
    rows = trace.metrics()
    assert_matches(rows, ref)
    for r in rows:  # SPEC.md v1.1 §2: the four counts add up
        m = r.metrics
        parts = ("n_counted_kernels", "n_graph_extra_kernels", "n_unmatched_kernels")
        assert sum(m[k] for k in parts) + m["n_other_call_kernels"] == m["n_kernels"]


def test_step_regions_partition_the_steps(pair):
    trace, _ = pair
    steps = [r for r in trace.metrics() if r.name.startswith("ProfilerStep#")]
    names = [trace.strings[i] for i in trace.regions["name_id"]]
    assert sorted({r.name for r in steps}) == sorted({n for n in names if "ProfilerStep#" in n})
    assert all(r.name == "all" or r.name.startswith("ProfilerStep#") for r in trace.metrics())


def test_ns_resolution_timestamps_are_exact():
    # The V100 trace has fractional microseconds: nanoseconds must survive exactly.
    path = DATA / "v100_ns_resolution_rank0.json.gz"
    trace = skipnative.load(path)
    frac = trace.gpu["t_start"] % 1000
    assert (frac != 0).any()
    from reference import ns, read

    first = next(e for e in read(str(path)) if e.get("cat") == "kernel")
    assert ns(first["ts"]) in set(trace.gpu["t_start"].tolist())


@pytest.mark.parametrize(
    "name, region",
    [
        ("sampled_rank0.json.gz", "## forward ##"),
        ("v100_ns_resolution_rank0.json.gz", "## forward ##"),
        ("a100_trace_diff_control.json.gz", "## zero_grad ##"),
        ("mi250_rocm_minitoy_train.json.gz", "Optimizer.step#SGD.step"),
    ],
)
def test_annotation_regions_match_reference(name, region):
    path = str(DATA / name)
    trace = skipnative.load(path)
    ref = reference(path, region=region)
    n = sum(1 for i in trace.regions["name_id"] if trace.strings[i] == region)
    rows = trace.metrics(region=region)
    assert n >= 1 and all(r.name == region for r in rows)
    assert len({r.device for r in rows}) * n >= len(rows) >= n  # each occurrence its own
    assert_matches(rows, ref)


@pytest.mark.parametrize("name", [p.name for p in TRACES])
def test_window_matches_reference(name):
    """A window over the middle of the kernels' launches: every metric of the
    launches beginning inside it."""
    path = str(DATA / name)
    trace = skipnative.load(path)
    k = trace.gpu[trace.gpu["kind"] == 0]
    t = np.sort(k["t_start"])
    base = int(trace.meta.get("baseTimeNanoseconds") or 0)
    lo, hi = int(t[len(t) // 4]), int(t[3 * len(t) // 4])
    rows = trace.metrics(region="all", window=(lo, hi))
    ref = reference(path, region="all", window=(lo - base, hi - base))
    assert rows and ref
    assert_matches(rows, ref)


def test_two_device_trace_derived_from_a_real_one(tmp_path):
    """One process driving two GPUs: every launch of the real trace repeated 3 µs
    later on its own thread for device 1, with its kernels (new correlation ids).
    Each device's row matches the reference, and device 1's launch-and-queue
    times equal device 0's."""
    import gzip
    import json

    from reference import read

    events = read(str(DATA / "sampled_rank0.json.gz"))
    extra, offset = [], 1 << 24
    for e in events:
        args = e.get("args") or {}
        if e.get("ph") != "X" or "correlation" not in args:
            continue
        if e.get("cat") not in ("cuda_runtime", "cuda_driver", "kernel"):
            continue
        twin = dict(e, ts=e["ts"] + 3, args=dict(args, correlation=args["correlation"] + offset))
        if e["cat"] == "kernel":
            twin["pid"] = twin["args"]["device"] = args["device"] + 1
        else:
            twin["tid"] = e["tid"] + 1
        extra.append(twin)
    path = tmp_path / "two_devices.json.gz"
    with gzip.open(path, "wt") as f:
        doc = {"schemaVersion": 1, "traceEvents": events + extra}
        json.dump(doc, f, default=lambda d: int(d) if d == int(d) else float(d))
    trace = skipnative.load(str(path))
    rows = trace.metrics()
    assert_matches(rows, reference(str(path)))
    by = {(r.name, r.device): r.metrics for r in rows}
    assert {d for _n, d in by} == {0, 1}
    for (name, dev), m in by.items():
        if dev == 1:
            m0 = by[(name, 0)]
            assert m["n_kernels"] == m0["n_kernels"] and m["tklqt_us"] == pytest.approx(
                m0["tklqt_us"]
            )
