"""A sweep point's summary (analysis.sweep.run_summary, what `skip whatif DIR` and
the report show per point): the mean over the iterations that launched kernels,
on one device, never diluted by empty steps or mixed across devices."""

from __future__ import annotations

import pytest

import skipnative
from kineto_gen import kernel, launch, step, write
from skipnative.analysis.sweep import run_summary


def steps_trace(tmp_path, per_step, name="t"):
    """One ProfilerStep per entry of `per_step`, a list of (device, kernel count):
    launches 10 us apart, each kernel 4 us long, right after its launch."""
    ev, t, corr = [], 0, 0
    for n, launches in enumerate(per_step, 1):
        begin = t
        t += 5
        for device, count in launches:
            for _ in range(count):
                corr += 1
                ev.append(launch(t, 3, corr))
                ev.append(kernel(t + 4, 4, corr, device=device, stream=7 + device))
                t += 10
        t += 20
        ev.append(step(begin, t - begin, n))
        t += 5
    return skipnative.load(write(tmp_path / f"{name}.json", ev))


def test_an_empty_step_is_left_out_of_the_mean_and_counted(tmp_path):
    full = steps_trace(tmp_path, [[(0, 4)], [(0, 4)]], "full")
    with_empty = steps_trace(tmp_path, [[(0, 4)], [(0, 4)], []], "empty")
    a, b = run_summary(full), run_summary(with_empty)
    # the empty step launched nothing: the per-iteration means are those of the others
    assert b["n_kernels"] == a["n_kernels"] == 4
    for k in ("tklqt_us", "il_us", "queued_fraction", "akd_us"):
        assert b[k] == pytest.approx(a[k]), k
    assert (b["iterations"], b["empty_iterations"]) == (2, 1)
    assert (a["iterations"], a["empty_iterations"]) == (2, 0)


def test_devices_are_not_mixed_the_busiest_is_summarised(tmp_path):
    # every step: 6 kernels on device 1, 2 on device 0
    both = steps_trace(tmp_path, [[(0, 2), (1, 6)]] * 3, "both")
    s = run_summary(both)
    assert s["device"] == 1 and s["n_kernels"] == 6 and s["iterations"] == 3
    rows = [r for r in both.metrics(top=0) if r.name != "all" and r.device == 1]
    for k in ("tklqt_us", "il_us", "queued_fraction"):
        assert s[k] == pytest.approx(sum(r.metrics[k] for r in rows) / len(rows)), k


def test_without_a_kernel_in_any_step_the_whole_capture_is_summarised(tmp_path):
    # a first empty step, and kernels only outside every step
    ev = [step(0, 10, 1)]
    for i in range(3):
        ev += [launch(100 + 10 * i, 3, i + 1), kernel(104 + 10 * i, 4, i + 1)]
    t = skipnative.load(write(tmp_path / "outside.json", ev))
    s = run_summary(t)
    assert s["n_kernels"] == 3 and s["iterations"] == 0 and s["empty_iterations"] == 1


def _data(values, knee, transition, kineto=None):
    def s(k, t):
        return {"values": values, "knee": k, "queue_transition": t, "agree": k == t}

    data = {"values": values, "graphs": False, "native_series": s(knee, transition)}
    if kineto:
        data |= {"kineto": [{}] * len(values), "kineto_series": s(*kineto)}
    return data


def test_the_report_never_prints_none_for_a_knee_or_transition():
    from skipnative.report.sections import _verdict, kineto_transition

    for data in (_data([4], None, 4, (None, None)), _data([1, 2, 4], None, None, (None, 2))):
        text = _verdict(data) + " ".join(kineto_transition(data).blocks)
        assert "None" not in text and "disagree" not in text, text


def test_a_one_point_sweep_says_the_knee_needs_two_batch_sizes():
    from skipnative.report.sections import _verdict

    text = _verdict(_data([4], None, 4))
    assert "two or more batch sizes" in text and "not reached" not in text.split("knee")[1]


def test_the_kineto_sentence_reads_as_a_sentence():
    # 480db24 left it as "would be at: 8; the knee at: 2."
    from skipnative.report.sections import kineto_transition

    data = _data([1, 2, 4, 8], 2, 4, kineto=(2, 8))
    (text,) = kineto_transition(data).blocks
    assert text == (
        "From the Kineto (torch.profiler) pass the transition would be at 8, and the knee at 2."
    )
    data = _data([1, 2], None, None, kineto=(None, None))
    (text,) = kineto_transition(data).blocks
    assert text.endswith("would not be reached in this range, and no knee in this range.")
