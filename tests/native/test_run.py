"""`skip run` end to end on the CUDA/CUPTI doubles: the driver double loads the
injection library at cuInit (CUDA_INJECTION64_PATH), as the real driver does, and
`python -m skipnative.testing.launcher` is the unmodified program."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import skipnative
from skipnative.errors import TraceError
from skipnative.io import runfolder
from skipnative.io.rundump import read_dump

LAUNCHER = [sys.executable, "-m", "skipnative.testing.launcher"]
SKIP = [sys.executable, "-m", "skipnative"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for k in ("CUDA_INJECTION64_PATH", "SKIPNATIVE_RUN_DIR", "SKIPNATIVE_CUPTI_LIBRARY"):
        env.pop(k, None)
    return env


def skip_run(out: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [*SKIP, "run", "--out", str(out), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=timeout)


def signals_at_default() -> None:
    """In a child before exec: the signals skip run handles at their default
    action, whatever the tests inherited (under nohup, SIGHUP is ignored, and
    skip run then rightly leaves it so: the tests that send it would wait)."""
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def start_run(out: Path, *args: str) -> subprocess.Popen:
    cmd = [*SKIP, "run", "--out", str(out), *args]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        preexec_fn=signals_at_default,
    )


def wait_file(path: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)
    return path.read_text()


def trigger(out: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [*SKIP, "trigger", *args, str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=60)


def joined(trace) -> int:
    """Kernels whose correlation id is a launch's of the same process."""
    k = trace.kernels
    return int(np.isin(k["correlation"], trace.launches["correlation"]).sum())


