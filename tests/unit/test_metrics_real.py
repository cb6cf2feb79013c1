"""SPEC.md metrics on the real Kineto traces, against an independent reference."""

from __future__ import annotations

import pytest

import skipnative
from realdata import CUDA, DATA
from reference import reference

TRACES = [p for p in CUDA if p.is_file()]


@pytest.fixture(scope="module", params=[p.name for p in TRACES] or ["missing"])
def pair(request):
    if request.param == "missing":
        pytest.fail(f"no real traces found in {DATA}")
    path = str(DATA / request.param)
    return skipnative.load(path), reference(path)


def test_traces_are_present():
    assert len(TRACES) == len(CUDA), f"expected the four real CUDA traces in {DATA}"


def test_metrics_match_reference(pair):
    trace, ref = pair
    got = {(r.name, r.device): r.metrics for r in trace.metrics()}
    assert len(got) == len(ref)
    for r in ref:
        m = got[(r["name"], r["device"])]
        for key in (
            "n_kernels",
            "n_counted_kernels",
            "n_unmatched_kernels",
            "n_negative_lq",
            "bound",
        ):
            assert m[key] == r[key], (r["name"], key)
        for key in (
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
        ):
            assert m[f"{key}_us"] == pytest.approx(r[f"{key}_ns"] / 1e3, rel=1e-12, abs=1e-9), (
                r["name"],
                key,
            )
        assert m["queued_fraction"] == pytest.approx(r["queued_fraction"], abs=1e-12)
        assert m["tklqt_us"] == pytest.approx(m["launch_api_us"] + m["launch_wait_us"])


def test_step_regions_partition_the_steps(pair):
    trace, _ = pair
    steps = [r for r in trace.metrics() if r.name.startswith("ProfilerStep#")]
    names = [trace.strings[i] for i in trace.regions["name_id"]]
    assert sorted({r.name for r in steps}) == sorted(set(names))


def test_ns_resolution_timestamps_are_exact():
    # The V100 trace has fractional microseconds: nanoseconds must survive exactly.
    path = DATA / "v100_ns_resolution_rank0.json.gz"
    trace = skipnative.load(path)
    frac = trace.gpu["t_start"] % 1000
    assert (frac != 0).any()
    from reference import ns, read

    first = next(e for e in read(str(path)) if e.get("cat") == "kernel")
    assert ns(first["ts"]) in set(trace.gpu["t_start"].tolist())
