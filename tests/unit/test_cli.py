"""The skip command end to end, in a subprocess, on real traces."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import skipnative
from skipnative.analysis.metrics import METRIC_KEYS

DATA = Path(__file__).resolve().parents[1] / "data" / "kineto"
TRACE = str(DATA / "sampled_rank0.json.gz")


def skip(*args, ok=True):
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", *map(str, args)], capture_output=True, text=True
    )
    if ok:
        assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return r


def test_analyze_json_is_one_object_with_the_contract():
    out = json.loads(skip("analyze", TRACE, "--json").stdout)
    keys = {"trace", "format", "vendor", "regions", "api_calls", "dropped", "records_latency"}
    assert set(out) == keys | {"malformed_events"}
    assert out["dropped"] == {}  # a torch.profiler trace counts no loss
    assert out["malformed_events"] == {}  # nor an event it could not read
    assert out["records_latency"] is False  # nor any CUPTI submitted time
    assert out["trace"] == TRACE and out["format"] == "kineto" and out["vendor"] == "NVIDIA"
    names = [r["name"] for r in out["regions"]]
    assert names == ["all", "ProfilerStep#551", "ProfilerStep#552"]
    for r in out["regions"]:
        assert set(r) == {"name", "device", "metrics", "top_kernels", "idle_by_stream"}
        assert set(METRIC_KEYS) <= set(r["metrics"])
        assert r["metrics"]["bound"] in ("cpu", "gpu")
        assert len(r["top_kernels"]) <= 10
    # the same numbers as the Python API
    api = skipnative.load(TRACE).metrics()
    assert [r["metrics"] for r in out["regions"]] == [r.metrics for r in api]


def test_analyze_region_and_top():
    out = json.loads(
        skip("analyze", TRACE, "--json", "--region", "ProfilerStep#552", "--top", "2").stdout
    )
    assert [r["name"] for r in out["regions"]] == ["ProfilerStep#552"]
    assert len(out["regions"][0]["top_kernels"]) == 2
    r = skip("analyze", TRACE, "--region", "nope", ok=False)
    assert r.returncode == 1 and "no region named 'nope'" in r.stderr


def test_api_summary_against_the_raw_calls(tmp_path):
    from kineto_gen import kernel, launch, write
    from skipnative.analysis.metrics import api_summary

    ev = [launch(100, 5, 1), kernel(110, 5, 1), launch(200, 40, 2), kernel(245, 5, 2)]
    ev += [launch(300, 7, 3), kernel(310, 5, 3), launch(400, 3, 4, name="cudaMemcpyAsync")]
    rows = api_summary(skipnative.load(write(tmp_path / "t.json", ev)))
    assert rows[0] == {
        "name": "cudaLaunchKernel",
        "calls": 3,
        "total_us": 52.0,
        "median_us": 7.0,
        "max_us": 40.0,
        "max_at_us": 100.0,
    }
    assert rows[1]["name"] == "cudaMemcpyAsync" and rows[1]["calls"] == 1
    out = skip("analyze", TRACE, "--api", "--region", "all").stdout
    assert "CPU calls" in out and "cudaLaunchKernel" in out and "max_at_us" in out
    # the extra metrics follow SPEC.md's in the table
    assert out.index("queued_fraction") < out.index("gpu_idle_host_us")


def test_analyze_table_names_the_bound():
    out = skip("analyze", TRACE, "--region", "all").stdout
    assert "GPU-bound" in out or "CPU-bound" in out
    assert "tklqt_us" in out and "top kernels" in out


def test_export_skip_and_perfetto_round_trip(tmp_path):
    sk = tmp_path / "t.skip"
    pf = tmp_path / "t.json.gz"
    skip("export", TRACE, "--skip", sk)
    skip("export", sk, "--perfetto", pf)
    a = json.loads(skip("analyze", TRACE, "--json").stdout)["regions"]
    b = json.loads(skip("analyze", sk, "--json").stdout)["regions"]
    c = json.loads(skip("analyze", pf, "--json").stdout)["regions"]
    assert a == b == c
    r = skip("export", TRACE, "--skip", sk, ok=False)
    assert r.returncode == 1 and "already exists" in r.stderr


@pytest.mark.parametrize(
    ("argv", "name", "named"),
    [
        (["export", "--perfetto"], "t.txt", ".json or .json.gz"),
        (["export", "--perfetto"], "t.skip", ".json or .json.gz"),  # not a .skip to read back
        (["export", "--skip"], "t.json.gz", ".skip"),  # not gzip: read back, refused
        (["kernels", "--csv"], "k.parquet", ".csv"),
        (["kernels", "--parquet"], "k.csv", ".parquet or .pq"),
    ],
)
def test_an_output_named_for_another_format_is_refused(tmp_path, argv, name, named):
    out = tmp_path / name
    r = skip(argv[0], TRACE, argv[1], out, ok=False)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith(f"skip: error: argument {argv[1]}: '{out}': ")
    assert f"must end in {named}" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("fmt", ["--skip", "--perfetto"])
def test_export_says_what_the_command_line_can_do(tmp_path, fmt):
    # the CLI user has --force, not the Python API's overwrite=True
    suffix = ".skip" if fmt == "--skip" else ".json"
    out = tmp_path / f"t{suffix}"
    out.write_text("mine")
    r = skip("export", TRACE, fmt, out, ok=False)
    assert r.returncode == 1 and out.read_text() == "mine"
    assert r.stderr == f"skip: error: {out}: already exists (use --force to replace it)\n"
    # a folder is no file --force would replace: neither is offered
    folder = tmp_path / f"d{suffix}"
    folder.mkdir()
    for force in ([], ["--force"]):
        r = skip("export", TRACE, fmt, folder, *force, ok=False)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1
        assert "not a regular file" in r.stderr, r.stderr
        assert "overwrite" not in r.stderr and "--force" not in r.stderr


def test_compare_identical_traces_has_unit_ratios(tmp_path):
    out = json.loads(skip("compare", TRACE, TRACE, "--json").stdout)
    m = out["regions"][0]["metrics"]
    assert m["tklqt_us"]["ratio"] == pytest.approx(1.0) and m["tklqt_us"]["diff"] == 0
    assert m["gpu_idle_host_us"]["diff"] == 0  # the metrics beyond SPEC.md too
    api = {c["name"]: c for c in out["api_calls"]}
    assert api["cudaLaunchKernel"]["ratio"] == 1.0
    assert api["cudaLaunchKernel"]["calls_a"] == api["cudaLaunchKernel"]["calls_b"] > 0


def test_compare_native_and_kineto_of_the_same_work():
    # The H200 batch-1 point measured both ways: the launch calls themselves take
    # the same time; torch.profiler's cost lies in the host work between them.
    root = Path(__file__).resolve().parents[2]
    kineto = root / "bench/results/h200-2026-11-26/sweep/b1_kineto.json.gz"
    native = root / "bench/results/h200-2026-11-26/first_iteration/b1.skip"
    out = json.loads(skip("compare", kineto, native, "--json").stdout)
    m = out["regions"][0]["metrics"]
    assert m["n_kernels"]["diff"] == 0
    api = {c["name"]: c for c in out["api_calls"]}
    assert api["cudaLaunchKernel"]["ratio"] == pytest.approx(1.0, abs=0.05)
    assert m["gpu_idle_launch_us"]["ratio"] == pytest.approx(1.0, abs=0.02)
    assert m["gpu_idle_host_us"]["ratio"] < 0.75
    text = skip("compare", kineto, native).stdout
    assert "CPU calls in both" in text and "gpu_idle_host_us" in text


def test_info_reports_capture_state():
    out = json.loads(skip("info", "--json").stdout)
    assert isinstance(out["capture_available"], bool) and out["reason"]


def test_missing_compiled_module_is_one_line(monkeypatch, capsys):
    from skipnative.cli import info, main

    def broken(args):
        raise ImportError("cannot import name '_native' from 'skipnative'")

    monkeypatch.setattr(info, "run", broken)
    assert main.main(["info"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "compiled module is missing" in err


# runs the skip command with an optional dependency made impossible to import
WITHOUT = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == sys.argv[1]:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
from skipnative.cli.main import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("command", [["demo", "--out", "{tmp}/demo"], ["report", "{tmp}/sweep"]])
def test_without_matplotlib_report_commands_name_the_extra(tmp_path, command):
    import shutil

    from skipnative.cli.demo import BUNDLED

    shutil.copytree(BUNDLED, tmp_path / "sweep")
    args = [a.format(tmp=tmp_path) for a in command]
    r = subprocess.run(
        [sys.executable, "-c", WITHOUT, "matplotlib", *args], capture_output=True, text=True
    )
    assert r.returncode == 1, r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    assert "pip install 'skipnative[report]'" in r.stderr and "Traceback" not in r.stderr


def test_an_unexpected_error_is_one_line_unless_a_traceback_is_asked_for(monkeypatch, capsys):
    from skipnative.cli import info, main

    def broken(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(info, "run", broken)
    monkeypatch.delenv("SKIP_DEBUG", raising=False)
    assert main.main(["info"]) == 70
    assert capsys.readouterr().err == "skip: internal error: RuntimeError: boom\n"
    for argv, env in (
        (["--traceback", "info"], "0"),
        (["info", "--traceback"], ""),
        (["info"], "1"),
    ):
        monkeypatch.setenv("SKIP_DEBUG", env)
        assert main.main(argv) == 70
        err = capsys.readouterr().err
        assert err.startswith("Traceback (most recent call last):"), (argv, env, err)
        assert "in broken" in err and "RuntimeError: boom\n" in err
        assert err.endswith("\nskip: internal error: RuntimeError: boom\n")


def test_compare_per_iteration_labels_each_side_with_its_own_count():
    other = str(DATA / "v100_ns_resolution_rank0.json.gz")  # 5 steps against 2
    out = json.loads(skip("compare", TRACE, other, "--per-iteration", "--json").stdout)
    (row,) = out["regions"]
    assert (row["iterations_a"], row["iterations_b"]) == (2, 5)
    assert row["label_a"] == "per iteration (mean of 2)"
    assert row["label_b"] == "per iteration (mean of 5)"
    text = skip("compare", TRACE, other, "--per-iteration").stdout
    assert "A: per iteration (mean of 2)" in text and "B: per iteration (mean of 5)" in text


def test_rocm_trace_reads_like_a_cuda_one_and_says_amd():
    out = json.loads(
        skip("analyze", str(DATA / "mi250_rocm_minitoy_train.json.gz"), "--json").stdout
    )
    assert out["vendor"] == "AMD"
    m = out["regions"][0]["metrics"]
    assert m["n_kernels"] == m["n_counted_kernels"] == 14 and m["tklqt_us"] > 0
    text = skip("analyze", str(DATA / "mi250_rocm_minitoy_train.json.gz")).stdout
    assert "AMD GPU" in text.splitlines()[0]


def test_a_gpu_bound_verdict_on_an_idle_gpu_points_to_the_long_calls():
    # the alexnet trace: most kernels queue (GPU-bound by SPEC's rule), yet the GPU
    # is busy for milliseconds of a 43 s span made by a few long calls
    alex = DATA / "a100_alexnet_train.json.gz"
    m = json.loads(skip("analyze", alex, "--region", "all", "--json").stdout)["regions"][0]
    m = m["metrics"]
    assert m["bound"] == "gpu" and m["gpu_busy_us"] < 0.05 * m["il_us"]
    out = skip("analyze", alex, "--region", "all").stdout
    assert "GPU-bound" in out and "yet the GPU was busy" in out and "--api" in out
    # a GPU-bound step of a busy GPU says nothing of it
    busy = str(DATA / "a100_trace_diff_control.json.gz")
    assert "yet the GPU was busy" not in skip("analyze", busy).stdout


@pytest.mark.parametrize(
    ("orig_argv", "options"),
    [
        (["py", "-m", "skipnative", "profile", "-X", "x"], []),
        (["py", "-X", "dev", "-Wdefault", "-O", "-m", "skipnative", "profile"],
         ["-X", "dev", "-Wdefault", "-O"]),
        (["py", "-OO", "-W", "error", "-Xfrozen_modules=off", "/bin/skip", "-X", "y"],
         ["-OO", "-W", "error", "-Xfrozen_modules=off"]),
        (["py", "-Im", "skipnative", "-O"], ["-I"]),
        (["py", "-bX", "utf8", "-c", "code", "-O"], ["-bX", "utf8"]),
        (["py", "--check-hash-based-pycs", "never", "-E", "-", "-O"],
         ["--check-hash-based-pycs", "never", "-E"]),
    ],
)  # fmt: skip
def test_a_restart_keeps_the_interpreter_options_only(orig_argv, options):
    # `skip profile --launch-records hook` starts itself again: with the options
    # given to the interpreter, none of the program's own arguments
    from skipnative.cli.profile import interpreter_options

    assert interpreter_options(orig_argv) == options


def test_an_output_in_a_missing_folder_names_the_output(tmp_path):
    out = tmp_path / "nowhere" / "o.json"
    r = skip("export", TRACE, "--perfetto", out, ok=False)
    assert r.returncode == 1 and str(out) in r.stderr and "no such folder" in r.stderr
    assert ".tmp" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_skip_run_says_a_command_is_not_executable(tmp_path):
    f = tmp_path / "script.sh"
    f.write_text("#!/bin/sh\n")
    f.chmod(0o644)
    r = skip("run", "--out", tmp_path / "r", "--", f, ok=False)
    assert r.returncode == 1 and "not executable" in r.stderr
    r = skip("run", "--out", tmp_path / "r", "--", tmp_path / "missing", ok=False)
    assert r.returncode == 1 and "no such file" in r.stderr


def test_report_of_a_missing_folder_says_so(tmp_path):
    r = skip("report", tmp_path / "missing", ok=False)
    assert r.returncode == 1 and "no such folder" in r.stderr
    assert "sweep.json" not in r.stderr.split(":")[0]
    assert not (tmp_path / "missing").exists()  # it made the folder before it looked


def test_jobs_must_not_be_negative():
    r = skip("analyze", DATA, "--jobs", "-1", ok=False)
    assert r.returncode == 2 and "--jobs" in r.stderr


def test_window_header_reads_as_a_range():
    text = skip("analyze", TRACE, "--window", "2000:").stdout
    assert "window [2,000.0, end) µs" in text


def test_kernels_checks_its_output_before_reading_a_folder(tmp_path):
    # two files of one rank: reading the folder warns about them, so a warning means it was read
    for name in ("rank0.json", "rank0_again.json"):
        shutil.copyfile(DATA / "sampled_rank0.json.gz", tmp_path / (name + ".gz"))
    out = tmp_path / "k.parquet"
    r = subprocess.run(
        [sys.executable, "-c", WITHOUT, "pyarrow", "kernels", tmp_path, "--parquet", out],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "needs pyarrow" in r.stderr and "warning" not in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    out = out.with_suffix(".csv")
    out.write_text("x")
    r = skip("kernels", tmp_path, "--csv", out, ok=False)
    assert r.returncode == 1 and "already exists" in r.stderr and "warning" not in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--iters", "99999999999999"], "--iters: 99999999999999 is above the limit of 1e+08"),
        (["--iters", "5"], "--iters: 5 is not at least 10"),
        (["--graph-kernels", "0"], "--graph-kernels: 0 is not at least 1"),
        (["--iters", "1e3"], "--iters: '1e3' is not an integer"),
    ],
)
def test_bench_launch_refuses_counts_it_cannot_run_in_one_line(args, message):
    # a count past what a C int takes ended in a 4-line pybind TypeError (exit 70)
    r = skip("bench", "launch", *args, ok=False)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"skip: error: argument {message} (see 'skip bench --help')"
    ]


def test_number_type_bounds():
    from skipnative.cli._common import number

    f = number(float, 0, 10, above=True)
    assert f("10") == 10.0 and f("1e-9") == 1e-9
    for bad in ("0", "-1", "nan", "inf", "-inf", "10.5", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            f(bad)
    n = number(int, -3)
    assert n("-3") == -3 and n(str(10**30)) == 10**30
    with pytest.raises(argparse.ArgumentTypeError):
        n("-4")


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--out", ""],
        ["report", "{sweep}", "--out", " "],
        ["export", TRACE, "--perfetto", ""],
        ["kernels", TRACE, "--csv", ""],
        ["run", "--out", "", "--", "true"],
    ],
)
def test_an_empty_output_path_is_refused(args):
    # `skip demo --out ""` wrote its report into the current folder without a word
    sweep = str(Path(skipnative.__file__).parent / "data" / "h100_llama1b_prefill")
    r = skip(*[a.replace("{sweep}", sweep) for a in args], ok=False)
    assert r.returncode == 2 and "an empty path" in r.stderr and r.stdout == ""


def test_followups_of_the_walk_are_one_line(tmp_path):
    b1 = Path(skipnative.__file__).parent / "data" / "h100_llama1b_prefill" / "b1.skip"
    r = skip("fusion", b1, "--device", "7", ok=False)
    assert r.returncode == 1
    assert r.stderr.strip() == f"skip: error: {b1}: no kernel ran on device 7 (devices: 0)"
    r = skip("whatif", b1, "--fuse", tmp_path / "none.json", ok=False)
    assert r.stderr.strip() == (
        f"skip: error: {tmp_path / 'none.json'}: cannot read chains: No such file or directory"
    )
    empty = tmp_path / "sweep"
    empty.mkdir()
    (empty / "sweep.json").write_text('{"points": []}')
    r = skip("whatif", empty, ok=False)
    assert r.returncode == 1 and "the sweep has no points" in r.stderr


def test_an_output_folder_that_is_a_file_is_named(tmp_path):
    # os.makedirs said only "File exists" / "Not a directory"
    sweep = Path(skipnative.__file__).parent / "data" / "h100_llama1b_prefill"
    f = tmp_path / "f.md"
    f.write_text("mine")
    r = skip("report", sweep, "--out", f, ok=False)
    assert r.stderr.strip() == f"skip: error: {f}: is a file; the output names a folder"
    r = skip("report", sweep, "--out", f / "x", ok=False)
    assert r.stderr.strip() == (
        f"skip: error: {f / 'x'}: lies below a file ({f}); the output names a folder"
    )
    assert f.read_text() == "mine"
    # a link to nowhere is no file (it was called one), and no folder either
    link = tmp_path / "gone"
    link.symlink_to(tmp_path / "nowhere")
    r = skip("report", sweep, "--out", link, ok=False)
    assert r.stderr.strip() == (
        f"skip: error: {link}: exists and is not a folder; the output names a folder"
    )
    r = skip("report", sweep, "--out", link / "x", ok=False)
    assert r.stderr.strip() == (
        f"skip: error: {link / 'x'}: lies below {link}, which is not a folder; "
        "the output names a folder"
    )


def test_a_window_without_launches_says_so(tmp_path):
    # a window past the trace's end printed all-zero regions without a word
    r = skip("analyze", TRACE, "--window", "99999999:")
    assert r.returncode == 0
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"skip: warning: {TRACE}: no launch call begins in --window 99999999:")
    assert "the trace's launches span" in line
    assert skip("analyze", TRACE, "--window", "0:").stderr == ""


@pytest.mark.parametrize("command", ["profile", "sweep"])
@pytest.mark.parametrize(
    ("option", "value"),
    [("--warmup", "-1"), ("--iters", "0"), ("--seq-len", "0"), ("--iters", "2.5")],
)
def test_workload_sizes_out_of_range_are_refused_when_parsed(tmp_path, command, option, value):
    r = skip(command, option, value, "--out", str(tmp_path / "o"), ok=False)
    assert r.returncode == 2 and not (tmp_path / "o").exists()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"argument {option}" in lines[0], r.stderr


def test_profile_batch_below_one_is_refused_when_parsed(tmp_path):
    r = skip("profile", "--batch", "0", "--out", str(tmp_path / "o"), ok=False)
    assert r.returncode == 2 and "argument --batch" in r.stderr


def test_version_is_the_package_s():
    # the project's declared version (pyproject.toml), not the installed metadata:
    # the tests also run on a package laid out by hand (.ci/aarch64.sh), with none
    import re

    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    declared = re.search(r'^version = "([^"]+)"', text, re.M).group(1)
    r = skip("--version")
    assert r.stdout == f"skip {declared}\n" and r.stderr == ""
    assert skipnative.__version__ == declared


def test_control_characters_in_trace_names_never_reach_the_terminal(tmp_path):
    """A kernel name holding ESC sequences (retitle the window, clear the screen)
    was printed as it was by the text tables; --json keeps the name exact."""
    from kineto_gen import kernel, launch, write

    name = "\u001b]0;pwned\u0007\u001b[2J\nfake"
    path = write(tmp_path / "esc.json", [launch(10, 5, 1), kernel(20, 10, 1, name=name)])
    for cmd in (["analyze", path], ["kernels", path], ["analyze", path, "--api"]):
        r = subprocess.run(
            [sys.executable, "-m", "skipnative", *cmd], capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        assert not any(c in r.stdout for c in "\x1b\x07"), cmd
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", "analyze", path, "--json"], capture_output=True
    )
    assert name in {k["name"] for k in json.loads(r.stdout)["regions"][0]["top_kernels"]}