def test_one_process_every_launch_joins_its_kernel(tmp_path):
    r = skip_run(tmp_path, "--", *LAUNCHER, "100")
    assert r.returncode == 0, r.stderr
    run = runfolder.read_run(tmp_path)
    assert [p["status"] for p in run["processes"]] == ["complete"]
    p = run["processes"][0]
    assert run["files"] == [p["file"]] and p["file"] == f"pid{p['pid']}.skip"
    assert p["argv"][-2:] == ["skipnative.testing.launcher", "100"]
    trace = skipnative.load(tmp_path / p["file"])
    assert len(trace.launches) == 100 and len(trace.kernels) == 100
    assert joined(trace) == 100
    assert set(trace.launches["pid"]) == {p["pid"]} and trace.meta["pid"] == p["pid"]
    assert not (tmp_path / runfolder.CONTROL).exists()

    a = subprocess.run(
        [*SKIP, "analyze", "--json", str(tmp_path / p["file"])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert a.returncode == 0, a.stderr
    m = json.loads(a.stdout)["regions"][0]["metrics"]
    assert m["n_counted_kernels"] == 100 and m["n_negative_lq"] == 0


def test_threads_launch_from_their_own_threads(tmp_path):
    r = skip_run(tmp_path, "--", *LAUNCHER, "90", "--threads", "3")
    assert r.returncode == 0, r.stderr
    trace = skipnative.load(tmp_path / runfolder.read_run(tmp_path)["files"][0])
    assert joined(trace) == 90
    assert len(set(trace.launches["tid"])) == 3
    assert len(set(trace.kernels["stream"])) == 3


def test_workers_each_write_a_file_named_by_rank(tmp_path):
    r = skip_run(tmp_path, "--", *LAUNCHER, "100", "--workers", "2")
    assert r.returncode == 0, r.stderr
    run = runfolder.read_run(tmp_path)
    # the launcher's parent initialises no CUDA: only the two workers are captured
    assert run["files"] == ["rank0.skip", "rank1.skip"]
    assert [p["rank"] for p in run["processes"]] == ["0", "1"]
    assert [p["world_size"] for p in run["processes"]] == ["2", "2"]
    pids = set()
    for p in run["processes"]:
        trace = skipnative.load(tmp_path / p["file"])
        assert joined(trace) == 100 == len(trace.launches)
        pids |= set(trace.launches["pid"].tolist())
        assert p["devices"] and p["launches"] == 100 and p["kernels"] == 100
    assert pids == {p["pid"] for p in run["processes"]}


def _gated(tmp_path: Path, *args: str) -> tuple[Path, Path]:
    gate, out = tmp_path / "gate", tmp_path / "run"
    gate.mkdir()
    return gate, out


def test_on_demand_records_exactly_the_window(tmp_path):
    gate, out = _gated(tmp_path)
    proc = start_run(
        out, "--on-demand", "--", *LAUNCHER, "10", "--batches", "3", "--gate", str(gate)
    )
    wait_file(gate / "done0-0")
    t = trigger(out, "--duration", "0")
    assert t.returncode == 0 and "opened in 1 process" in t.stdout, t.stderr
    (gate / "go1").touch()
    wait_file(gate / "done1-0")
    t = trigger(out, "--stop")
    assert t.returncode == 0, t.stderr
    (gate / "go2").touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    run = runfolder.read_run(out)
    assert run["mode"] == "on-demand" and [x["op"] for x in run["triggers"]] == ["open", "stop"]
    trace = skipnative.load(out / run["files"][0])
    assert set(trace.name(trace.kernels["name_id"])) == {"kernel_b1"}
    assert joined(trace) == 10 == len(trace.launches)
    assert trace.name(trace.regions["name_id"]) == ["window 1"]
    (r,) = trace.regions
    assert (trace.launches["t_begin"] >= r["t_begin"]).all()
    assert (trace.launches["t_end"] <= r["t_end"]).all()


def test_on_demand_without_a_trigger_records_nothing(tmp_path):
    r = skip_run(tmp_path, "--on-demand", "--", *LAUNCHER, "10")
    assert r.returncode == 0, r.stderr
    run = runfolder.read_run(tmp_path)
    assert run["files"] == [] and [p["status"] for p in run["processes"]] == ["no window"]


def test_duration_bounds_the_window(tmp_path):
    gate, out = _gated(tmp_path)
    t0 = time.monotonic()
    proc = start_run(
        out, "--duration", "2", "--", *LAUNCHER, "10", "--batches", "2", "--gate", str(gate)
    )
    wait_file(gate / "done0-0")
    # skip run fixed the window (open now, close 2 s on, wall clock) before it
    # started CMD, and CMD finished batch 0 after that: the window is over 2 s
    # after batch 0 was seen, however long skip run took to start (a fixed time
    # from t0 is not: under load it can start more than a second late)
    seen = time.time()
    in_window = time.monotonic() - t0 < 1.5
    time.sleep(max(0.0, seen + 2.5 - time.time()))
    (gate / "go1").touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    run = runfolder.read_run(out)
    assert run["mode"] == "scheduled" and run["duration_s"] == 2.0
    trace = skipnative.load(out / run["files"][0])
    names = set(trace.name(trace.kernels["name_id"]))
    assert "kernel_b1" not in names  # launched after the window closed
    if in_window:
        assert names == {"kernel_b0"} and joined(trace) == 10


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_skip_run_still_completes_every_file(tmp_path, sig):
    gate, out = _gated(tmp_path)
    proc = start_run(
        out, "--", *LAUNCHER, "20", "--workers", "2", "--gate", str(gate), "--hold", "60"
    )
    wait_file(gate / "done0-0")
    wait_file(gate / "done0-1")
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # leave nothing running for the tests after this one
        proc.kill()
        subprocess.run(["pkill", "-KILL", "-f", str(gate)], check=False)
        _, err = proc.communicate()
        pytest.fail(f"skip run did not end within 60 s of {sig.name}:\n{err}")
    assert time.monotonic() - t0 < 30  # the workers were stopped, not waited out
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM, err
    else:  # Python's KeyboardInterrupt in the launcher: its exit, no traceback
        assert proc.returncode == 128 + signal.SIGINT, err
        assert "Traceback" not in err, err
    run = runfolder.read_run(out)
    assert run["signal"] == sig.name
    assert [p["status"] for p in run["processes"]] == ["complete", "complete"]
    for f in run["files"]:
        assert joined(skipnative.load(out / f)) == 20


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_skip_run_inherited_ignored_still_stops_cmd(tmp_path, sig):
    # A background job of a non-interactive shell starts with SIGINT ignored, and
    # an ignored signal stays ignored across exec: skip run, which acts on the
    # signal, must not hand CMD that disposition, or the signal it passes on is lost.
    gate, out = _gated(tmp_path)
    ignoring = [
        sys.executable,
        "-c",
        "import os, signal, sys; signal.signal(int(sys.argv[1]), signal.SIG_IGN); "
        "os.execv(sys.argv[2], sys.argv[2:])",
        str(int(sig)),
    ]
    cmd = [*ignoring, *SKIP, "run", "--out", str(out), "--", *LAUNCHER, "20", "--workers", "2"]
    cmd += ["--gate", str(gate), "--hold", "60"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    wait_file(gate / "done0-0")
    wait_file(gate / "done0-1")
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        subprocess.run(["pkill", "-KILL", "-f", str(gate)], check=False)
        _, err = proc.communicate()
        pytest.fail(f"{sig.name} passed on to CMD did not stop it:\n{err}")
    assert proc.returncode != 0, err
    run = runfolder.read_run(out)
    assert run["signal"] == sig.name
    assert [p["status"] for p in run["processes"]] == ["complete", "complete"]


def test_a_signal_waits_for_a_capture_still_writing_its_file(tmp_path):
    # each flush takes 6 s, so this process's capture ends well past the 10 s skip
    # run gives a process to start acting on "end": it is acting, so skip run
    # waits for it before passing SIGINT on (Python dies of an uncaught
    # KeyboardInterrupt past every exit handler, the injection's included)
    gate, out = _gated(tmp_path)
    proc = start_run(
        out, "--", *LAUNCHER, "20", "--gate", str(gate), "--hold", "120", "--flush-delay", "6"
    )
    wait_file(gate / "done0-0")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=100)
    assert proc.returncode != 0, err
    run = runfolder.read_run(out)
    assert [p["status"] for p in run["processes"]] == ["complete"], err
    assert joined(skipnative.load(out / run["files"][0])) == 20


def test_a_second_signal_while_captures_end_is_passed_on_at_once(tmp_path):
    gate, out = _gated(tmp_path)
    proc = start_run(
        out, "--", *LAUNCHER, "20", "--gate", str(gate), "--hold", "120", "--flush-delay", "30"
    )
    wait_file(gate / "done0-0")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 30
    while not runfolder.ending(out):  # the process is writing its capture
        assert time.monotonic() < deadline, "the capture did not start to end"
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=100)
    assert time.monotonic() - t0 < 25, err  # not the 60 s the two flushes take
    run = runfolder.read_run(out)
    assert run["signal"] == "SIGINT"
    (p,) = run["processes"]
    assert p["status"] == "lost" and "while writing its capture" in p["error"]  # as asked


def test_sigterm_straight_to_a_worker_still_completes_its_file(tmp_path):
    # not through skip run (as torchrun's agent stops its workers): the
    # injection's own SIGTERM handler writes the file, then the worker dies of it
    gate, out = _gated(tmp_path)
    proc = start_run(
        out, "--", *LAUNCHER, "20", "--workers", "2", "--gate", str(gate), "--batches", "2"
    )
    wait_file(gate / "done0-0")
    victim = int(wait_file(gate / "done0-1"))  # now waiting for go1
    os.kill(victim, signal.SIGTERM)
    while runfolder.alive(victim):
        time.sleep(0.01)
    (gate / "go1").touch()
    _, err = proc.communicate(timeout=60)
    assert f"worker 1 exited with -{int(signal.SIGTERM)}" in err
    by_rank = {p["rank"]: p for p in runfolder.read_run(out)["processes"]}
    assert by_rank["1"]["pid"] == victim and by_rank["1"]["status"] == "complete"
    assert joined(skipnative.load(out / by_rank["1"]["file"])) == 20


def test_sigkill_of_one_worker_loses_only_its_file(tmp_path):
    gate, out = _gated(tmp_path)
    proc = start_run(
        out, "--", *LAUNCHER, "20", "--workers", "2", "--gate", str(gate), "--batches", "2"
    )
    wait_file(gate / "done0-0")
    victim = int(wait_file(gate / "done0-1"))
    os.kill(victim, signal.SIGKILL)
    (gate / "go1").touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0  # the launcher reports its killed worker
    run = runfolder.read_run(out)
    by_rank = {p["rank"]: p for p in run["processes"]}
    assert by_rank["0"]["status"] == "complete" and by_rank["0"]["launches"] == 40
    assert by_rank["1"]["status"] == "lost" and by_rank["1"]["file"] is None
    assert by_rank["1"]["pid"] == victim and "SIGKILL" in by_rank["1"]["error"]
    assert run["files"] == ["rank0.skip"]
    assert f"pid {victim}" in err


def one_line_error(r: subprocess.CompletedProcess) -> str:
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode != 0 and lines and "Traceback" not in r.stderr, r.stderr
    return lines[-1]


def test_command_not_found_is_one_line(tmp_path):
    line = one_line_error(skip_run(tmp_path, "--", "skipnative-no-such-command"))
    assert "skipnative-no-such-command: command not found" in line


def test_no_cuda_process_is_an_error(tmp_path):
    line = one_line_error(skip_run(tmp_path, "--", sys.executable, "-c", "pass"))
    assert "no process of the command initialised CUDA" in line


def test_another_subscriber_is_named(tmp_path):
    r = skip_run(tmp_path, "--", *LAUNCHER, "5", "--hold-subscriber")
    assert "already has a subscriber" in one_line_error(r)
    assert runfolder.read_run(tmp_path)["processes"][0]["status"] == "error"


def test_trigger_without_a_run_is_one_line(tmp_path):
    r = trigger(tmp_path)
    assert "no skip run is running there" in one_line_error(r)


def test_a_folder_with_a_run_is_kept_unless_forced(tmp_path):
    assert skip_run(tmp_path, "--", *LAUNCHER, "1").returncode == 0
    assert "already holds a run" in one_line_error(skip_run(tmp_path, "--", *LAUNCHER, "1"))
    (tmp_path / "notes.txt").write_text("mine")
    assert skip_run(tmp_path, "--force", "--", *LAUNCHER, "1").returncode == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_run_that_captured_nothing_does_not_hold_its_folder(tmp_path):
    """A run whose command initialised no CUDA wrote a run.json listing nothing: the
    corrected command runs in the same folder without --force (the default folder
    would otherwise refuse the newcomer's next try)."""
    failed = skip_run(tmp_path, "--", sys.executable, "-c", "pass")
    assert failed.returncode != 0 and (tmp_path / "run.json").exists()
    assert runfolder.read_run(tmp_path)["processes"] == []
    r = skip_run(tmp_path, "--", *LAUNCHER, "3")
    assert r.returncode == 0, r.stderr
    assert len(runfolder.read_run(tmp_path)["files"]) == 1


def test_a_run_whose_window_never_opened_does_not_hold_its_folder(tmp_path):
    """Its process initialised CUDA, but the command ended before --delay: run.json
    lists that process and no file, which held the folder as if it had one."""
    r = skip_run(tmp_path, "--delay", "30", "--", *LAUNCHER, "3")
    assert r.returncode == 0 and "no window" in r.stdout, r.stderr
    (p,) = runfolder.read_run(tmp_path)["processes"]
    assert p["status"] == "no window" and runfolder.read_run(tmp_path)["files"] == []
    r = skip_run(tmp_path, "--", *LAUNCHER, "3")
    assert r.returncode == 0, r.stderr
    assert len(runfolder.read_run(tmp_path)["files"]) == 1


def test_force_never_removes_a_capture_no_run_lists(tmp_path):
    # --force removed every .skip in the folder, a capture of the user's among them
    mine = tmp_path / "important.skip"
    mine.write_bytes(b"a capture of mine")
    for extra in ([], ["--force"]):
        line = one_line_error(skip_run(tmp_path, *extra, "--", *LAUNCHER, "1"))
        assert "important.skip, which no run there lists" in line
    assert mine.read_bytes() == b"a capture of mine"
    assert not (tmp_path / "run.json").exists()
    run = tmp_path / "run"
    assert skip_run(run, "--", *LAUNCHER, "1").returncode == 0
    (run / "important.skip").write_bytes(b"a capture of mine")  # beside a run's files
    line = one_line_error(skip_run(run, "--force", "--", *LAUNCHER, "1"))
    assert "important.skip" in line and (run / "important.skip").exists()


def _raw_dump(tmp_path: Path) -> Path:
    """A dump written by the injection library itself, without skip run."""
    from skipnative.cli.run import _injection_library

    env = _env()
    env.update(
        CUDA_INJECTION64_PATH=_injection_library(),
        SKIPNATIVE_RUN_DIR=str(tmp_path),
        SKIPNATIVE_RUN_WINDOW="whole",
    )
    subprocess.run([*LAUNCHER, "7"], check=True, env=env, timeout=60)
    (dump,) = tmp_path.glob("*.1.dump")
    return dump


def test_raw_dump_reads_back_and_rejects_damage(tmp_path):
    dump = _raw_dump(tmp_path)
    d = read_dump(dump)
    assert d.window == 1 and str(d.pid) == dump.name.split(".")[0]
    assert len(d.tables["launches"]) == 7 and len(d.tables["kernels"]) == 7
    assert "kernel_b0" in d.strings
    data = dump.read_bytes()
    for name, blob, problem in [
        ("cut", data[:-20], "no trailer"),
        ("magic", b"XXXXXXXX" + data[8:], "bad magic"),
        ("short", data[:10], "shorter than"),
        ("tail", data[:-8] + b"\0\0\0\0SKIPDEND", "after the string table"),
    ]:
        bad = tmp_path / f"{name}.dump"
        bad.write_bytes(blob)
        with pytest.raises(TraceError, match=problem) as e:
            read_dump(bad)
        assert str(bad) in str(e.value)


def test_run_json_is_checked(tmp_path):
    (tmp_path / "run.json").write_text('{"format": "something else"}')
    with pytest.raises(TraceError, match="not a skip run"):
        runfolder.read_run(tmp_path)


def test_sigusr1_to_skip_run_opens_a_window(tmp_path):
    gate, out = _gated(tmp_path)
    proc = start_run(
        out,
        "--on-demand",
        "--trigger-duration",
        "0",
        "--",
        *LAUNCHER,
        "10",
        "--batches",
        "3",
        "--gate",
        str(gate),
    )
    wait_file(gate / "done0-0")
    proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 30
    while not runfolder.acknowledged(out, "open", 1)[0]:
        assert time.monotonic() < deadline, "the window did not open"
        time.sleep(0.01)
    (gate / "go1").touch()
    wait_file(gate / "done1-0")
    assert trigger(out, "--stop").returncode == 0
    (gate / "go2").touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    trace = skipnative.load(out / runfolder.read_run(out)["files"][0])
    assert set(trace.name(trace.kernels["name_id"])) == {"kernel_b1"} and joined(trace) == 10


_FORK = """
import os, signal, sys, time
from skipnative.testing.launcher import _Cuda
_Cuda(3000, False)  # cuInit: the injection library is loaded and its handlers installed
pid = os.fork()
if pid == 0:
    time.sleep(30)
    os._exit(0)
os.kill(pid, signal.SIGTERM)
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        sys.exit(0 if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM else 3)
    time.sleep(0.01)
os.kill(pid, signal.SIGKILL)
sys.exit(4)
"""


def test_a_forked_child_still_dies_of_sigterm(tmp_path):
    # the injection's SIGTERM handler belongs to the process it was installed in
    r = skip_run(tmp_path, "--", sys.executable, "-c", _FORK)
    assert r.returncode == 0, r.stderr
    assert [p["status"] for p in runfolder.read_run(tmp_path)["processes"]] == ["complete"]


_FORK_WHILE_CLOSING = """
import os, sys, time
from skipnative.testing.launcher import _Cuda
t0 = time.monotonic()
cuda = _Cuda(3000, False, flush_delay_s=4.0)  # a window's close (its stop) takes 4 s
cuda.launch(cuda.kernel("k"), cuda.stream(), 10)
time.sleep(max(0.0, 1.3 - (time.monotonic() - t0)))  # the window closes at 0.3 s: still closing
pid = os.fork()
if pid == 0:
    sys.exit(0)  # a normal exit: the exit handlers run, the injection's among them
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        sys.exit(0 if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else 3)
    time.sleep(0.01)
os.kill(pid, 9)
sys.exit(4)  # the child hung in exit()
"""


def test_a_forked_child_exits_while_its_parent_closes_a_window(tmp_path):
    # the child inherits the injection's lock as the closing thread held it; its
    # exit handler must not wait for a thread that does not exist in the child
    r = skip_run(tmp_path, "--duration", "0.3", "--", sys.executable, "-c", _FORK_WHILE_CLOSING)
    assert r.returncode == 0, r.stderr
    assert [p["status"] for p in runfolder.read_run(tmp_path)["processes"]] == ["complete"]


def test_a_triggered_window_closes_after_its_duration(tmp_path):
    gate, out = _gated(tmp_path)
    proc = start_run(
        out, "--on-demand", "--", *LAUNCHER, "10", "--batches", "3", "--gate", str(gate)
    )
    wait_file(gate / "done0-0")
    waiter = subprocess.Popen(
        [*SKIP, "trigger", "--duration", "1.5", "--wait", str(out)],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    deadline = time.monotonic() + 30
    while not runfolder.acknowledged(out, "open", 1)[0]:
        assert time.monotonic() < deadline, "the window did not open"
        time.sleep(0.01)
    t_open = time.monotonic()
    (gate / "go1").touch()
    wait_file(gate / "done1-0")
    in_window = time.monotonic() - t_open < 1.0
    stdout, _ = waiter.communicate(timeout=60)
    assert waiter.returncode == 0 and "opened and closed in 1 process" in stdout
    (gate / "go2").touch()  # after the window closed
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    trace = skipnative.load(out / runfolder.read_run(out)["files"][0])
    names = set(trace.name(trace.kernels["name_id"]))
    assert "kernel_b0" not in names and "kernel_b2" not in names
    if in_window:
        assert names == {"kernel_b1"} and joined(trace) == 10


def test_a_process_that_starts_later_joins_the_open_window(tmp_path):
    gate, out = _gated(tmp_path)
    launcher = " ".join(LAUNCHER)
    script = (
        f"RANK=0 {launcher} 10 --batches 3 --gate {gate} & "
        f"while [ ! -e {gate}/late ]; do sleep 0.01; done; "
        f"RANK=1 {launcher} 10 --rank 1 --gate {gate}; wait"
    )
    proc = start_run(out, "--on-demand", "--", "sh", "-c", script)
    wait_file(gate / "done0-0")
    assert trigger(out, "--duration", "0").returncode == 0
    (gate / "late").touch()
    wait_file(gate / "done0-1")  # its first launches, inside the open window
    (gate / "go1").touch()
    wait_file(gate / "done1-0")
    assert trigger(out, "--stop").returncode == 0
    (gate / "go2").touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    run = runfolder.read_run(out)
    assert run["files"] == ["rank0.skip", "rank1.skip"]
    for f, batch in (("rank0.skip", "kernel_b1"), ("rank1.skip", "kernel_b0")):
        trace = skipnative.load(out / f)
        assert set(trace.name(trace.kernels["name_id"])) == {batch} and joined(trace) == 10


def test_a_run_capture_carries_the_same_metadata_as_an_in_process_one(tmp_path, gpu):
    """One definition of the metadata (cupti/metadata.h): a `skip run` file carries
    every key of an in-process capture's metadata, each capture option included."""
    r = skip_run(tmp_path, "--", *LAUNCHER, "3")
    assert r.returncode == 0, r.stderr
    p = runfolder.read_run(tmp_path)["processes"][0]
    run_meta = skipnative.load(tmp_path / p["file"]).meta
    with skipnative.capture(clock="library") as cap:
        gpu.launch("k", 1000)
    in_process = cap.trace.meta
    assert set(in_process) - set(run_meta) == set()
    options = set(skipnative.capturing.session.Capture.__init__.__kwdefaults__) - {"synchronize"}
    assert options <= set(run_meta)
    assert run_meta["launch_records"] == "callbacks" and run_meta["memcpy"] is True


def _hook_rows(trace) -> None:
    """Every launch row from the driver-entry-point hooks, none from callbacks: the
    capture says so, and the rows are named by the driver call cudart resolved
    (cuLaunchKernel), where a callback names the runtime call (cudaLaunchKernel)."""
    assert trace.meta["launch_records"] == "hook"
    assert trace.meta["launch_source"] == "hook" and trace.meta["launch_hook_fallback"] == ""
    assert set(trace.name(trace.launches["name_id"])) == {"cuLaunchKernel"}


def test_launch_records_hook_preloads_the_hooks_into_cmd(tmp_path):
    env = _env()
    env.pop("LD_PRELOAD", None)
    cmd = [*SKIP, "run", "--out", str(tmp_path), "--launch-records", "hook", "--", *LAUNCHER]
    r = subprocess.run([*cmd, "100"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    run = runfolder.read_run(tmp_path)
    assert run["options"]["launch_records"] == "hook"
    trace = skipnative.load(tmp_path / run["files"][0])
    _hook_rows(trace)
    assert len(trace.launches) == 100 == len(trace.kernels) and joined(trace) == 100


def test_hook_join_order_joins_the_launches_of_cmd_by_stream_order(tmp_path):
    r = skip_run(
        tmp_path, "--launch-records", "hook", "--hook-join", "order", "--latency-timestamps",
        "--", *LAUNCHER, "100",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    run = runfolder.read_run(tmp_path)
    assert run["options"]["hook_join"] == "order"
    trace = skipnative.load(tmp_path / run["files"][0])
    _hook_rows(trace)
    assert trace.meta["hook_join"] == "order" and trace.meta["hook_api_records"] == ""
    assert len(trace.launches) == 100 == len(trace.kernels) and joined(trace) == 100
    assert trace.meta["pairs_checked"] == 100 and trace.meta["launches_unjoined"] == 0


def test_launch_records_hook_reaches_every_worker(tmp_path):
    r = skip_run(tmp_path, "--launch-records", "hook", "--", *LAUNCHER, "100", "--workers", "2")
    assert r.returncode == 0, r.stderr
    run = runfolder.read_run(tmp_path)
    assert run["files"] == ["rank0.skip", "rank1.skip"]
    for f in run["files"]:
        trace = skipnative.load(tmp_path / f)
        _hook_rows(trace)
        assert len(trace.launches) == 100 and joined(trace) == 100


_BAD_OPTIONS = """
import os
os.environ["SKIPNATIVE_RUN_OPTIONS"] = "no_such_option=1"  # as a tampered environment would
from skipnative.testing.launcher import _Cuda
_Cuda(3000, False)  # cuInit: the injection cannot read its options
"""


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ("no_such_option=1", "no_such_option"),
        # out of the bounds capture() holds too: the injection checks them itself
        ("max_activity_buffers=0", "max_activity_buffers must be >= 1"),
        ("activity_buffer_bytes=9999999999999999999", "activity_buffer_bytes must be <="),
        ("completion_cpu=-5", "completion_cpu must be a CPU number"),
    ],
)
def test_a_process_that_cannot_read_its_options_is_listed_with_why(tmp_path, options, said):
    code = _BAD_OPTIONS.replace("no_such_option=1", options)
    r = skip_run(tmp_path, "--", sys.executable, "-c", code)
    assert r.returncode == 1
    (p,) = runfolder.read_run(tmp_path)["processes"]
    assert said in p["error"] and not p.get("file")
    assert "no process of the command initialised CUDA" not in r.stderr
    assert f"pid {p['pid']}: " in r.stderr and said in r.stderr


def test_records_dropped_in_every_window_are_said_and_summed(tmp_path):
    # two windows, each past max_gpu_records: run.json and the summary say what
    # was lost, over both windows (the first window's count alone was kept)
    gate, out = _gated(tmp_path)
    proc = start_run(
        out, "--on-demand", "--max-gpu-records", "2", "--",
        *LAUNCHER, "10", "--batches", "5", "--gate", str(gate),
    )  # fmt: skip
    wait_file(gate / "done0-0")
    for b in (1, 3):
        assert trigger(out, "--duration", "0").returncode == 0
        (gate / f"go{b}").touch()
        wait_file(gate / f"done{b}-0")
        assert trigger(out, "--stop").returncode == 0
        (gate / f"go{b + 1}").touch()
        wait_file(gate / f"done{b + 1}-0")
    out_text, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    (p,) = runfolder.read_run(out)["processes"]
    assert p["kernels"] == 4 and p["dropped"] == {"gpu_rows": 16}
    trace = skipnative.load(out / p["file"])
    assert trace.meta["dropped"]["gpu_rows"] == 16
    assert "16 GPU records (max_gpu_records)" in out_text + err


def _with_header(dump: Path, out: Path, change) -> Path:
    """`dump` with its JSON header changed by change(header)."""
    import struct

    data = dump.read_bytes()
    magic, version, hlen = struct.unpack_from("<8sII", data, 0)
    header = json.loads(data[16 : 16 + hlen])
    change(header)
    hb = json.dumps(header).encode()
    out.write_bytes(struct.pack("<8sII", magic, version, len(hb)) + hb + data[16 + hlen :])
    return out


@pytest.mark.parametrize(
    "change",
    [
        lambda h: h["meta"].pop("t_stop_ns"),
        lambda h: h.update(meta=[]),
        lambda h: h.update(window=float("inf")),
        lambda h: h["meta"].update(t_stop_ns=h["meta"]["t_start_ns"] - 1),
    ],
    ids=["no_t_stop", "meta_list", "window_infinite", "stop_before_start"],
)
@pytest.mark.parametrize("mode", ["whole", "on-demand"])
def test_a_damaged_dump_costs_only_its_own_file(tmp_path, change, mode):
    """A dump whose header meta no process writes raised out of finish() (an
    internal error, exit 70): no run.json, and no file for the sound process."""
    raw = tmp_path / "raw"
    raw.mkdir()
    good = _raw_dump(raw)
    run = tmp_path / "run"
    c = run / runfolder.CONTROL
    c.mkdir(parents=True)
    pid = good.name.split(".")[0]
    for suffix in (".json", ".state", ".1.dump"):
        src = raw / f"{pid}{suffix}"
        (c / f"{pid}{suffix}").write_bytes(src.read_bytes())
        dst = c / f"1{suffix}"
        if suffix == ".1.dump":
            _with_header(src, dst, change)
        else:
            dst.write_bytes(src.read_bytes())
    result = runfolder.finish(str(run), {"mode": mode})
    by_pid = {p["pid"]: p for p in result["processes"]}
    assert by_pid[int(pid)]["status"] == "complete" and (run / by_pid[int(pid)]["file"]).exists()
    bad = by_pid[1]
    # named: the dump itself where its reader finds the problem, else the process's
    assert bad["status"] == "error" and "\n" not in bad["error"]
    assert f"{runfolder.CONTROL}/1." in bad["error"] and ".dump" in bad["error"]
    assert json.loads((run / "run.json").read_text())["processes"]


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda h: h.update(window="1"), "header window is '1', not a count"),
        (lambda h: h.update(pid=-4), "header pid is -4, not a count"),
        (lambda h: h.update(strings=2.0), "header strings is 2.0, not a count"),
        (
            lambda h: h["tables"]["kernels"].update(rows="7"),
            "header tables.kernels.rows is '7', not a count",
        ),
        (lambda h: h.update(devices=[0]), "header devices is [0], not a list of names"),
        (lambda h: h["meta"].update(t_start_ns="5"), "meta t_start_ns is '5', not a count"),
        (lambda h: h["meta"].update(t_stop_ns=2**64), "meta t_stop_ns is 18446744073709551616"),
        (lambda h: h["meta"].update(t_stop_ns=h["meta"]["t_start_ns"] - 1), "is before t_start_ns"),
        (lambda h: h["meta"].update(launches_outside=None), "meta launches_outside is None"),
        (lambda h: h["meta"].update(cupti_test_double=1), "cupti_test_double is 1, not a boolean"),
        (lambda h: h["meta"]["dropped"].update(cupti="3"), "meta dropped.cupti is '3'"),
    ],
    ids=[
        "window_text",
        "pid_negative",
        "strings_float",
        "rows_text",
        "device_number",
        "t_start_text",
        "t_stop_past_64_bits",
        "stop_before_start",
        "outside_null",
        "double_number",
        "dropped_text",
    ],
)
def test_a_dump_header_no_process_writes_is_refused(tmp_path, change, problem):
    """read_dump took what the conversion then read as it came: "1" as window 1,
    "7" as seven rows, a stop before the start (in an on-demand run, a window
    region that ends before it begins: a .skip that no reader loads)."""
    bad = _with_header(_raw_dump(tmp_path), tmp_path / "bad.dump", change)
    with pytest.raises(TraceError, match=re.escape(problem)) as e:
        read_dump(bad)
    assert str(e.value).startswith(str(bad)) and "\n" not in str(e.value)


