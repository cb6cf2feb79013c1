"""skip compare --per-iteration: each side is labelled with the device its kernels
ran on, and its mean is over the iterations that ran kernels (an empty step would
halve every mean); those left out are counted and said."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

import skipnative
from kineto_gen import kernel, launch, step, write
from realdata import DATA, ROCM


def skip(*args):
    return subprocess.run(
        [sys.executable, "-m", "skipnative", *map(str, args)], capture_output=True, text=True
    )


def _kernel_devices(path) -> set[int]:
    return {int(d) for d in np.unique(skipnative.load(path).kernels["device"])}


def _steps(path) -> list[dict]:
    return [r.metrics for r in skipnative.load(path).metrics(top=0) if r.name != "all"]


def test_rocm_per_iteration_is_labelled_with_the_device_its_kernels_ran_on():
    # the MI250 trace's kernels all ran on device 2 of the four it lists
    (dev,) = _kernel_devices(ROCM)
    assert dev == 2
    r = skip("compare", ROCM, ROCM, "--per-iteration", "--json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["regions"]
    assert row["device_a"] == row["device_b"] == dev
    plain = json.loads(skip("compare", ROCM, ROCM, "--json").stdout)["regions"][0]
    assert (row["device_a"], row["device_b"]) == (plain["device_a"], plain["device_b"])


def test_an_empty_step_is_left_out_of_the_mean_and_said():
    steps = _steps(ROCM)
    full = [m for m in steps if m["n_kernels"] > 0]
    assert len(steps) == 2 and len(full) == 1  # ProfilerStep#2 launched nothing
    r = skip("compare", ROCM, ROCM, "--per-iteration", "--json")
    (row,) = json.loads(r.stdout)["regions"]
    m = row["metrics"]
    # the mean over the steps that ran kernels: the one full step, not it halved
    assert m["n_kernels"]["a"] == m["n_kernels"]["b"] == full[0]["n_kernels"]
    assert m["il_us"]["a"] == full[0]["il_us"]
    assert row["iterations_a"] == row["iterations_b"] == 1
    assert row["empty_iterations_a"] == row["empty_iterations_b"] == 1
    text = skip("compare", ROCM, ROCM, "--per-iteration").stdout
    assert "1 empty iteration left out" in text


def test_two_different_traces_each_keep_their_own_device_and_mean():
    a = DATA / "a100_trace_diff_control.json.gz"  # six steps, on device 3
    r = skip("compare", a, ROCM, "--per-iteration", "--json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["regions"]
    (dev_a,) = _kernel_devices(a)
    (dev_b,) = _kernel_devices(ROCM)
    assert (row["device_a"], row["device_b"]) == (dev_a, dev_b)
    for side, path in (("a", a), ("b", ROCM)):
        full = [m["n_kernels"] for m in _steps(path) if m["n_kernels"] > 0]
        assert row["metrics"]["n_kernels"][side] == sum(full) / len(full)
        assert row[f"iterations_{side}"] == len(full)


def test_a_trace_whose_every_step_is_empty_is_refused(tmp_path):
    # one step that ends before anything is launched: no iteration to average
    ev = [step(0, 5, 1), launch(10, 5, 1), kernel(20, 5, 1)]
    empty = write(tmp_path / "empty_steps.json", ev)
    r = skip("compare", ROCM, empty, "--per-iteration")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "internal" not in r.stderr
    assert str(empty) in r.stderr and "no kernel" in r.stderr


def _two_device_trace(path, steps):
    """`steps` steps of 100 us, each launching one kernel on device 0 and one on 1."""
    ev, corr = [], 1
    for n in range(steps):
        t = n * 100
        ev.append(step(t, 100, n + 1))
        for dev in (0, 1):
            ev += [
                launch(t + 10 + 20 * dev, 5, corr),
                kernel(t + 20 + 20 * dev, 5, corr, device=dev),
            ]
            corr += 1
    return write(path, ev)


def test_each_device_is_compared_with_the_same_device_whatever_the_counts(tmp_path):
    a = _two_device_trace(tmp_path / "a.json", 2)
    b = _two_device_trace(tmp_path / "b.json", 3)
    r = skip("compare", a, b, "--per-iteration", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["regions"]
    assert sorted((x["device_a"], x["device_b"]) for x in rows) == [(0, 0), (1, 1)]
    for x in rows:  # one kernel per step and device on both sides
        assert x["metrics"]["n_kernels"]["a"] == x["metrics"]["n_kernels"]["b"] == 1
        assert (x["iterations_a"], x["iterations_b"]) == (2, 3)


def _with_and_without_latency(tmp_path):
    """(A, B): the same three launches and kernels in one step; A, a .skip file,
    has CUPTI's submitted times and one kernel that starts before its launch call
    returns; B, a torch.profiler trace, records no submitted time."""
    import dataclasses

    b = write(
        tmp_path / "b.json",
        [step(0, 400, 1)]
        + [launch(100 * i, 10, i + 1) for i in range(3)]
        + [kernel(100 * i + 20, 10, i + 1) for i in range(3)],
    )
    t = skipnative.load(b)
    g = t.gpu.copy()
    k = np.flatnonzero(g["kind"] == 0)
    g["t_submitted"][k] = g["t_start"][k] - 4_000
    early = k[1]  # starts 5 µs before its call returns
    shift = g["t_start"][early] - (int(t.launches["t_end"].max()) - 100_000 - 5_000)
    g["t_start"][early] -= shift
    g["t_end"][early] -= shift
    g["t_submitted"][early] = g["t_start"][early] - 1_000
    a = tmp_path / "a.skip"
    dataclasses.replace(t, gpu=g, origin=None).save(str(a))
    return a, b


LATENCY_ONLY = ("n_latency_kernels", "launch_submit_us", "launch_queue_us")


def test_a_metric_one_side_does_not_record_is_no_zero(tmp_path):
    a, b = _with_and_without_latency(tmp_path)
    for mode in ([], ["--per-iteration"]):
        r = skip("compare", a, b, "--json", *mode)
        assert r.returncode == 0, r.stderr
        (row,) = json.loads(r.stdout)["regions"]
        for key in LATENCY_ONLY:
            m = row["metrics"][key]
            assert m["a"] > 0 and m["b"] is None, (mode, key, m)
            assert m["diff"] is None and m["ratio"] is None, (mode, key, m)
        # measured on both sides: no early start in B is a true 0
        early = row["metrics"]["launch_early_us"]
        assert early["a"] < 0 and early["b"] == 0 and early["ratio"] == 0
        assert "-0.0" not in r.stdout
        r = skip("compare", a, b, *mode)
        assert r.returncode == 0, r.stderr
        rows = {ln.split()[0]: ln.split()[1:] for ln in r.stdout.splitlines() if ln.strip()}
        for key in LATENCY_ONLY:
            assert rows[key][1:] == ["-", "-", "-"], (mode, key, rows[key])
        assert rows["launch_early_us"][-1] == "0.000"
        assert [c for c in r.stdout.split() if c[:2] == "-0" and not c.strip("-0.,")] == []


def test_folders_of_ranks_mark_what_one_side_does_not_record(tmp_path):
    # the same pair as rank 0 of two folders: compared as folders, a metric one
    # side does not record is no 0 either
    a, b = _with_and_without_latency(tmp_path)
    (tmp_path / "A").mkdir()
    (tmp_path / "B").mkdir()
    os.rename(a, tmp_path / "A" / "rank0.skip")
    os.rename(b, tmp_path / "B" / "rank0.json")
    r = skip("compare", tmp_path / "A", tmp_path / "B", "--json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["regions"]
    for key in LATENCY_ONLY:
        m = row["metrics"][key]
        assert m["a"] > 0 and m["b"] is None, (key, m)
        assert m["diff"] is None and m["ratio"] is None, (key, m)
    assert row["metrics"]["launch_early_us"]["ratio"] == 0
