"""Folders of per-rank traces: ranks, parallel analysis, bad files, cross-rank summary."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kineto_gen import kernel, launch, op, step, write
from skipnative.io.folder import assign_ranks, list_traces, rank_in_name


def skip(*args):
    r = subprocess.run(
        [sys.executable, "-m", "skipnative", *map(str, args)], capture_output=True, text=True
    )
    assert "Traceback" not in r.stderr
    return r


def rank_trace(path, kernel_us, gap_us=5, steps=2, gz=False, **top):
    """`steps` steps of 3 kernels of `kernel_us` each, launched `gap_us` apart."""
    events, corr, t = [], 1, 1000
    for s in range(steps):
        t0 = t
        events.append(op(t, 3 * (kernel_us + gap_us) + 10, name="aten::linear"))
        for _ in range(3):
            events += [launch(t + 1, 2, corr), kernel(t + 4, kernel_us, corr, name="gemm")]
            corr += 1
            t += kernel_us + gap_us
        events.append(step(t0, t - t0 + 20, s))
        t += 40
    return write(path, events, gz=gz, **top)


def test_rank_from_name_then_order():
    assert rank_in_name("/x/rank-3.json") == 3
    assert rank_in_name("trace_rank12.json.gz") == 12
    assert rank_in_name("worker.json") is None
    paths = ["a.json", "b_rank0.json", "c.json"]
    # recorded beats the name, the name beats order, order fills the free ranks
    assert assign_ranks(paths, [None, None, 5]) == [1, 0, 5]
    assert assign_ranks(["x.json", "y.json"], [None, None]) == [0, 1]


def test_folder_lists_traces_and_skips_others(tmp_path):
    rank_trace(tmp_path / "rank1.json", 10)
    rank_trace(tmp_path / "rank0.json.gz", 10, gz=True)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.json").write_text("{}")
    names = [p.rsplit("/", 1)[1] for p in list_traces(tmp_path)]
    assert names == ["rank0.json.gz", "rank1.json"]


def test_distributed_info_rank_wins_over_the_name(tmp_path):
    rank_trace(tmp_path / "rank0.json", 10, distributedInfo={"rank": 3, "world_size": 4})
    rank_trace(tmp_path / "other.json", 10)
    out = json.loads(skip("analyze", tmp_path, "--json").stdout)
    by_trace = {r["trace"].rsplit("/", 1)[1]: r["rank"] for r in out["ranks"]}
    assert by_trace == {"rank0.json": 3, "other.json": 0}


def test_every_region_has_its_rank_and_matches_the_single_file(tmp_path):
    for r, us in enumerate((10, 30, 20)):
        rank_trace(tmp_path / f"rank{r}.json", us)
    out = json.loads(skip("analyze", tmp_path, "--json").stdout)
    for r in range(3):
        alone = json.loads(skip("analyze", tmp_path / f"rank{r}.json", "--json").stdout)
        mine = [x for x in out["regions"] if x["rank"] == r]
        assert [x["metrics"] for x in mine] == [x["metrics"] for x in alone["regions"]]


def test_cross_rank_summary_names_the_slowest_rank(tmp_path):
    for r, us in enumerate((10, 30, 20)):
        rank_trace(tmp_path / f"rank{r}.json", us)
    out = json.loads(skip("analyze", tmp_path, "--json").stdout)
    steps = {s["name"]: s for s in out["steps"]}
    assert set(steps) == {"all", "ProfilerStep#0", "ProfilerStep#1"}
    for name, s in steps.items():
        il = {x["rank"]: x["metrics"]["il_us"] for x in out["regions"] if x["name"] == name}
        tk = {x["rank"]: x["metrics"]["tklqt_us"] for x in out["regions"] if x["name"] == name}
        assert s["slowest_rank"] == 1 and s["fastest_rank"] == 0  # 30 us kernels, 10 us
        assert s["il_spread_us"] == pytest.approx(il[1] - il[0])
        assert s["tklqt_spread_us"] == pytest.approx(max(tk.values()) - min(tk.values()))
        assert s["ranks"] == 3
    text = skip("analyze", tmp_path).stdout
    assert "across ranks" in text and "slowest" in text


def test_parallel_and_sequential_agree(tmp_path):
    for r in range(4):
        rank_trace(tmp_path / f"rank{r}.json", 10 + r)
    one = json.loads(skip("analyze", tmp_path, "--json", "--jobs", "1").stdout)
    two = json.loads(skip("analyze", tmp_path, "--json", "--jobs", "2").stdout)
    assert one == two


def test_one_bad_file_is_named_and_the_rest_analysed(tmp_path):
    rank_trace(tmp_path / "rank0.json", 10)
    rank_trace(tmp_path / "rank2.json", 10)
    (tmp_path / "rank1.json").write_text('{"traceEvents": [')
    r = skip("analyze", tmp_path, "--json")
    assert r.returncode == 1
    bad = [line for line in r.stderr.splitlines() if line]
    assert len(bad) == 1 and "rank1.json" in bad[0]
    out = json.loads(r.stdout)
    assert sorted(x["rank"] for x in out["ranks"]) == [0, 2]
    assert len(out["errors"]) == 1


def test_a_folder_where_every_file_fails_prints_only_the_errors(tmp_path):
    (tmp_path / "x.json").write_text("hello")
    (tmp_path / "rank1.json").write_text('{"traceEvents": [')
    r = skip("analyze", tmp_path)
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 2 and "x.json" in r.stderr


def test_no_traces_in_the_folder_is_one_line(tmp_path):
    r = skip("analyze", tmp_path)
    assert r.returncode == 1 and "no trace files" in r.stderr


def test_compare_folders_pairs_ranks(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    for r in range(2):
        rank_trace(a / f"rank{r}.json", 10)
        rank_trace(b / f"rank{r}.json", 20)
    out = json.loads(skip("compare", a, b, "--json").stdout)
    assert {x["rank"] for x in out["regions"]} == {0, 1}
    for x in out["regions"]:
        assert x["metrics"]["akd_us"]["ratio"] == pytest.approx(2.0)
    r = skip("compare", a, b / "rank0.json")
    assert r.returncode == 2 and "two folders" in r.stderr  # a usage error


def test_fusion_on_a_folder_gives_each_rank(tmp_path):
    for r in range(2):
        rank_trace(tmp_path / f"rank{r}.json", 10, steps=6)
    out = json.loads(skip("fusion", tmp_path, "--json", "--threshold", "0.01").stdout)
    assert [x["rank"] for x in out["ranks"]] == [0, 1]
    single = json.loads(
        skip("fusion", tmp_path / "rank0.json", "--json", "--threshold", "0.01").stdout
    )
    assert out["ranks"][0]["candidates"] == single["candidates"]


def test_run_folder_uses_run_json_files(tmp_path):
    rank_trace(tmp_path / "rank0.json", 10)
    rank_trace(tmp_path / "stale.json", 10)
    (tmp_path / "run.json").write_text(
        json.dumps({"format": "skipnative-run", "version": 1, "files": ["rank0.json"]})
    )
    assert [p.rsplit("/", 1)[1] for p in list_traces(tmp_path)] == ["rank0.json"]


def test_analyze_folder_names_the_file_of_each_rank(tmp_path):
    rank_trace(tmp_path / "rank0.json", 10)
    rank_trace(tmp_path / "worker_b.json.gz", 30, gz=True, distributedInfo={"rank": 1})
    want = {(0, "rank0.json"), (1, "worker_b.json.gz")}
    text = skip("analyze", tmp_path, "--api").stdout
    lines = text.split("\n\n")[0].splitlines()[1:]  # the table: header, rule, rows
    assert lines[0].split()[:3] == ["region", "rank", "file"]
    rows = [line.split() for line in lines[2:]]
    assert {(int(r[1]), r[2]) for r in rows} == want and len(rows) == 6
    assert len({len(line) for line in lines}) == 1  # every row as wide as the header
    assert "CPU calls of rank 1 (worker_b.json.gz)" in text
    out = json.loads(skip("analyze", tmp_path, "--json").stdout)
    assert {(r["rank"], r["file"]) for r in out["ranks"]} == want
    assert {(r["rank"], r["file"]) for r in out["regions"]} == want


def test_a_run_folders_run_json_given_as_a_trace_names_the_folder(tmp_path):
    run = tmp_path / "run-demo"
    run.mkdir()
    rank_trace(run / "rank0.json", 10)
    doc = {"format": "skipnative-run", "version": 1, "files": ["rank0.json"]}
    (run / "run.json").write_text(json.dumps(doc))
    for command in ("analyze", "kernels", "export"):
        extra = ["--perfetto", tmp_path / "o.json"] if command == "export" else []
        r = skip(command, run / "run.json", *extra)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1, r.stderr
        assert lines[0].startswith(f"skip: error: {run / 'run.json'}: ")
        assert "`skip run` folder's run.json" in lines[0] and f"skip analyze {run}" in lines[0]
    assert skip("analyze", run).returncode == 0  # the folder it names is read
    # a JSON document of another kind keeps the reader's own words
    (tmp_path / "other.json").write_text(json.dumps({"format": "other", "files": []}))
    r = skip("analyze", tmp_path / "other.json")
    assert r.returncode == 1 and "no traceEvents" in r.stderr and "skip run" not in r.stderr


def test_a_sweep_folders_sweep_json_given_as_a_trace_names_the_folder(tmp_path):
    sweep = tmp_path / "sw"
    sweep.mkdir()
    rank_trace(sweep / "b1.json", 10)
    doc = {"phase": "prefill", "points": [{"batch": 1, "file": "b1.json"}]}
    (sweep / "sweep.json").write_text(json.dumps(doc))
    r = skip("analyze", sweep / "sweep.json")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert "`skip sweep` folder's sweep.json" in lines[0] and f"skip report {sweep}" in lines[0]
    # another file with a points list is not taken for one
    (tmp_path / "points.json").write_text(json.dumps(doc))
    r = skip("analyze", tmp_path / "points.json")
    assert r.returncode == 1 and "no traceEvents" in r.stderr and "skip sweep" not in r.stderr


def test_two_files_of_one_rank_are_said_and_not_merged(tmp_path):
    # rank0.json by its name, other.json by what it records: both rank 0
    a = tmp_path / "a"
    a.mkdir()
    rank_trace(a / "rank0.json", 10)
    rank_trace(a / "other.json", 30, distributedInfo={"rank": 0, "world_size": 2})
    r = skip("analyze", a, "--json")
    assert r.returncode == 0
    assert "rank 0" in r.stderr and "other.json" in r.stderr and "rank0.json" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    out = json.loads(r.stdout)
    # each file's regions are still there, apart, each with its own trace
    akd = sorted(x["metrics"]["akd_us"] for x in out["regions"] if x["name"] == "all")
    assert akd == [10.0, 30.0]
    # the table says which file each of the shared rank's rows is
    text = skip("analyze", a).stdout
    assert "0 (other.json)" in text and "0 (rank0.json)" in text
    # two files, one rank: the header counts both, and the summary names the slower file
    assert "(folder of 2 traces, 1 rank)" in text.splitlines()[0]
    across = text.split("across ranks")[1]
    all_row = next(line for line in across.splitlines() if line.startswith("all "))
    assert all_row.split()[2:4] == ["0", "(other.json)"]
    steps = {s["name"]: s for s in out["steps"]}
    assert steps["all"]["entries"] == 2 and steps["all"]["slowest_trace"].endswith("other.json")
    # compare pairs files by rank: with two files for one rank it cannot, and says so
    b = tmp_path / "b"
    b.mkdir()
    rank_trace(b / "rank0.json", 20)
    r = skip("compare", a, b)
    assert r.returncode == 1 and "rank 0" in r.stderr and "one file per rank" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_sweep_folder_is_not_taken_for_ranks(tmp_path):
    # a skip sweep folder holds a trace per batch size and sweep.json: its points
    # are not ranks, and sweep.json is no trace
    for b in (1, 2):
        rank_trace(tmp_path / f"b{b}.json", 10 * b)
    (tmp_path / "sweep.json").write_text(
        json.dumps({"points": [{"batch": 1, "file": "b1.json"}, {"batch": 2, "file": "b2.json"}]})
    )
    r = skip("analyze", tmp_path)
    assert r.returncode == 1 and "sweep folder" in r.stderr and "skip report" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_analyze_folder_takes_window_and_api_as_one_file_does(tmp_path):
    # each file's window is µs from its own start, as `skip analyze FILE --window` has it
    rank_trace(tmp_path / "rank0.json", 10, steps=2)
    rank_trace(tmp_path / "rank1.json", 10, steps=2)
    one = json.loads(skip("analyze", tmp_path / "rank0.json", "--json", "--window", ":40").stdout)
    whole = json.loads(skip("analyze", tmp_path, "--json").stdout)
    cut = json.loads(skip("analyze", tmp_path, "--json", "--window", ":40").stdout)
    n = {r["name"]: r["metrics"]["n_kernels"] for r in one["regions"]}
    assert 0 < n["all"] < 6  # the window leaves kernels out of one file
    for r in cut["regions"]:
        if r["name"] == "all":
            assert r["metrics"]["n_kernels"] == n["all"]
    assert {r["metrics"]["n_kernels"] for r in whole["regions"] if r["name"] == "all"} == {6}
    assert cut["window_us"] == [None, 40.0]
    text = skip("analyze", tmp_path, "--api", "--window", ":40").stdout
    assert "window [start, 40" in text
    assert text.count("CPU calls of rank") == 2 and "cudaLaunchKernel" in text
    assert [len(r["api_calls"]) > 0 for r in cut["ranks"]] == [True, True]


def test_a_run_json_too_deep_to_read_leaves_a_folder_of_plain_files(tmp_path):
    # json.load raised an uncaught RecursionError on it (an internal error)
    rank_trace(tmp_path / "rank0.json", 10)
    (tmp_path / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    r = skip("analyze", tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    assert [x["trace"].rsplit("/", 1)[1] for x in json.loads(r.stdout)["ranks"]] == ["rank0.json"]
    assert r.stderr.startswith(f"skip: warning: {tmp_path / 'run.json'}: not a skip run's")


RUN = {"format": "skipnative-run", "version": 1, "files": ["rank0.skip"]}


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({**RUN, "files": ["rank0.skip", "rank0.skip"]}, "files[1] 'rank0.skip' is listed twice"),
        ({**RUN, "version": 2}, "run.json version 2 is not supported"),
        ({**RUN, "files": "rank0.skip"}, "'files' must be a list of file names"),
        ({**RUN, "files": ["sub/rank0.skip"]}, "files[0] 'sub/rank0.skip' is a path"),
        ({**RUN, "files": ["rank0.skip", "notes.txt"]}, "files[1] 'notes.txt' is not a trace"),
        ({**RUN, "files": ["rank0.skip", 7]}, "files[1] is 7, not a file name"),
        ({**RUN, "files": []}, "lists no trace file"),
    ],
)
def test_a_run_json_that_cannot_be_a_runs_is_an_error(tmp_path, doc, problem):
    # a file listed twice read as two identical ranks; the others fell back to
    # the folder's files, or dropped the entry, without a word
    import skipnative as sn

    sn.load(rank_trace(tmp_path / "t.json", 10)).save(str(tmp_path / "rank0.skip"))
    (tmp_path / "t.json").unlink()
    (tmp_path / "run.json").write_text(json.dumps(doc))
    r = skip("analyze", tmp_path)
    assert r.returncode == 1 and r.stdout == "", r.stderr
    assert r.stderr.startswith(f"skip: error: {tmp_path / 'run.json'}: {problem}"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("text", ["{bad", json.dumps({"version": 1, "files": ["rank0.json"]})])
def test_a_run_json_that_is_not_a_runs_is_said_and_the_files_read(tmp_path, text):
    rank_trace(tmp_path / "rank0.json", 10)
    (tmp_path / "run.json").write_text(text)
    r = skip("analyze", tmp_path)
    assert r.returncode == 0, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"skip: warning: {tmp_path / 'run.json'}: not a skip run's run.json")
    assert line.endswith("the folder's trace files are read instead")


def test_a_run_json_that_is_a_fifo_is_an_error_not_a_hang(tmp_path):
    import os

    rank_trace(tmp_path / "rank0.json", 10)
    os.mkfifo(tmp_path / "run.json")
    argv = [sys.executable, "-m", "skipnative", "analyze", str(tmp_path)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip() == f"skip: error: {tmp_path / 'run.json'}: not a regular file"


def test_a_run_folder_names_a_listed_file_that_is_gone(tmp_path):
    # skip analyze of a skip run folder skipped a listed rank file that was gone,
    # with exit 0, as if the run had one rank fewer
    import shutil as sh

    import skipnative as sn

    src = sn.load(rank_trace(tmp_path / "t.json", 10))
    run = tmp_path / "run"
    run.mkdir()
    src.save(str(run / "rank0.skip"))
    doc = {"format": "skipnative-run", "version": 1, "files": ["rank0.skip", "rank1.skip"]}
    (run / "run.json").write_text(json.dumps(doc))
    r = skip("analyze", run, "--json")
    assert r.returncode == 1
    assert "rank1.skip" in r.stderr and "no such file" in r.stderr
    assert [x["trace"].rsplit("/", 1)[1] for x in json.loads(r.stdout)["ranks"]] == ["rank0.skip"]
    sh.copy(run / "rank0.skip", run / "rank1.skip")
    assert skip("analyze", run, "--json").returncode == 0


def test_compare_folders_takes_the_window_and_says_what_it_leaves_out(tmp_path):
    # --window was ignored on folders (even 'abc' taken), and a rank or region on
    # one side only was dropped without a word
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    rank_trace(a / "rank0.json", 10)
    rank_trace(a / "rank1.json", 10)
    rank_trace(b / "rank0.json", 20, steps=3)
    whole = json.loads(skip("compare", a, b, "--json").stdout)
    cut = json.loads(skip("compare", a, b, "--json", "--window", ":40").stdout)
    n = {r["name"]: r["metrics"]["n_kernels"]["a"] for r in whole["regions"]}
    n_cut = {r["name"]: r["metrics"]["n_kernels"]["a"] for r in cut["regions"]}
    assert n["all"] == 6 and 0 < n_cut["all"] < 6
    r = skip("compare", a, b, "--window", "abc")
    assert r.returncode != 0 and "--window" in r.stderr
    assert whole["unpaired"] == {"ranks_a": [1], "ranks_b": [], "regions": []}
    r = skip("compare", a, b)
    assert r.stderr.strip().splitlines() == [f"skip: warning: {a}: rank 1 only there: not compared"]
    steps = json.loads(skip("compare", a, b, "--json", "--region", "ProfilerStep#1").stdout)
    assert steps["unpaired"]["regions"] == []  # ProfilerStep#1 on both sides of rank 0


def test_compare_folders_says_a_region_one_side_has_alone(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    write(a / "rank0.json", [launch(1, 2, 1), kernel(5, 10, 1)])
    write(b / "rank0.json", [launch(1, 2, 1), kernel(5, 10, 1), launch(20, 2, 2),
                             kernel(25, 10, 2, device=1)])  # fmt: skip
    out = json.loads(skip("compare", a, b, "--json").stdout)
    assert [(r["name"], r["device_a"], r["device_b"]) for r in out["regions"]] == [("all", 0, 0)]
    assert out["unpaired"]["regions"] == [{"rank": 0, "side": "b", "name": "all", "device": 1}]
    r = skip("compare", a, b)
    assert f"{b}: regions only there, not compared: all (rank 0, device 1)" in r.stderr


def test_a_rank_in_a_name_beyond_32_bits_is_an_error():
    from skipnative import TraceError

    assert rank_in_name("rank2147483647.json") == 2**31 - 1
    for name in ("rank2147483648.json", "rank99999999999999999999999.json", "rank" + "9" * 5000):
        with pytest.raises(TraceError, match="beyond the largest"):
            rank_in_name(name)


@pytest.mark.parametrize("where", ["skip_meta", "file_name", "distributed_info"])
def test_a_rank_beyond_32_bits_is_one_error_in_every_folder_command(tmp_path, where):
    # kernels failed with OverflowError (an int64 column) where analyze and fusion
    # printed the number: each now names the file and the rank, exit 1
    import skipnative
    from skipnative.testing import simulate_cuda

    if where == "skip_meta":
        g = simulate_cuda()
        with skipnative.capture() as c:
            g.launch("k", duration_ns=1000)
            g.sync()
        c.trace.meta["rank"] = "99999999999999999999999"
        bad = tmp_path / "x.skip"
        c.trace.save(bad)
        what = "meta rank is '99999999999999999999999', beyond the largest, 2147483647"
    elif where == "file_name":
        bad = rank_trace(tmp_path / "rank99999999999999999999999.json", 10)
        what = "the rank in the file name 99999999999999999999999 is beyond the largest"
    else:
        bad = rank_trace(tmp_path / "x.json", 10, distributedInfo={"rank": 10**30})
        what = "distributedInfo.rank 100000000000000000000000... is beyond the largest"
    rank_trace(tmp_path / "rank0.json", 10)
    for cmd in ("kernels", "analyze", "fusion"):
        r = skip(cmd, tmp_path)
        assert r.returncode == 1, (cmd, r.stderr)
        errors = [line for line in r.stderr.splitlines() if line.startswith("skip: error:")]
        assert len(errors) == 1 and errors[0].startswith(f"skip: error: {bad}: "), r.stderr
        assert what in errors[0] and "internal error" not in r.stderr, (cmd, r.stderr)