def test_a_dump_whose_skip_would_not_load_is_that_processs_error(tmp_path):
    """A launch row that ends before it begins passed the dump's reader and was
    written into a .skip that no reader loads, listed in run.json as complete."""
    import struct

    from skipnative import _native

    good = _raw_dump(tmp_path)
    run = tmp_path / "run"
    c = run / runfolder.CONTROL
    c.mkdir(parents=True)
    pid = good.name.split(".")[0]
    for suffix in (".json", ".state"):
        (c / f"{pid}{suffix}").write_bytes((tmp_path / f"{pid}{suffix}").read_bytes())
    data = bytearray(good.read_bytes())
    (hlen,) = struct.unpack_from("<I", data, 12)
    row0 = 16 + hlen  # the launches table comes first
    dtype = _native.record_dtypes()["launches"]
    begin = struct.unpack_from("<Q", data, row0 + dtype.fields["t_begin"][1])[0]
    struct.pack_into("<Q", data, row0 + dtype.fields["t_end"][1], begin - 1)
    (c / f"{pid}.1.dump").write_bytes(bytes(data))
    (p,) = runfolder.finish(str(run), {"mode": "whole"})["processes"]
    assert p["status"] == "error" and p["file"] is None, p
    assert "launches: row 0 ends before it begins" in p["error"]
    assert f"{pid}.*.dump" in p["error"] and not list(run.glob("*.skip"))


