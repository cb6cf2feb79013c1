"""Report generation, the demo without a GPU, and the GPU commands' refusals."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from test_whatif import run_trace


def skip(*args):
    return subprocess.run(
        [sys.executable, "-m", "skipnative", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture
def generated_sweep(tmp_path):
    batches = [1, 2, 4, 8, 16, 32, 64]
    for b in batches:
        run_trace(tmp_path, b).save(tmp_path / f"b{b}.skip")
    (tmp_path / "sweep.json").write_text(
        json.dumps(
            {
                "card": "generated",
                "phase": "prefill",
                "seq_len": 8,
                "points": [{"batch": b} for b in batches],
            }
        )
    )
    return tmp_path


def test_report_content(generated_sweep):
    pytest.importorskip("matplotlib")
    from skipnative.report import sweep_data, write_report

    data = sweep_data(str(generated_sweep))
    assert data["native_series"]["queue_transition"] == 16
    path = write_report(str(generated_sweep))
    with open(path) as f:
        text = f.read()
    assert "batch size **16**" in text
    for b in (1, 64):
        assert f"\n| {b} | " in text
    # the replayed what-ifs move the transition as the generated runs say they must
    w = data["whatif"]
    assert w["2"]["queue_transition"] == 32 and w["0.5"]["queue_transition"] == 8
    assert "Transition (queue): measured 16; CPU 2x slower: 32; CPU 2x faster: 8;" in text
    assert "CUDA graphs: IL ms" in text
    assert "## Where the GPU's idle time goes" in text and "% of IL)" in text
    for png in ("tklqt_il.png", "tklqt_parts.png", "lq_distribution.png", "whatif_il.png"):
        assert f"]({png})" in text
        head = (generated_sweep / png).read_bytes()[:8]
        assert head == b"\x89PNG\r\n\x1a\n"
    assert "## Top kernels at batch 1" in text


def test_demo_without_a_gpu_reports_the_bundled_capture(tmp_path):
    pytest.importorskip("matplotlib")
    r = skip("demo", "--out", tmp_path / "demo")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "demo" / "report.md").read_text()
    # why this machine cannot capture, in the report and on stderr
    torch = importlib.util.find_spec("torch") is not None
    why = "no CUDA device visible to torch" if torch else "torch is not installed"
    assert f"skipnative cannot capture here ({why}" in text and "NVIDIA H100 80GB HBM3" in text
    assert r.stderr.startswith(f"cannot capture here ({why}")
    assert "Kineto TKLQT ms" in text
    # seven batch sizes from the bundled capture, 1 to 64
    assert text.count("\n| ") >= 7 + 1
    assert (tmp_path / "demo" / "tklqt_il.png").stat().st_size > 10_000
    # a second run replaces nothing unless asked
    (tmp_path / "demo" / "report.md").write_text("mine")
    r = skip("demo", "--out", tmp_path / "demo")
    assert r.returncode == 1 and (tmp_path / "demo" / "report.md").read_text() == "mine"
    assert r.stderr.strip() == (
        f"skip: error: {tmp_path / 'demo' / 'report.md'}: already exists "
        "(use --force to replace it)"
    )
    r = skip("demo", "--out", tmp_path / "demo", "--force")
    assert r.returncode == 0
    assert "cannot capture here" in (tmp_path / "demo" / "report.md").read_text()
    r = skip("demo", "--out", tmp_path / "demo" / "report.md")
    assert r.returncode == 1 and "report.md: is a file; the output names a folder" in r.stderr


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_demo_force_leaves_only_what_the_new_demo_made(tmp_path):
    """A `skip report` of the demo's capture (its report in demo/capture), and
    one written beside the demo's own with --html, were left by `skip demo
    --force`, disagreeing with the new capture; files skipnative did not write
    stay."""
    pytest.importorskip("matplotlib")
    fresh, demo = tmp_path / "fresh", tmp_path / "demo"
    assert skip("demo", "--out", fresh).returncode == 0
    made = _listing(fresh)  # what one demo makes, into an empty folder
    assert skip("demo", "--out", demo).returncode == 0
    r = skip("report", demo / "capture", "--html")
    assert r.returncode == 0 and (demo / "capture" / "report.md").exists(), r.stderr
    r = skip("report", demo / "capture", "--out", demo, "--html")
    assert r.returncode == 0 and (demo / "report.html").exists(), r.stderr
    (demo / "mine.txt").write_text("mine")
    (demo / "capture" / "notes.txt").write_text("mine")
    r = skip("demo", "--out", demo, "--force")
    assert r.returncode == 0, r.stderr
    assert _listing(demo) == made | {"mine.txt", "capture/notes.txt"}
    assert (demo / "mine.txt").read_text() == (demo / "capture" / "notes.txt").read_text()


def test_demo_force_on_a_gpu_removes_an_earlier_demos_bundled_capture(tmp_path, monkeypatch):
    """The GPU branch writes its sweep into --out itself: the capture/ folder of an
    earlier demo without a GPU would stay beside it, another sweep's data."""
    pytest.importorskip("matplotlib")
    from skipnative.cli import _gpu, demo
    from skipnative.cli import sweep as sweep_cmd
    from skipnative.cli._common import UserError

    out = tmp_path / "demo"
    assert skip("demo", "--out", out).returncode == 0
    (out / "capture" / "notes.txt").write_text("mine")
    monkeypatch.setattr(_gpu, "gpu_reason", lambda: None)
    monkeypatch.setattr(
        sweep_cmd.subprocess,
        "run",
        lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "skip: error: stood in\n"),
    )
    args = argparse.Namespace(out=str(out), batch_sizes="1", force=True)
    with pytest.raises(UserError, match="batch 1 failed"):
        demo.run(args)
    # what is left: the failed sweep's sweep.json, and the file skipnative did not write
    assert _listing(out) == {"sweep.json", "capture", "capture/notes.txt"}


def test_clearing_a_sweep_removes_no_file_outside_its_folder(tmp_path):
    """A sweep.json's batch names point files in its folder: one written as a path
    (b/../../x) must not reach a file beside the folder."""
    from skipnative.cli.sweep import clear_sweep

    out = tmp_path / "sweep"
    (out / "b").mkdir(parents=True)  # any folder in it named b
    (tmp_path / "x.skip").write_text("mine")
    (out / "b1.skip").write_text("a point")
    (out / "sweep.json").write_text(json.dumps({"points": [{"batch": 1}, {"batch": "/../../x"}]}))
    clear_sweep(str(out), [])
    assert (tmp_path / "x.skip").read_text() == "mine"
    assert not (out / "b1.skip").exists() and not (out / "sweep.json").exists()


@pytest.mark.parametrize("cmd", [["profile", "--out", "OUT"], ["sweep", "--out", "OUT"]])
def test_gpu_commands_refuse_clearly_without_a_gpu(tmp_path, cmd):
    try:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is available here")
    except ImportError:
        pass
    r = skip(*[str(tmp_path) if c == "OUT" else c for c in cmd])
    assert r.returncode == 1 and r.stdout == ""
    line = r.stderr.strip()
    assert "\n" not in line and "needs a GPU" in line


def test_report_what_if_options(generated_sweep, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "r"
    r = skip("report", generated_sweep, "--out", out, "--whatif-cpu", "4,1", "--no-whatif-graphs")
    assert r.returncode == 0, r.stderr
    text = (out / "report.md").read_text()
    assert "CPU 4x slower: IL ms" in text and "CUDA graphs: IL ms" not in text
    # the unchanged replay reproduces the measured curve
    assert "replayed unchanged: 16" in text and "Transition (queue): measured 16;" in text
    r = skip("report", generated_sweep, "--out", out, "--whatif-cpu", "")
    text = (out / "report.md").read_text()
    assert r.returncode == 0 and "CUDA graphs: IL ms" in text and "x slower" not in text
    r = skip("report", generated_sweep, "--out", out, "--whatif-cpu", "", "--no-whatif-graphs")
    assert r.returncode == 0 and "## What if" not in (out / "report.md").read_text()
    for bad in ("0", "-1", "x", "nan"):
        r = skip("report", generated_sweep, "--whatif-cpu", bad)
        assert r.returncode == 2 and "--whatif-cpu" in r.stderr and "Traceback" not in r.stderr


def test_report_of_a_folder_that_is_not_a_sweep(tmp_path):
    r = skip("report", tmp_path)
    assert r.returncode == 1 and "no sweep.json" in r.stderr
    # the folder, not a sweep.json that is not there, is what the line names
    assert r.stderr.startswith(f"skip: error: {tmp_path}: no sweep.json")


def test_report_of_the_folder_above_a_sweep_names_the_sweep(tmp_path):
    """`skip demo --out demo` writes the sweep into demo/capture; `skip report
    demo` said "demo/sweep.json: no sweep.json", pointing nowhere."""
    (tmp_path / "capture").mkdir()
    (tmp_path / "capture" / "sweep.json").write_text("{}")
    r = skip("report", tmp_path)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert f"it holds one: {tmp_path / 'capture'}" in r.stderr


def test_workload_builder_tiny_config_on_cpu():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from skipnative.profiling import workloads

    cfg = workloads.llama_config(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        vocab_size=500,
    )
    assert workloads.llama_config().num_key_value_heads == 8
    model = workloads.build_decoder(cfg, device="cpu")
    assert next(model.parameters()).dtype == torch.bfloat16
    logits = workloads.prefill(model, 3, 16, device="cpu")()
    assert logits.shape == (3, 16, 500)
    step = workloads.decode(model, 2, 8, device="cpu")
    a, b = step(), step()  # the cache is restored: each call decodes the same token
    assert a.shape == (2, 1, 500) and torch.equal(a, b)


def test_script_errors(tmp_path):
    from skipnative.cli._common import UserError
    from skipnative.cli.profile import load_script

    with pytest.raises(UserError, match="FILE:FUNC"):
        load_script("nofunc")
    with pytest.raises(UserError, match="no such file"):
        load_script(str(tmp_path / "x.py") + ":f")
    (tmp_path / "w.py").write_text("def make():\n    return lambda: 1\n")
    assert load_script(str(tmp_path / "w.py") + ":make")()() == 1
    with pytest.raises(UserError, match="no function"):
        load_script(str(tmp_path / "w.py") + ":missing")


def test_html_report_is_one_self_contained_page(generated_sweep, tmp_path):
    pytest.importorskip("matplotlib")
    r = skip("report", generated_sweep, "--out", tmp_path / "r", "--html")
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "r" / "report.html").read_text()
    md = (tmp_path / "r" / "report.md").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # every plot the markdown links is embedded, every table rendered
    assert page.count("data:image/png;base64,") == md.count("](") > 0
    assert page.count("<table>") == md.count("\n|---")
    assert "](" not in page and "\n|" not in page


def test_html_escapes_names_and_keeps_escaped_pipes(tmp_path):
    """Markdown and HTML render the same sections: marks in paragraphs, plain text
    in cells (a kernel's `|` escaped in Markdown only)."""
    from skipnative.report import Document, Images, Section, Table, to_html, to_markdown

    (tmp_path / "p.png").write_bytes(b"\x89PNG\r\n\x1a\nxx")
    doc = Document(
        "A <title> & more",
        [
            Section(None, ["The knee is at **4**; see `skip report`."]),
            Section("Kernels", [Table(["kernel", "count"], [["void k<128, 4>(a|b)", "3"]])]),
            Section(None, [Images(["p.png"])]),
        ],
    )
    page = to_html(doc, str(tmp_path))
    assert "<h1>A &lt;title&gt; &amp; more</h1>" in page and "<h2>Kernels</h2>" in page
    assert "<b>4</b>" in page and "<code>skip report</code>" in page
    assert "<td>void k&lt;128, 4&gt;(a|b)</td><td>3</td>" in page
    assert "<title>A &lt;title&gt; &amp; more</title>" in page
    assert "data:image/png;base64,iVBORw0KGgp4eA==" in page
    md = to_markdown(doc)
    assert md.startswith("# A <title> & more\n\nThe knee is at **4**; see `skip report`.\n")
    assert "| void k<128, 4>(a\\|b) | 3 |" in md and "![p.png](p.png)" in md


def test_demo_on_a_gpu_runs_skip_sweep_with_its_defaults(tmp_path, monkeypatch):
    """The GPU branch of `skip demo` (no GPU here: the check and the point's
    process are stood in for) builds each point's `skip profile` command from
    `skip sweep`'s own options; a field missing from its arguments once broke it."""
    from skipnative.cli import _gpu, demo
    from skipnative.cli import sweep as sweep_cmd
    from skipnative.cli._common import UserError

    monkeypatch.setattr(_gpu, "gpu_reason", lambda: None)
    commands = []

    def fake_run(cmd, **kw):
        commands.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "skip: error: stood in\n")

    monkeypatch.setattr(sweep_cmd.subprocess, "run", fake_run)
    args = argparse.Namespace(out=str(tmp_path / "demo"), batch_sizes="1,4,16", force=False)
    with pytest.raises(UserError, match="batch 1 failed: stood in"):
        demo.run(args)
    (cmd,) = commands
    i = cmd.index("profile")
    assert cmd[i + 1 : i + 3] == ["--batch", "1"]
    assert cmd[cmd.index("--iters") + 1] == "3" and cmd[cmd.index("--warmup") + 1] == "2"
    assert cmd[cmd.index("--launch-records") + 1] == "callbacks"
    assert cmd[cmd.index("--fidelity") + 1] == "20"  # the report shows the perturbation
    assert "--graphs" not in cmd and "--no-attribution" not in cmd


def test_sweep_passes_capture_options_to_each_point(tmp_path, monkeypatch):
    from skipnative.cli import sweep as sweep_cmd
    from skipnative.cli._common import UserError

    commands = []

    def fake_run(cmd, **kw):
        commands.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "stood in\n")

    monkeypatch.setattr(sweep_cmd.subprocess, "run", fake_run)
    sub = argparse.ArgumentParser().add_subparsers()
    sweep_cmd.add_parser(sub)
    ns = sub.choices["sweep"].parse_args(
        [
            "--out",
            str(tmp_path),
            "--launch-records",
            "activity",
            "--hook-join",
            "order",
            "--no-latency-timestamps",
            "--fidelity",
            "20",
        ]
    )
    with pytest.raises(UserError):
        sweep_cmd.sweep(ns, [2])
    (cmd,) = commands
    assert cmd[cmd.index("--launch-records") + 1] == "activity"
    assert cmd[cmd.index("--hook-join") + 1] == "order"
    assert "--no-latency-timestamps" in cmd
    assert cmd[cmd.index("--fidelity") + 1] == "20"


def test_report_shows_each_points_measured_perturbation(generated_sweep):
    pytest.importorskip("matplotlib")
    from skipnative.report import write_report

    doc = json.loads((generated_sweep / "sweep.json").read_text())
    for i, p in enumerate(doc["points"]):
        p["fidelity"] = {
            "reps": 20,
            "il_unprofiled_ms": 10.0,
            "il_profiled_ms": 10.0 + i,
            "perturbation": i / 10,
        }
    (generated_sweep / "sweep.json").write_text(json.dumps(doc))
    text = Path(write_report(str(generated_sweep))).read_text()
    assert "| perturbation |" in text
    assert "| +0.0% |" in text and "| +60.0% |" in text
    assert "20 or more runs unprofiled" in text
    # a sweep measured without it has no such column
    for p in doc["points"]:
        del p["fidelity"]
    (generated_sweep / "sweep.json").write_text(json.dumps(doc))
    assert "perturbation |" not in Path(write_report(str(generated_sweep))).read_text()


def test_report_shows_the_floor_and_kinetos_perturbation_beside_skipnatives(generated_sweep):
    pytest.importorskip("matplotlib")
    from skipnative.report import write_report

    doc = json.loads((generated_sweep / "sweep.json").read_text())
    for i, p in enumerate(doc["points"]):
        p["fidelity"] = {
            "reps": 20,
            "il_unprofiled_ms": 10.0,
            "il_profiled_ms": 11.0,
            "perturbation": 0.1,
            "il_floor_ms": 10.5,
            "floor_perturbation": 0.05 + i / 100,
            "kineto_perturbation": 0.75,
        }
    (generated_sweep / "sweep.json").write_text(json.dumps(doc))
    text = Path(write_report(str(generated_sweep))).read_text()
    assert "| perturbation | floor | Kineto perturbation |" in text
    assert "| +10.0% | +5.0% | +75.0% |" in text
    assert "kernel activity alone" in text


def test_report_of_a_sweep_without_points_says_so(tmp_path):
    (tmp_path / "sweep.json").write_text('{"points": []}')
    r = skip("report", tmp_path)
    assert r.returncode == 1 and "no points" in r.stderr and "ValueError" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_report_says_why_tklqt_exceeds_il_where_it_does(generated_sweep):
    from skipnative.report import sweep_data
    from skipnative.report.sections import per_iteration

    # The generated runs launch every 25 us: kernels of 2 us x batch queue from
    # batch 16 on (32 us > 25 us), and each waits 7 us longer than the one before,
    # so TKLQT (a sum) passes IL (a span) at 16, 32 and 64, most at 64. Below 16
    # every kernel waits its fixed 7 us: TKLQT is far under IL.
    data = sweep_data(str(generated_sweep))
    text = " ".join(b for b in per_iteration(data).blocks if isinstance(b, str))
    assert "TKLQT exceeds IL at 3 of 7 batch sizes" in text
    assert "at batch 64)" in text and "a sum over kernels, not a span" in text
    # the same sweep cut to its CPU-bound points says nothing of it
    for b in (16, 32, 64):
        (generated_sweep / f"b{b}.skip").unlink()
    sweep = json.loads((generated_sweep / "sweep.json").read_text())
    sweep["points"] = [p for p in sweep["points"] if p["batch"] <= 8]
    (generated_sweep / "sweep.json").write_text(json.dumps(sweep))
    data = sweep_data(str(generated_sweep))
    text = " ".join(b for b in per_iteration(data).blocks if isinstance(b, str))
    assert "exceeds IL" not in text


@pytest.mark.parametrize(
    ("values", "knee", "trans", "agree", "said"),
    [
        ([1], None, None, True, "queue transition at not reached, TKLQT knee at not found (it "
         "needs two or more batch sizes)"),
        ([1], None, 1, False, "queue transition at batch 1, TKLQT knee at not found (it needs "
         "two or more batch sizes)"),
        ([1, 2, 4], 2, 4, False, "queue transition at batch 4, TKLQT knee at batch 2 (they "
         "disagree)"),
        ([1, 2, 4], 4, 4, True, "queue transition at batch 4, TKLQT knee at batch 4"),
        ([1, 2, 4], None, 4, False, "queue transition at batch 4, TKLQT knee at not reached"),
    ],
)  # fmt: skip
def test_sweep_says_its_transitions_as_found(values, knee, trans, agree, said):
    # a one-point sweep said "TKLQT knee at None (they disagree)"
    from skipnative.cli.sweep import transitions_text

    n = {"values": values, "knee": knee, "queue_transition": trans, "agree": agree}
    assert transitions_text(n) == said


@pytest.mark.parametrize(
    "part, of, shown",
    [
        (3.0, 1000.0, "0.00 ms (<1 % of IL)"),
        (0.0, 1000.0, "0.00 ms (0 % of IL)"),
        (6.0, 1000.0, "0.01 ms (1 % of IL)"),
        (10.0, 0.0, "-"),
    ],
)
def test_idle_shares_too_small_to_round_up_are_not_shown_as_zero(part, of, shown):
    """The report's idle table: 0.3 % of IL is "<1 %", not the "0 %" of no idle time."""
    from skipnative.report.sections import _share

    assert _share(part, of) == shown


def test_report_says_every_document_it_wrote(generated_sweep, tmp_path):
    """With --html, skip report wrote report.md and report.html but named only the
    second."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "rep"
    r = skip("report", generated_sweep, "--out", out, "--html")
    assert r.returncode == 0, r.stderr
    md, html = out / "report.md", out / "report.html"
    assert r.stderr.strip() == f"wrote {md} and {html}, with its plots"
    assert md.exists() and html.exists()
    r = skip("report", generated_sweep, "--out", tmp_path / "md")
    assert r.stderr.strip() == f"wrote {tmp_path / 'md' / 'report.md'}, with its plots"


def test_a_long_kernel_name_in_the_report_is_cut_with_an_ellipsis():
    """The report cut template-heavy kernel names at 90 characters mid-template,
    with nothing to say so (the command-line tables end theirs with "…")."""
    from skipnative.report.sections import top_kernels

    name = "void at::native::vectorized_elementwise_kernel<4, " + "x" * 100 + ">"
    row = {"name": name, "count": 1, "total_us": 10.0, "mean_us": 10.0}
    section = top_kernels({"top_kernels": [[row]], "values": [1]}, 0, "skipnative")
    cell = section.blocks[0].rows[0][0]
    assert len(cell) == 90 and cell.endswith("…") and name.startswith(cell[:-1])


def test_a_report_that_fails_midway_leaves_the_earlier_one_whole(generated_sweep, monkeypatch):
    # written in place, a text that did not encode (a lone surrogate in a name)
    # left an empty report.md in place of the earlier report
    pytest.importorskip("matplotlib")
    from skipnative.report import write

    (generated_sweep / "report.md").write_text("the earlier report")
    monkeypatch.setattr(write, "to_markdown", lambda doc: "# report of k\ud800\n")
    with pytest.raises(UnicodeEncodeError):
        write.write_report(str(generated_sweep))
    assert (generated_sweep / "report.md").read_text() == "the earlier report"
    assert not [p for p in generated_sweep.iterdir() if p.name.endswith(".tmp")]


def test_a_report_without_html_removes_its_earlier_page_only(generated_sweep, tmp_path):
    """report.html from an earlier `--html` run stayed beside a rewritten report.md
    that it no longer matched; a page of the user's own is left alone."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "r"
    assert skip("report", generated_sweep, "--out", out, "--html").returncode == 0
    assert (out / "report.html").exists()
    r = skip("report", generated_sweep, "--out", out, "--whatif-cpu", "3")
    assert r.returncode == 0, r.stderr
    assert not (out / "report.html").exists()
    (out / "report.html").write_text("<html>mine</html>")
    assert skip("report", generated_sweep, "--out", out).returncode == 0
    assert (out / "report.html").read_text() == "<html>mine</html>"
