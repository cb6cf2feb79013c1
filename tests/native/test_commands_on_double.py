"""`skip profile`, `skip sweep` and `skip report` end to end on the CUPTI test
double's simulated GPU, driven by a --script workload (no torch, no GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from skipnative.testing import library_path

WORKLOAD = textwrap.dedent("""
    from skipnative.testing import SimulatedGpu

    def make(batch):  # given the batch size (skip sweep passes the names FUNC takes)
        if batch == 8:
            raise RuntimeError("CUDA out of memory (simulated)\\nmore detail")
        gpu = SimulatedGpu()
        gpu.reset()
        # real time: the double stamps its GPU through skipnative's clock
        gpu.configure(launch_cost_ns=3000, submit_latency_ns=2000, real_time=True)

        def step():
            for _ in range(10 * (batch + 1)):
                gpu.launch("gemm", 200000)
                gpu.launch("relu", 2000)
            gpu.sync()

        return step
""")


def skip(tmp_path, *args):
    env = {**os.environ, "SKIPNATIVE_CUPTI_LIBRARY": library_path()}
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", *map(str, args)],
        capture_output=True,
        env=env,
        cwd=tmp_path,
    )
    # decoded by hand: text mode would turn a carriage return into a newline
    r.stdout, r.stderr = r.stdout.decode(), r.stderr.decode()
    return r


def test_sweep_and_report_on_the_simulated_gpu(tmp_path):
    (tmp_path / "w.py").write_text(WORKLOAD)
    r = skip(
        tmp_path,
        "sweep",
        "--script",
        "w.py:make",
        "--batch-sizes",
        "1,2",
        "--iters",
        "3",
        "--warmup",
        "1",
        "--no-attribution",
        "--out",
        "run",
    )
    assert r.returncode == 0, r.stderr
    # stderr is no terminal here: a line a point, no carriage returns gluing them
    progress = [line for line in r.stderr.splitlines() if line.startswith("[")]
    assert "\r" not in r.stderr and len(progress) == 3 and "2 points" in progress[-1]
    out = tmp_path / "run"
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["card"] == "simulated GPU (CUPTI test double)"
    assert [p["batch"] for p in doc["points"]] == [1, 2]
    p = doc["points"][0]
    assert p["native"]["n_kernels"] == 40 and p["native"]["iterations"] == 3
    assert doc["points"][1]["native"]["n_kernels"] == 60  # the script saw batch=2
    # 200 us kernels behind launches every few us: the simulated run is GPU-bound
    assert p["native"]["bound"] == "gpu" and p["dropped"]["launches"] == 0
    assert (out / "b1.skip").exists() and (out / "b2.json").exists()
    # one untimed iteration first inside the capture (CUPTI's first-launch setup)
    import skipnative

    t = skipnative.load(out / "b1.skip")
    assert len(t.kernels) == 4 * 40 and len(t.regions) == 3
    assert t.kernels["t_start"].min() < t.regions["t_begin"].min()
    pytest.importorskip("matplotlib")
    r = skip(tmp_path, "report", "run")
    assert r.returncode == 0, r.stderr
    report = (out / "report.md").read_text()
    assert "simulated GPU" in report
    assert doc["script"] == str(tmp_path / "w.py") + ":make"
    assert report.startswith("# TKLQT sweep: w.py:make")  # not the default workload's title


def test_a_failing_point_stops_the_sweep_and_keeps_the_others(tmp_path):
    (tmp_path / "w.py").write_text(WORKLOAD)
    r = skip(
        tmp_path, "sweep", "--script", "w.py:make", "--batch-sizes", "1,8,16",
        "--iters", "2", "--warmup", "1", "--no-attribution", "--out", "run",
    )  # fmt: skip
    assert r.returncode == 1
    line = r.stderr.strip().splitlines()[-1]
    assert line == (
        "skip: error: batch 8 failed: the workload (w.py:make) failed at batch 8: "
        "RuntimeError: CUDA out of memory (simulated) (sweep.json holds the 1 point before it)"
    )
    doc = json.loads((tmp_path / "run" / "sweep.json").read_text())
    assert [p["batch"] for p in doc["points"]] == [1]
    assert doc["failed"]["batch"] == 8 and "out of memory" in doc["failed"]["error"]
    pytest.importorskip("matplotlib")
    r = skip(tmp_path, "report", "run")
    assert r.returncode == 0, r.stderr
    assert "stopped at batch 8, which failed" in (tmp_path / "run" / "report.md").read_text()


def test_sweep_and_profile_replace_an_earlier_run_only_with_force(tmp_path):
    (tmp_path / "w.py").write_text(WORKLOAD)
    opts = ["--script", "w.py:make", "--iters", "2", "--warmup", "1", "--no-attribution"]
    r = skip(tmp_path, "sweep", *opts, "--batch-sizes", "1,2", "--out", "run")
    assert r.returncode == 0, r.stderr
    (tmp_path / "run" / "report.md").write_text("an earlier report")
    before = (tmp_path / "run" / "b1.skip").read_bytes()
    r = skip(tmp_path, "sweep", *opts, "--batch-sizes", "1", "--out", "run")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"skip: error: {tmp_path / 'run' / 'sweep.json'}: already exists "
        "(use --force to replace it)"
    ]
    assert (tmp_path / "run" / "b1.skip").read_bytes() == before  # nothing touched
    r = skip(tmp_path, "profile", *opts, "--batch", "1", "--out", "run")
    assert r.returncode == 1 and "run/b1.skip: already exists" in r.stderr
    r = skip(tmp_path, "sweep", *opts, "--batch-sizes", "1", "--out", "run", "--force")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "run" / "sweep.json").read_text())
    assert [p["batch"] for p in doc["points"]] == [1]
    # nothing of the earlier sweep is left to be read as one of this one's
    left = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert left == ["b1.json", "b1.skip", "sweep.json"]
    r = skip(tmp_path, "profile", *opts, "--batch", "1", "--out", "run", "--force")
    assert r.returncode == 0, r.stderr


def test_a_script_that_fails_to_import_is_named(tmp_path):
    (tmp_path / "w.py").write_text("raise ValueError(1)\n")
    r = skip(tmp_path, "profile", "--script", "w.py:make", "--no-attribution", "--out", "run")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "skip: error: --script: w.py: importing it failed: ValueError: 1"
    ]


@pytest.mark.parametrize(
    ("spec", "said", "status"),
    [
        ("w.py:nope", "--script: w.py has no function 'nope'", 1),
        ("gone.py:make", "--script: gone.py: no such file", 1),
        # a malformed value is a usage error, as the parser's own
        ("w.py", "--script: expected FILE:FUNC, got 'w.py' (see 'skip sweep --help')", 2),
    ],
)
def test_a_bad_script_is_refused_before_the_sweep_starts(tmp_path, spec, said, status):
    # found only when batch 1 ran, leaving a sweep.json of no points behind
    (tmp_path / "w.py").write_text(WORKLOAD)
    r = skip(tmp_path, "sweep", "--script", spec, "--batch-sizes", "1", "--out", "run")
    assert r.returncode == status and r.stderr.strip().splitlines() == [f"skip: error: {said}"]
    assert not (tmp_path / "run").exists()


def test_profile_with_launch_times_from_activity_records(tmp_path):
    (tmp_path / "w.py").write_text(WORKLOAD)
    r = skip(
        tmp_path, "profile", "--script", "w.py:make", "--batch", "1", "--iters", "2",
        "--warmup", "1", "--no-attribution", "--launch-records", "activity", "--out", "run",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    import skipnative

    t = skipnative.load(tmp_path / "run" / "b1.skip")
    assert t.meta["launch_records"] == "activity"
    from skipnative.trace import KIND_KERNEL, KIND_SYNC

    kinds = t.launches["kind"]
    # the untimed iteration and two timed, each 40 launches and a synchronize
    assert (kinds == KIND_KERNEL).sum() == len(t.kernels) == 3 * 40
    assert (kinds == KIND_SYNC).sum() == 3
    m = t.metrics(region="all")[0].metrics
    assert m["n_unmatched_kernels"] == 0 and m["n_negative_lq"] == 0
    # each launch call spans at least the double's 3 us launch cost
    d = (t.launches["t_end"] - t.launches["t_begin"])[kinds == KIND_KERNEL]
    assert d.min() >= 3000 - 100


# Launches through the CUDA runtime and driver doubles (not the CUPTI double's own
# launch), which the hooks wrap: each iteration 10 * batch launches and a sync.
HOOK_WORKLOAD = textwrap.dedent("""
    from skipnative.testing.launcher import _Cuda

    def make(batch):
        cuda = _Cuda(kernel_ns=20000, hold_subscriber=False)
        stream, kernel = cuda.stream(), cuda.kernel("k")

        def step():
            cuda.launch(kernel, stream, 10 * batch)
            assert cuda.drv.cuStreamSynchronize(stream) == 0

        return step