def test_a_reader_gone_from_stdout_keeps_cmds_exit_status(tmp_path):
    """`skip run ... | head`: the summary's write failed and skip run exited 0,
    hiding CMD's failure (and the problems it would have said on stderr)."""
    script = (
        "from skipnative.testing.launcher import _Cuda; c = _Cuda(3000, False); "
        "c.launch(c.kernel('k'), c.stream(), 5); raise SystemExit(3)"
    )
    cmd = [*SKIP, "run", "--out", str(tmp_path / "o"), "--", sys.executable, "-c", script]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    p.stdout.close()  # no reader
    _, err = p.communicate(timeout=120)
    assert p.returncode == 3, err
    assert b"Traceback" not in err
    run = runfolder.read_run(tmp_path / "o")
    assert run["exit_code"] == 3 and len(run["files"]) == 1


def test_a_folder_another_skip_run_holds_is_refused(tmp_path):
    """Two runs started at once could both pass the check for a run already
    writing there (it read run.pid before either wrote it)."""
    import fcntl

    out = tmp_path / "o"
    out.mkdir()
    fd = os.open(out, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a skip run holds its folder
    try:
        r = skip_run(out, "--", *LAUNCHER, "5")
    finally:
        os.close(fd)
    assert r.returncode == 1 and "is already writing into this folder" in one_line_error(r)
    assert not (out / "run.json").exists()
    assert skip_run(out, "--", *LAUNCHER, "5").returncode == 0


def test_the_captures_of_a_skip_run_killed_before_it_finished_are_kept(tmp_path):
    """skip run killed (SIGKILL, a closed terminal) while CMD ran on: the next run
    into the folder removed the dumps CMD's processes wrote, saying nothing."""
    out = tmp_path / "o"
    gate = tmp_path / "gate"
    gate.mkdir()
    # CMD's output goes nowhere that skip run's end closes (it would end on EPIPE)
    cmd = [*SKIP, "run", "--out", str(out), "--", *LAUNCHER, "10", "--gate", str(gate)]
    proc = subprocess.Popen([*cmd, "--batches", "2"], stdout=subprocess.DEVNULL, env=_env())
    wait_file(gate / "done0-0")
    proc.kill()
    proc.wait()
    (gate / "go1").touch()  # CMD, in its own process group, runs on and exits
    control = out / runfolder.CONTROL
    deadline = time.monotonic() + 60
    while not list(control.glob("*.1.dump")) or any(
        runfolder.alive(pid) for pid in runfolder.processes(str(out))
    ):
        assert time.monotonic() < deadline, "CMD did not end"
        time.sleep(0.05)
    r = skip_run(out, "--", *LAUNCHER, "5")
    assert r.returncode == 1, r.stderr
    assert "an earlier skip run ended before it finished this folder" in r.stderr
    assert "already holds a run" in one_line_error(r)
    run = runfolder.read_run(out)
    assert run["unfinished"] and run["command"][-4:] == ["--gate", str(gate), "--batches", "2"]
    (f,) = run["files"]
    assert joined(skipnative.load(out / f)) == 20
    assert skip_run(out, "--force", "--", *LAUNCHER, "5").returncode == 0


def test_sighup_to_skip_run_ends_the_captures_and_reaches_cmd(tmp_path):
    """CMD is in its own process group, so a closed terminal's SIGHUP reached skip
    run alone: it died with no run.json while CMD ran on."""
    gate, out = _gated(tmp_path)
    proc = start_run(
        out, "--", *LAUNCHER, "20", "--workers", "2", "--gate", str(gate), "--hold", "60"
    )
    wait_file(gate / "done0-0")
    wait_file(gate / "done0-1")
    proc.send_signal(signal.SIGHUP)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        # communicate() also waits for CMD, which holds skip run's stdout and stderr
        status = proc.poll()
        proc.kill()
        subprocess.run(["pkill", "-KILL", "-f", str(gate)], check=False)
        who = "skip run" if status is None else f"CMD (skip run had ended with {status})"
        pytest.fail(f"{who} did not end after SIGHUP")
    assert proc.returncode == 128 + signal.SIGHUP, err
    run = runfolder.read_run(out)
    assert run["signal"] == "SIGHUP"
    assert [p["status"] for p in run["processes"]] == ["complete", "complete"]


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_a_signal_just_after_cmd_started_is_passed_on(tmp_path, sig):
    """A signal between CMD's start and skip run's handlers took its default
    action: skip run ended alone (SIGINT: a KeyboardInterrupt), with no run.json,
    while CMD ran on in its own process group, holding skip run's stdout and
    stderr (a caller reading them to their end waited for CMD)."""
    out, cmd_pid = tmp_path / "o", tmp_path / "cmd.pid"
    script = (
        "import os, signal, subprocess, sys\n"
        "from skipnative.cli import run\n"
        "from skipnative.cli.main import main\n"
        "class Popen(subprocess.Popen):\n"
        "    def __init__(self, *a, **k):\n"
        "        super().__init__(*a, **k)\n"
        f"        open({str(cmd_pid)!r}, 'w').write(str(self.pid))\n"
        f"        os.kill(os.getpid(), {int(sig)})\n"
        "run.subprocess.Popen = Popen\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    argv = [sys.executable, "-c", script, "run", "--out", str(out), "--", *LAUNCHER, "5"]
    proc = subprocess.Popen(
        [*argv, "--hold", "60"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
        preexec_fn=signals_at_default,
    )
    try:
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
        ran_on = True
        try:
            os.killpg(int(cmd_pid.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            ran_on = False
    assert not ran_on, "CMD ran on after skip run ended"
    assert code == 128 + sig
    run = runfolder.read_run(out)
    assert run["signal"] == signal.Signals(sig).name and run["exit_code"] == 128 + sig


def test_a_signal_while_the_folder_is_finished_waits_for_it(tmp_path):
    """A SIGTERM after CMD had exited, while skip run turned the dumps into files,
    ended skip run there: no run.json, the captures left in the control folder."""
    out = tmp_path / "o"
    script = (
        "import os, signal, sys\n"
        "from skipnative.io import runfolder\n"
        "from skipnative.cli.main import main\n"
        "finish = runfolder.finish\n"
        "def late(*a):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return finish(*a)\n"
        "runfolder.finish = late\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", script, "run", "--out", str(out), "--", *LAUNCHER, "5"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    (f,) = runfolder.read_run(out)["files"]
    assert joined(skipnative.load(out / f)) == 5


def test_a_process_that_initialises_cuda_after_cmd_exited_is_waited_for(tmp_path):
    """CMD left a background job that started CUDA after CMD itself had exited:
    skip run waited only for processes already captured, found none, and said no
    process had initialised CUDA."""
    job = " ".join([*LAUNCHER, "10"])
    r = skip_run(tmp_path / "o", "--", "sh", "-c", f"(sleep 0.5; exec {job}) &")
    assert r.returncode == 0, r.stderr
    run = runfolder.read_run(tmp_path / "o")
    (p,) = run["processes"]
    assert p["status"] == "complete" and p["launches"] == 10


def test_a_process_still_running_after_the_wait_is_named(tmp_path):
    job = "sleep 30 & " + " ".join([*LAUNCHER, "5"])
    r = skip_run(tmp_path / "o", "--wait-children", "0.3", "--", "sh", "-c", job)
    assert r.returncode == 0, r.stderr
    assert "still running after --wait-children 0.3 s" in r.stderr
    left = runfolder.read_run(tmp_path / "o")["still_running"]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left
