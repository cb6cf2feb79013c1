"""A run folder's control files (.skiprun/) that are damaged or unreadable: `skip
trigger` refuses them in one line before it appends a request, and finish()
always writes run.json, listing the process whose files it could not read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from skipnative.io import runfolder


def skip(*args):
    return subprocess.run(
        [sys.executable, "-m", "skipnative", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture
def live_pid():
    """A live process standing in for a captured one."""
    p = subprocess.Popen(["sleep", "60"])
    yield p.pid
    p.kill()
    p.wait()


def control(tmp_path: Path, pid: int, ident="{}", state='{"state": "exited"}') -> Path:
    c = tmp_path / "run" / runfolder.CONTROL
    c.mkdir(parents=True)
    (c / "run.pid").write_text(f"{pid} on-demand\n")
    if ident is not None:
        (c / f"{pid}.json").write_text(ident)
    if state is not None:
        (c / f"{pid}.state").write_text(state)
    return c


BAD_FILES = {
    "identity_list": ("[1, 2]", '{"state": "exited"}', ".json"),
    "identity_invalid": ("{", '{"state": "exited"}', ".json"),
    "identity_deep": ("[" * 100_000 + "]" * 100_000, '{"state": "exited"}', ".json"),
    "state_seq_text": ("{}", '{"state": "open", "seq": "a"}', ".state"),
    "state_last_seq_bool": ("{}", '{"state": "exited", "last_seq": true}', ".state"),
    "state_windows_negative": ("{}", '{"state": "exited", "windows": -1}', ".state"),
    "state_name_number": ("{}", '{"state": 3}', ".state"),
    "state_error_object": ("{}", '{"state": "error", "error": {"x": 1}}', ".state"),
    "state_list": ("{}", "[]", ".state"),
    "state_not_utf8": ("{}", b'{"state": "\xff"}', ".state"),
}


def _write(c: Path, pid: int, ident, state) -> None:
    for suffix, text in ((".json", ident), (".state", state)):
        path = c / f"{pid}{suffix}"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_processes_names_a_damaged_control_file_instead_of_raising(tmp_path, name):
    ident, state, suffix = BAD_FILES[name]
    c = control(tmp_path, 4242, None, None)
    _write(c, 4242, ident, state)
    p = runfolder.processes(str(tmp_path / "run"))[4242]
    assert str(c / f"4242{suffix}") in p["problem"] and "\n" not in p["problem"]
    assert isinstance(p["state"], dict)
    runfolder.acknowledged(str(tmp_path / "run"), "open", 1)  # no exception either
    runfolder.ending(str(tmp_path / "run"))


@pytest.mark.parametrize("name", ["identity_list", "state_seq_text", "state_not_utf8"])
def test_trigger_refuses_a_damaged_control_file_before_requesting(tmp_path, live_pid, name):
    ident, state, suffix = BAD_FILES[name]
    c = control(tmp_path, live_pid, None, None)
    _write(c, live_pid, ident, state)
    r = skip("trigger", "--timeout", "1", tmp_path / "run")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert f"{live_pid}{suffix}" in lines[0] and "internal error" not in lines[0]
    assert not (c / "trigger").exists()  # nothing asked of the processes


def test_a_control_file_that_is_a_fifo_does_not_hang(tmp_path):
    c = control(tmp_path, 4242, None, "{}")
    os.mkfifo(c / "4242.json")
    found = {}
    t = threading.Thread(target=lambda: found.update(runfolder.processes(str(c.parent))))
    t.daemon = True
    t.start()
    t.join(10)
    assert not t.is_alive(), "processes() blocked on a FIFO"
    assert "4242.json" in found[4242]["problem"]


def test_finish_writes_run_json_when_a_state_file_cannot_be_read(tmp_path):
    c = control(tmp_path, 4242, '{"rank": "0"}', None)
    (c / "4242.state").mkdir()  # read() fails: IsADirectoryError
    run = runfolder.finish(str(tmp_path / "run"), {"mode": "whole"})
    assert run == runfolder.read_run(tmp_path / "run")
    (p,) = run["processes"]
    assert p["pid"] == 4242 and p["status"] == "error" and "4242.state" in p["error"]
    assert c.is_dir()  # kept for a look at what went wrong


@pytest.mark.parametrize(
    "trigger",
    [None, b"open 1 5 2000000000\nopen a b c\nstop 2 9 0\n", b"open 1 \xff 2\n"],
    ids=["a folder", "a malformed line", "not utf-8"],
)
def test_finish_writes_run_json_whatever_the_trigger_file_holds(tmp_path, trigger):
    c = control(tmp_path, 4242, "{}", '{"state": "exited", "windows": 0}')
    if trigger is None:
        (c / "trigger").mkdir()
    else:
        (c / "trigger").write_bytes(trigger)
    run = runfolder.finish(str(tmp_path / "run"), {"mode": "on-demand"})
    assert run == runfolder.read_run(tmp_path / "run")
    assert [p["status"] for p in run["processes"]] == ["no window"]
    for t in run["triggers"]:  # the lines that are requests, as requests
        assert isinstance(t["seq"], int) and isinstance(t["t_unix_ns"], int)
    if trigger and b"stop 2" in trigger:
        assert [t["op"] for t in run["triggers"]] == ["open", "stop"]
    if trigger is None or b"\xff" in trigger:
        assert "trigger" in run["trigger_error"]


def test_a_rank_of_unicode_digits_does_not_break_the_order(tmp_path):
    c = control(tmp_path, 4242, json.dumps({"rank": "\u00b2"}), '{"state": "exited"}')
    (c / "4243.json").write_text('{"rank": "1"}')
    (c / "4243.state").write_text('{"state": "exited"}')
    run = runfolder.finish(str(tmp_path / "run"), {"mode": "whole"})
    assert [p["pid"] for p in run["processes"]] == [4243, 4242]


@pytest.mark.parametrize("depth", [150, 100_000])
def test_a_deeply_nested_run_json_is_refused_in_one_line(tmp_path, depth):
    from skipnative.errors import TraceError

    doc = {"format": runfolder.RUN_FORMAT, "version": 1, "processes": [], "x": "DEEP"}
    (tmp_path / "run.json").write_text(json.dumps(doc).replace('"DEEP"', "[" * depth + "]" * depth))
    with pytest.raises(TraceError) as e:
        runfolder.read_run(tmp_path)
    assert e.value.path == str(tmp_path / "run.json") and "nested" in e.value.problem


@pytest.mark.parametrize(
    ("files", "problem"),
    [(["rank0.skip", "rank0.skip"], "listed twice"), (["a/rank0.skip"], "is a path")],
)
def test_read_run_checks_the_files_as_the_folder_commands_do(tmp_path, files, problem):
    from skipnative.errors import TraceError

    doc = {"format": runfolder.RUN_FORMAT, "version": 1, "processes": [], "files": files}
    (tmp_path / "run.json").write_text(json.dumps(doc))
    with pytest.raises(TraceError) as e:
        runfolder.read_run(tmp_path)
    assert e.value.path == str(tmp_path / "run.json") and problem in e.value.problem