""")


def _hook_capture(path, batch: int) -> None:
    import numpy as np

    import skipnative

    t = skipnative.load(path)
    assert t.meta["launch_source"] == "hook" and t.meta["launch_hook_fallback"] == ""
    names = t.name(t.launches["name_id"])
    # the driver call cudart resolved, as the hooks see it (callbacks: cudaLaunchKernel)
    assert names.count("cuLaunchKernel") == len(t.kernels) == 3 * 10 * batch
    assert np.isin(t.kernels["correlation"], t.launches["correlation"]).all()


def test_profile_with_launch_times_from_the_hooks(tmp_path):
    (tmp_path / "w.py").write_text(HOOK_WORKLOAD)
    r = skip(
        tmp_path, "profile", "--script", "w.py:make", "--batch", "2", "--iters", "2",
        "--warmup", "1", "--no-attribution", "--launch-records", "hook", "--out", "run",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "not possible" not in r.stderr  # no fallback warning
    _hook_capture(tmp_path / "run" / "b2.skip", 2)


def test_profile_restarted_for_the_hooks_keeps_the_interpreter_options(tmp_path):
    # `skip profile --launch-records hook` starts itself again with the hooks in
    # LD_PRELOAD: the workload (which runs only in the new process) sees the
    # interpreter's -X and -W options as given to the first one
    (tmp_path / "w.py").write_text(
        HOOK_WORKLOAD
        + textwrap.dedent("""
            import json, sys

            _make = make

            def make(batch):
                with open("interpreter.json", "w") as f:
                    json.dump({"x": sys._xoptions, "w": sys.warnoptions}, f)
                return _make(batch)
        """)
    )
    env = {**os.environ, "SKIPNATIVE_CUPTI_LIBRARY": library_path()}
    env.pop("LD_PRELOAD", None)
    r = subprocess.run(
        [
            sys.executable, "-X", "skipnative_probe=1", "-W", "default::DeprecationWarning",
            "-m", "skipnative", "profile", "--script", "w.py:make", "--batch", "1",
            "--iters", "1", "--warmup", "1", "--no-attribution", "--launch-records", "hook",
            "--out", "run",
        ],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    seen = json.loads((tmp_path / "interpreter.json").read_text())
    assert seen["x"].get("skipnative_probe") == "1"
    assert "default::DeprecationWarning" in seen["w"]
    assert (tmp_path / "run" / "b1.skip").is_file()


def test_sweep_points_take_launch_times_from_the_hooks(tmp_path):
    (tmp_path / "w.py").write_text(HOOK_WORKLOAD)
    r = skip(
        tmp_path, "sweep", "--script", "w.py:make", "--batch-sizes", "1,2", "--iters", "2",
        "--warmup", "1", "--no-attribution", "--launch-records", "hook", "--out", "run",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    for b in (1, 2):
        _hook_capture(tmp_path / "run" / f"b{b}.skip", b)


@pytest.mark.parametrize("command", ["run", "profile", "sweep"])
def test_launch_records_hook_without_the_hooks_library_is_one_line(
    tmp_path, monkeypatch, capsys, command
):
    import types

    from skipnative.capturing import session
    from skipnative.cli.main import main

    real, _ = session.native()
    fake = tmp_path / "pkg"
    fake.mkdir()
    # the injection library is there (skip run needs it first), the hooks are not
    lib = os.path.join(os.path.dirname(real.__file__), "libskipnative_inject.so")
    (fake / "libskipnative_inject.so").symlink_to(lib)
    mod = types.SimpleNamespace(__file__=str(fake / "_native.so"))
    monkeypatch.setattr(session, "native", lambda: (mod, ""))
    out = tmp_path / "out"
    args = {
        "run": ["run", "--out", str(out), "--launch-records", "hook", "--", sys.executable],
        "profile": ["profile", "--out", str(out), "--launch-records", "hook"],
        "sweep": ["sweep", "--out", str(out), "--launch-records", "hook"],
    }[command]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err == (
        f"skip: error: --launch-records hook: {fake / 'libskipnative_hooks.so'} is not "
        "installed beside skipnative._native\n"
    )
    assert not out.exists()  # nothing started


def test_a_capture_on_the_double_is_said_to_be_of_a_simulated_gpu(tmp_path, gpu):
    import skipnative

    with skipnative.capture(clock="library") as cap:
        gpu.launch("gemm", 2000)
        gpu.sync()
    cap.trace.save(tmp_path / "sim.skip")
    r = skip(tmp_path, "analyze", "sim.skip")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "sim.skip (skip, simulated GPU)"
    r = skip(tmp_path, "analyze", "sim.skip", "--json")
    assert json.loads(r.stdout)["vendor"] == "simulated"


def test_sweep_points_joined_by_stream_order(tmp_path):
    (tmp_path / "w.py").write_text(HOOK_WORKLOAD)
    r = skip(
        tmp_path, "sweep", "--script", "w.py:make", "--batch-sizes", "1", "--iters", "2",
        "--warmup", "1", "--no-attribution", "--launch-records", "hook", "--hook-join", "order",
        "--out", "run",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "skip: note" not in r.stderr
    _hook_capture(tmp_path / "run" / "b1.skip", 1)
    import skipnative

    meta = skipnative.load(tmp_path / "run" / "b1.skip").meta
    # the timing pass has latency timestamps: every pair checked by a queued time
    assert meta["hook_join"] == "order" and meta["pairs_checked"] == 3 * 10
    assert meta["hook_api_records"] == ""


def test_a_sweep_says_when_its_points_hooks_saw_no_launch(tmp_path):
    # the simulated GPU's launches do not go through the driver's entry points
    (tmp_path / "w.py").write_text(WORKLOAD)
    r = skip(
        tmp_path, "sweep", "--script", "w.py:make", "--batch-sizes", "1", "--iters", "2",
        "--warmup", "1", "--no-attribution", "--launch-records", "hook", "--out", "run",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "skip: note: batch 1: the launch hooks recorded no launch call while" in r.stderr


@pytest.mark.parametrize("command", ["sweep", "profile"])
def test_an_out_that_is_a_file_is_refused_by_name_before_the_workload_runs(tmp_path, command):
    (tmp_path / "w.py").write_text(WORKLOAD)
    (tmp_path / "taken").write_text("not a folder")
    opts = ["--script", "w.py:make", "--iters", "2", "--warmup", "1", "--no-attribution"]
    for out, what in (
        ("taken", "is a file"),
        ("taken/run", f"lies below a file ({tmp_path / 'taken'})"),
    ):
        r = skip(tmp_path, command, *opts, "--out", out)
        assert r.returncode == 1
        assert r.stderr.strip().splitlines() == [
            f"skip: error: {out}: {what}; the output names a folder"
        ]
    assert (tmp_path / "taken").read_text() == "not a folder"
