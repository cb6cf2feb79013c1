"""`skip run` and the processes it captures: multiprocessing workers that end
through os._exit, on-demand windows named alike in every process (a process
that starts late included), and command lines that are not UTF-8."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_run import LAUNCHER, SKIP, _env, skip_run, start_run, trigger, wait_file

import skipnative
from skipnative.io import runfolder

_MP = """
import multiprocessing as mp, sys

def work(n, gil):
    import ctypes
    from skipnative.testing import _DRIVER, library_path
    from skipnative.testing.launcher import _Cuda
    if gil:  # cuInit called with the GIL held, as a C++ extension may: PyDLL keeps it
        cdll = ctypes.CDLL
        ctypes.CDLL = lambda p, mode=0: (ctypes.PyDLL if p == library_path(_DRIVER) else cdll)(
            p, mode=mode
        )
    cuda = _Cuda(3000, False)
    cuda.launch(cuda.kernel("k"), cuda.stream(), n)

if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    gil = sys.argv[2] == "gil"
    ps = [ctx.Process(target=work, args=(10 * (i + 1), gil)) for i in range(3)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    sys.exit(max(p.exitcode for p in ps))
"""


@pytest.mark.parametrize(
    ("method", "gil"),
    [("fork", "released"), ("forkserver", "released"), ("spawn", "released"), ("fork", "gil")],
)
def test_multiprocessing_workers_each_write_their_file(tmp_path, method, gil):
    # a worker started with fork or forkserver ends through os._exit once
    # multiprocessing's bootstrap returns: no C exit handler runs there. These
    # workers end within milliseconds of their cuInit, the GIL held through it
    # or not, before a thread waiting for the GIL would get it unasked.
    script = tmp_path / "mp_work.py"
    script.write_text(_MP)
    out = tmp_path / "run"
    r = skip_run(out, "--", sys.executable, str(script), method, gil)
    assert r.returncode == 0, r.stderr
    run = runfolder.read_run(out)
    procs = run["processes"]
    assert [p["status"] for p in procs] == ["complete"] * 3, procs
    assert sorted(p["launches"] for p in procs) == [10, 20, 30]
    assert len(run["files"]) == 3
    # nothing printed into the workers' output by the injection
    assert "Traceback" not in r.stderr and "Error" not in r.stderr


_MAIN_UNTOUCHED = """
import sys
from skipnative.testing.launcher import _Cuda
before = set(vars(sys.modules["__main__"]))
cuda = _Cuda(3000, False)
cuda.launch(cuda.kernel("k"), cuda.stream(), 4)
import time
time.sleep(0.3)  # the injection's threads have run by now
added = set(vars(sys.modules["__main__"])) - before - {"before", "cuda", "time"}
sys.exit(f"names added to __main__: {sorted(added)}" if added else 0)
"""


def test_a_plain_python_process_keeps_its_main_module_and_exit(tmp_path):
    r = skip_run(tmp_path, "--", sys.executable, "-c", _MAIN_UNTOUCHED)
    assert r.returncode == 0, r.stderr
    (p,) = runfolder.read_run(tmp_path)["processes"]
    assert p["status"] == "complete" and p["launches"] == 4


def _regions(out: Path, name: str) -> list[str]:
    trace = skipnative.load(out / name)
    return trace.name(trace.regions["name_id"])


def _late_script(gate: Path, late_gate: Path, rank0_batches: int, late_args: str) -> str:
    launcher = " ".join(LAUNCHER)
    return (
        f"RANK=0 {launcher} 10 --batches {rank0_batches} --gate {gate} & "
        f"while [ ! -e {gate}/late ]; do sleep 0.01; done; "
        f"RANK=1 {launcher} 10 --rank 1 {late_args} --gate {late_gate}; wait"
    )


def test_a_window_has_the_same_name_in_every_process(tmp_path):
    # rank 1 starts after trigger 1's window: trigger 3's window is "window 3" in
    # both files, so that `skip analyze RUN_DIR` compares the same window
    gate, late_gate, out = tmp_path / "gate", tmp_path / "late_gate", tmp_path / "run"
    gate.mkdir()
    late_gate.mkdir()
    script = _late_script(gate, late_gate, 4, "--batches 2")
    proc = start_run(out, "--on-demand", "--", "sh", "-c", script)
    wait_file(gate / "done0-0")
    assert trigger(out, "--duration", "0").returncode == 0  # 1
    (gate / "go1").touch()
    wait_file(gate / "done1-0")
    assert trigger(out, "--stop").returncode == 0  # 2
    (gate / "late").touch()
    wait_file(late_gate / "done0-1")  # outside any window
    t = trigger(out, "--duration", "0")  # 3
    assert t.returncode == 0 and "in 2 process" in t.stdout, t.stdout + t.stderr
    (gate / "go2").touch()
    (late_gate / "go1").touch()
    wait_file(gate / "done2-0")
    wait_file(late_gate / "done1-1")
    assert trigger(out, "--stop").returncode == 0  # 4
    (gate / "go3").touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    run = runfolder.read_run(out)
    assert run["files"] == ["rank0.skip", "rank1.skip"]
    assert _regions(out, "rank0.skip") == ["window 1", "window 3"]
    assert _regions(out, "rank1.skip") == ["window 3"]
    a = subprocess.run(
        [*SKIP, "analyze", "--json", str(out)], capture_output=True, text=True, timeout=120
    )
    assert a.returncode == 0, a.stderr
    steps = {s["name"]: s for s in json.loads(a.stdout)["steps"]}
    assert steps["window 3"]["ranks"] == 2 and steps["window 1"]["ranks"] == 1


def test_a_late_process_does_not_replay_a_window_already_stopped(tmp_path):
    # the window was opened and stopped before rank 1 started: rank 1 has none
    # (not an empty one, which `skip analyze RUN_DIR` cannot analyse)
    gate, late_gate, out = tmp_path / "gate", tmp_path / "late_gate", tmp_path / "run"
    gate.mkdir()
    late_gate.mkdir()
    proc = start_run(out, "--on-demand", "--", "sh", "-c", _late_script(gate, late_gate, 3, ""))
    wait_file(gate / "done0-0")
    assert trigger(out, "--duration", "0").returncode == 0
    (gate / "go1").touch()
    wait_file(gate / "done1-0")
    assert trigger(out, "--stop").returncode == 0
    (gate / "late").touch()
    wait_file(late_gate / "done0-1")
    (gate / "go2").touch()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    run = runfolder.read_run(out)
    by_rank = {p["rank"]: p for p in run["processes"]}
    assert by_rank["1"]["status"] == "no window" and by_rank["1"]["file"] is None
    assert by_rank["1"]["windows"] == 0
    assert run["files"] == ["rank0.skip"]
    assert _regions(out, "rank0.skip") == ["window 1"]
    a = subprocess.run([*SKIP, "analyze", str(out)], capture_output=True, text=True, timeout=120)
    assert a.returncode == 0, a.stderr


# each not valid UTF-8: a lone continuation byte, a cut sequence, an overlong
# form, an encoded surrogate, a code point past U+10FFFF; then valid text around
_NOT_UTF8 = [b"caf\xe9.txt", b"\x80x\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]
_NOT_UTF8 += ["snow \u2603 \U0001f600".encode(), b"ok\xff\xfe"]


_LAUNCH_5 = "import sys; from skipnative.testing.launcher import main; sys.exit(main(['5']))"


def test_a_command_line_that_is_not_utf8_is_listed_faithfully(tmp_path):
    # each invalid sequence as U+FFFD, as bytes.decode("utf-8", "replace") reads it
    out = tmp_path / "run"
    env = _env()
    env.update(RANK="3", CUDA_VISIBLE_DEVICES=os.fsdecode(b"0,\xff"))
    cmd = [*SKIP, "run", "--out", str(out), "--", sys.executable, "-c", _LAUNCH_5]
    r = subprocess.run(
        [os.fsencode(c) for c in cmd] + _NOT_UTF8,
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    (p,) = runfolder.read_run(out)["processes"]
    assert p["status"] == "complete" and p["error"] is None
    assert p["file"] == "rank3.skip" and p["rank"] == "3"
    assert p["argv"][-len(_NOT_UTF8) :] == [a.decode("utf-8", "replace") for a in _NOT_UTF8]
    assert p["cuda_visible_devices"] == "0,\ufffd"
    assert not (out / runfolder.CONTROL).exists()
    run_meta = skipnative.load(out / "rank3.skip").meta["run"]
    assert run_meta["argv"] == p["argv"]


def test_a_rank_that_is_not_utf8_names_the_file_by_pid(tmp_path):
    out = tmp_path / "run"
    env = _env()
    env["RANK"] = os.fsdecode(b"3\xff")
    env["PYTHONIOENCODING"] = "utf-8:strict"  # as in a UTF-8 locale: no surrogateescape
    cmd = [*SKIP, "run", "--out", str(out), "--", *LAUNCHER, "5"]
    r = subprocess.run(cmd, capture_output=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    (p,) = runfolder.read_run(out)["processes"]
    assert p["status"] == "complete" and p["rank"] == "3\ufffd"
    assert p["file"] == f"pid{p['pid']}.skip"
    assert "(rank 3\ufffd)".encode() in r.stdout
    assert not (out / runfolder.CONTROL).exists()


_MP_TAIL = """
import multiprocessing as mp, sys, threading, time

def work():
    from skipnative.testing.launcher import _Cuda
    cuda = _Cuda(3000, False)
    stream = cuda.stream()
    cuda.launch(cuda.kernel("k"), stream, 5)

    def tail():  # a non-daemon thread: the worker waits for it before it exits
        time.sleep(0.3)
        cuda.launch(cuda.kernel("tail"), stream, 20)

    threading.Thread(target=tail).start()

if __name__ == "__main__":
    p = mp.get_context(sys.argv[1]).Process(target=work)
    p.start()
    p.join()
    sys.exit(p.exitcode)
"""


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_workers_threads_are_captured_to_its_end(tmp_path, method):
    """A worker's capture ends when the worker does, its threads joined first. A
    fork or forkserver worker's ended at threading's shutdown, which runs before
    the joins: the 20 launches of a thread still running were lost."""
    script = tmp_path / "tail.py"
    script.write_text(_MP_TAIL)
    r = skip_run(tmp_path / "run", "--", sys.executable, str(script), method)
    assert r.returncode == 0, r.stderr
    (p,) = runfolder.read_run(tmp_path / "run")["processes"]
    assert p["status"] == "complete" and p["launches"] == 25


_OS_EXIT = """
import os
from skipnative.testing.launcher import _Cuda
cuda = _Cuda(3000, False)
cuda.launch(cuda.kernel("k"), cuda.stream(), 5)
os._exit(3)
"""


def test_a_process_ending_through_os_exit_keeps_its_capture(tmp_path):
    """os._exit passes every C exit handler by: the capture was lost."""
    r = skip_run(tmp_path, "--", sys.executable, "-c", _OS_EXIT)
    assert r.returncode == 3, r.stderr
    (p,) = runfolder.read_run(tmp_path)["processes"]
    assert p["status"] == "complete" and p["launches"] == 5


# the setup _Cuda() makes before its cuInit, without it: f is cuInit
_BEFORE_CUINIT = """
import ctypes, os, sys, threading, time
from skipnative.testing import _DRIVER, library_path, simulate_cuda
from skipnative.testing.launcher import _Cuda
simulate_cuda()  # as _Cuda() does before its cuInit
os.environ["SKIPNATIVE_CUPTI_LIBRARY"] = library_path()
opts = os.environ["SKIPNATIVE_RUN_OPTIONS"].split(";")
os.environ["SKIPNATIVE_RUN_OPTIONS"] = ";".join(o for o in opts if "wheel_dirs=" not in o)
f = ctypes.CDLL(library_path(_DRIVER), mode=ctypes.RTLD_GLOBAL).cuInit
"""

_NO_BUILTINS = (
    _BEFORE_CUINIT
    + """
# cuInit where the frame has no builtins (a sandboxed evaluator): the injection's
# code runs at the loop's first turn, in this frame
exec("f(0)\\nfor i in r: pass", {"__builtins__": {}, "f": f, "r": range(1000)})
cuda = _Cuda(3000, False)
cuda.launch(cuda.kernel("k"), cuda.stream(), 5)
print("finished")
os._exit(0)
"""
)


def test_a_frame_without_builtins_neither_fails_the_program_nor_loses_its_capture(tmp_path):
    """The injection's code took the builtins of the frame it interrupted: with
    none, its own `import` raised NameError into the program, which died."""
    r = skip_run(tmp_path, "--", sys.executable, "-c", _NO_BUILTINS)
    assert r.returncode == 0, r.stderr
    assert "finished" in r.stdout and "Error" not in r.stderr
    (p,) = runfolder.read_run(tmp_path)["processes"]
    assert p["status"] == "complete" and p["launches"] == 5


_AT_RECURSION_LIMIT = (
    _BEFORE_CUINIT
    + """
def probe(n):
    return 0 if n == 0 else probe(n - 1)

depth = 1
while True:
    try:
        probe(depth + 1)
        depth += 1
    except RecursionError:
        break

def deep(n, until):  # one argument more than probe: the same frames
    if n == 0:
        while time.monotonic() < until:
            pass
        return 0
    return deep(n - 1, until)

t = threading.Thread(target=lambda: (time.sleep(0.1), f(0)))
t.start()
deep(depth - 1, time.monotonic() + 0.5)  # cuInit while the main thread is at its limit
t.join()
cuda = _Cuda(3000, False)
cuda.launch(cuda.kernel("k"), cuda.stream(), 5)
print("finished")
os._exit(0)
"""
)


def test_cuinit_at_the_recursion_limit_neither_fails_the_program_nor_loses_its_capture(
    tmp_path,
):
    """cuInit while the main thread was at its recursion limit: compiling the
    injection's Python code raised RecursionError into the program (3.11), or
    failed on every try until the program had ended (3.13, 3.14). The wrapper
    is installed in C now: no code is compiled, nothing Python runs."""
    r = skip_run(tmp_path, "--", sys.executable, "-c", _AT_RECURSION_LIMIT)
    assert r.returncode == 0, r.stderr
    assert "finished" in r.stdout and "Error" not in r.stderr
    (p,) = runfolder.read_run(tmp_path)["processes"]
    assert p["status"] == "complete" and p["launches"] == 5


_THREAD_EXIT = """
import os, threading, time
from skipnative.testing.launcher import _Cuda
cuda = _Cuda(3000, False)
cuda.launch(cuda.kernel("k"), cuda.stream(), 50)
threading.Thread(target=os._exit, args=(3,), daemon=True).start()
time.sleep(0.01)  # the capture is being written by now: the program must not end meanwhile
print("the main thread went on past another thread's os._exit")
"""


def test_os_exit_from_a_thread_still_ends_the_process_at_once_with_its_status(tmp_path):
    """The wrapper let every other thread run while the capture was written: the
    main thread went on, and the process exited 0 instead of the 3 given."""
    r = skip_run(tmp_path, "--", sys.executable, "-c", _THREAD_EXIT)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "went on" not in r.stdout
    (p,) = runfolder.read_run(tmp_path)["processes"]
    assert p["status"] == "complete" and p["launches"] == 50


_EXIT_MISUSED = """
import os, pickle
from skipnative.testing.launcher import _Cuda
cuda = _Cuda(3000, False)
cuda.launch(cuda.kernel("k"), cuda.stream(), 5)
for bad in ("not a status", 2**80):
    try:
        os._exit(bad)
    except (TypeError, OverflowError):
        pass
assert pickle.loads(pickle.dumps(os._exit)) is os._exit
cuda.launch(cuda.kernel("after"), cuda.stream(), 7)
os._exit(status=0)
"""


def test_a_bad_os_exit_argument_is_refused_and_the_capture_goes_on(tmp_path):
    """os._exit("x") ended the capture before it raised TypeError: the
    launches after it were lost."""
    r = skip_run(tmp_path, "--", sys.executable, "-c", _EXIT_MISUSED)
    assert r.returncode == 0, r.stderr
    (p,) = runfolder.read_run(tmp_path)["processes"]
    assert p["status"] == "complete" and p["launches"] == 12


_OWN_EXIT_WRAPPER = """
import os, sys
from skipnative.testing.launcher import _Cuda
original = os._exit

def saving_exit(status):  # as a coverage tool's patch of os._exit: save, then exit
    with open(sys.argv[1], "w") as f:
        f.write(f"saved {status}")
    original(status)

os._exit = saving_exit
cuda = _Cuda(3000, False)
cuda.launch(cuda.kernel("k"), cuda.stream(), 5)
os._exit(4)
"""


def test_a_programs_own_os_exit_wrapper_still_runs(tmp_path):
    """The injection replaced os._exit without a look at what was there: a
    program's (or a coverage tool's) own wrapper never ran."""
    saved = tmp_path / "saved.txt"
    r = skip_run(tmp_path / "run", "--", sys.executable, "-c", _OWN_EXIT_WRAPPER, str(saved))
    assert r.returncode == 4, r.stderr
    assert saved.read_text() == "saved 4"
    (p,) = runfolder.read_run(tmp_path / "run")["processes"]
    assert p["status"] == "complete" and p["launches"] == 5


def test_os_exit_keeps_its_signature():
    """inspect.signature(os._exit) raised ValueError (no text signature)."""
    script = (
        "import inspect, os\n"
        "from skipnative.testing.launcher import _Cuda\n"
        "_Cuda(3000, False)\n"
        "for _ in range(3): pass\n"
        "assert type(os._exit).__name__ == 'builtin_function_or_method'\n"
        "assert 'ends its capture' in os._exit.__doc__, os._exit.__doc__\n"
        "print(inspect.signature(os._exit))\n"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        r = skip_run(Path(d), "--", sys.executable, "-c", script)
    assert r.returncode == 0, r.stderr
    assert "(status)" in r.stdout
