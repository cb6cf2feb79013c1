"""measure_fidelity records the kernel-activity-only floor beside the timing
pass's perturbation, on the CUPTI double (virtual time: a timer that reads it)."""

from __future__ import annotations

from skipnative.profiling.passes import FLOOR_OPTIONS, measure_fidelity


def test_floor_is_measured_in_the_same_blocks_under_kernel_activity_only(gpu):
    seen: list[dict] = []

    def fn():
        gpu.launch("k", 1000)

    def timer(f):
        # launch callbacks on (a timing-pass capture) cost 500 ns more in this model
        t0 = gpu.now()
        f()
        extra = 500 if gpu.enabled_callbacks else 0
        seen.append({"callbacks": gpu.enabled_callbacks, "kinds": gpu.enabled_activity_kinds})
        return (gpu.now() - t0 + extra) / 1e6

    res = measure_fidelity(fn, 4, {"clock": "library"}, timer=timer)
    assert res["reps"] == 4
    assert res["perturbation"] > res["floor_perturbation"] == 0.0
    # under the floor's captures: kernel activity and no callback
    floor_runs = [s for s in seen if s["kinds"] == 1 and s["callbacks"] == 0]
    assert len(floor_runs) == 4
    assert FLOOR_OPTIONS["launch_callbacks"] is False


def test_floor_can_be_left_out(gpu):
    res = measure_fidelity(
        lambda: gpu.launch("k", 1000), 2, {}, timer=lambda f: (f(), 1.0)[1], floor=False
    )
    assert "floor_perturbation" not in res
