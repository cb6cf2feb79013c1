"""`skip run` / `skip trigger` on bad input and in the corners of their messages:
refused in one line before CMD starts, and messages that say what happened."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_run import LAUNCHER, SKIP, _env, _gated, one_line_error, skip_run, start_run, trigger

import skipnative
from skipnative.io import runfolder


def refused_at_parse(r: subprocess.CompletedProcess, option: str) -> str:
    """The argparse refusal: exit 2, one line naming the option, no internal error."""
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert option in lines[0] and "internal error" not in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["--duration", "nan"],
        ["--duration", "inf"],
        ["--duration", "-1"],
        ["--delay", "1e300"],
        ["--delay", "-0.5"],
        ["--on-demand", "--trigger-duration", "nan"],
        ["--on-demand", "--trigger-duration", "inf"],
        ["--on-demand", "--trigger-duration", "-2"],
        ["--wait-children=-1"],
        ["--wait-children", "nan"],
        ["--max-gpu-records=-5"],
        ["--device-buffer-bytes=-5"],
        ["--max-launch-bytes=-1"],
        ["--activity-buffer-bytes", "99999999999999999999"],
        ["--activity-buffer-bytes", "4095"],
        ["--activity-buffer-bytes", "1073741832"],
        ["--max-activity-buffers", "0"],
        ["--max-activity-buffers", "1.5"],
    ],
)
def test_a_bad_option_value_is_refused_before_cmd_starts(tmp_path, args):
    marker, out = tmp_path / "cmd-ran", tmp_path / "run"
    r = skip_run(out, *args, "--", "sh", "-c", f"touch {marker}")
    refused_at_parse(r, args[-1].split("=")[0] if "=" in args[-1] else args[-2])
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize(
    ("option", "value", "capture_kw"),
    [
        ("--activity-buffer-bytes", "4096", "activity_buffer_bytes"),
        ("--max-activity-buffers", "1", "max_activity_buffers"),
    ],
)
def test_the_smallest_value_the_in_process_api_takes_is_taken(
    tmp_path, gpu, option, value, capture_kw
):
    # the same bound as skipnative.capture(): one below it is refused there too
    with pytest.raises(ValueError, match=capture_kw):
        skipnative.capture(**{capture_kw: int(value) - 1})
    skipnative.capture(**{capture_kw: int(value)})
    r = skip_run(tmp_path, option, value, "--", *LAUNCHER, "5")
    assert r.returncode == 0, r.stderr
    (p,) = runfolder.read_run(tmp_path)["processes"]
    assert p["status"] == "complete" and p["kernels"] == 5


def test_out_an_existing_file_is_one_line_naming_it(tmp_path):
    # the check report and demo make (cli._common.check_out_folder), run's own words
    f = tmp_path / "taken"
    f.write_text("mine")
    line = one_line_error(skip_run(f, "--", *LAUNCHER, "1"))
    assert line == f"skip: error: {f}: is a file; --out names the run's folder"
    assert f.read_text() == "mine"


def test_out_below_a_file_is_one_line_naming_both(tmp_path):
    # it said only "cannot create the run folder (Not a directory)", not which file
    f = tmp_path / "taken"
    f.write_text("mine")
    line = one_line_error(skip_run(f / "run", "--", *LAUNCHER, "1"))
    assert line == (
        f"skip: error: {f / 'run'}: lies below a file ({f}); --out names the run's folder"
    )
    assert f.read_text() == "mine"


def test_no_cuda_process_error_is_the_last_line(tmp_path):
    cmd = [*SKIP, "run", "--out", str(tmp_path), "--", "true"]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    lines = [x for x in r.stdout.splitlines() if x.strip()]
    assert r.returncode == 1 and "Traceback" not in r.stdout
    assert lines[-1].startswith("skip: error: no process of the command initialised CUDA")
    assert sum(x.startswith("skip: error:") for x in lines) == 1
    assert runfolder.read_run(tmp_path)["processes"] == []


def _gated_run(tmp_path: Path, *args: str, batches: int = 2):
    gate, out = _gated(tmp_path)
    proc = start_run(
        out, *args, "--", *LAUNCHER, "10", "--batches", str(batches), "--gate", str(gate)
    )
    deadline = time.monotonic() + 60
    while not (gate / "done0-0").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the launcher did not start"
        time.sleep(0.01)
    return gate, out, proc


def _finish(gate: Path, proc: subprocess.Popen, batches: int = 2) -> str:
    for b in range(1, batches):
        (gate / f"go{b}").touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return err


@pytest.mark.parametrize("value", ["nan", "inf", "1e300", "-1"])
def test_trigger_refuses_a_bad_duration_and_the_run_goes_on(tmp_path, value):
    gate, out, proc = _gated_run(tmp_path, "--on-demand")
    try:
        refused_at_parse(trigger(out, "--duration", value), "--duration")
        refused_at_parse(trigger(out, "--timeout", value), "--timeout")
    finally:
        _finish(gate, proc)
    assert runfolder.read_run(out)["triggers"] == []


def test_trigger_messages_say_what_happened(tmp_path):
    gate, out, proc = _gated_run(tmp_path, "--on-demand")
    try:
        t = trigger(out, "--stop")
        assert t.returncode == 0, t.stderr
        assert "no window was open" in t.stdout and "closed" not in t.stdout
        t = trigger(out, "--duration", "0")
        assert t.returncode == 0 and "opened in 1 process" in t.stdout, t.stdout + t.stderr
        t = trigger(out, "--duration", "60")
        assert t.returncode == 0, t.stderr
        # the window open until a stop now ends in 60 s: no second window opened
        assert "opened" not in t.stdout and "already open in 1 process" in t.stdout, t.stdout
        assert "60 s" in t.stdout
        t = trigger(out, "--stop")
        assert t.returncode == 0 and "closed in 1 process" in t.stdout, t.stdout + t.stderr
    finally:
        _finish(gate, proc)
    run = runfolder.read_run(out)
    assert [x["op"] for x in run["triggers"]] == ["stop", "open", "open", "stop"]
    assert [p["windows"] for p in run["processes"]] == [1]


def test_trigger_help_says_what_duration_0_means():
    r = subprocess.run([*SKIP, "trigger", "--help"], capture_output=True, text=True, env=_env())
    assert "0: until skip trigger --stop" in " ".join(r.stdout.split())
    r = subprocess.run([*SKIP, "run", "--help"], capture_output=True, text=True, env=_env())
    assert "0: until skip trigger --stop" in " ".join(r.stdout.split())


_FAILING_TRIGGER = textwrap.dedent(
    """
    import sys
    from skipnative.io import runfolder
    from skipnative.cli.main import main
    real = runfolder.request
    def request(run_dir, op, duration_s=0.0):
        if op == "open":
            raise RuntimeError("the trigger file broke")
        return real(run_dir, op, duration_s)
    runfolder.request = request
    sys.exit(main(sys.argv[1:]))
    """
)


def test_a_failing_sigusr1_leaves_neither_cmd_running_nor_run_json_unwritten(tmp_path):
    gate, out = _gated(tmp_path)
    cmd = [sys.executable, "-c", _FAILING_TRIGGER, "run", "--on-demand", "--out", str(out)]
    cmd += ["--", *LAUNCHER, "10", "--batches", "2", "--gate", str(gate)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (gate / "done0-0").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.01)
        proc.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()  # skip run waits on for CMD
        (gate / "go1").touch()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "internal error" not in err and "Traceback" not in err, err
    assert "SIGUSR1" in err and "the trigger file broke" in err, err
    run = runfolder.read_run(out)
    assert run["exit_code"] == 0 and [p["status"] for p in run["processes"]] == ["no window"]
    launcher_pid = run["processes"][0]["pid"]
    assert not runfolder.alive(launcher_pid)


@pytest.mark.parametrize(
    "damage",
    ['printf "[" > "$f"', 'rm "$f" && mkdir "$f"'],
    ids=["invalid JSON", "a folder"],
)
def test_a_state_file_damaged_after_its_process_exits_still_ends_in_run_json(tmp_path, damage):
    out = tmp_path / "run"
    # CMD runs the launcher, then damages the state file its process left
    script = f'{" ".join(LAUNCHER)} 4 && for f in "$SKIPNATIVE_RUN_DIR"/*.state; do {damage}; done'
    r = skip_run(out, "--", "sh", "-c", script)
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    run = runfolder.read_run(out)
    (p,) = run["processes"]
    assert p["status"] == "error" and ".state" in p["error"], p
    # the dump was still converted: the capture is kept beside the error
    assert run["files"] == [p["file"]] and len(skipnative.load(out / p["file"]).kernels) > 0
    assert r.returncode == 1 and ".state" in r.stderr.strip().splitlines()[-1]


def test_trigger_duration_without_on_demand_is_refused(tmp_path):
    # it was taken and ignored: only an on-demand run opens windows on SIGUSR1
    line = one_line_error(skip_run(tmp_path, "--trigger-duration", "5", "--", *LAUNCHER, "1"))
    assert "--trigger-duration" in line and "--on-demand" in line
    assert not (tmp_path / "run.json").exists()
