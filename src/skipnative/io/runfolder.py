"""The run folder of ``skip run``: one .skip per captured process and ``run.json``.

While the command runs, the processes it starts write into the folder's
control folder (``.skiprun/``, see csrc/cupti/injection.cpp): ``PID.json``
(who the process is, at cuInit), ``PID.state`` (what it is doing: "ending"
while it closes its capture on an "end" request) and one raw
dump per capture window, ``PID.W.dump``. ``skip trigger`` appends requests to
``.skiprun/trigger``. After the command has exited, :func:`finish` turns the
dumps of each process into ``rank<R>.skip`` (or ``pid<P>.skip``) and writes
``run.json``, which is self-describing:

    {"format": "skipnative-run", "version": 1, "command": [...], "cwd": ...,
     "mode": "whole" | "scheduled" | "on-demand", "delay_s", "duration_s",
     "options": {capture options}, "t_start_unix_ns", "t_end_unix_ns",
     "exit_code", "signal", "triggers": [...], "files": ["rank0.skip", ...],
     "still_running": [pids, where any were left after the wait],
     "unfinished": "why", only where a later skip run finished the folder,
     "processes": [{"pid", "ppid", "argv", "rank", "local_rank", "world_size",
                    "status": "complete" | "incomplete" | "lost" | "no window" | "error",
                    "file", "windows", "launches", "kernels", "devices", "dropped", "error"}]}

A process killed before its dump was written (SIGKILL) loses only its own
file: it is listed with status "lost" (or "incomplete" when earlier on-demand
windows were saved) and an error saying so. A process whose control files
cannot be read, or hold what no process writes, is listed with status "error"
and an error naming the file (its dumps are still converted); a trigger file
that cannot be read leaves "triggers" empty and says why in "trigger_error".
Either way run.json is written, and the control folder kept.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from typing import Any

from skipnative.errors import TraceError
from skipnative.io.atomic import atomic_output, read_regular
from skipnative.io.folder import MAX_RUN_JSON, RUN_FORMAT, RUN_VERSION, run_problem
from skipnative.io.safe_json import loads
from skipnative.trace import losses

CONTROL = ".skiprun"
RUN_JSON = "run.json"
_IDENTITY: tuple[str, ...] = ("pid", "ppid", "argv", "exe", "rank", "local_rank", "world_size")
_IDENTITY += ("cuda_visible_devices", "t_init_unix_ns")
_LOST = "the process ended without writing its capture (killed, e.g. by SIGKILL)"
_CUT = "the process ended while writing its capture (a second signal, or killed)"


def control_dir(run_dir: str) -> str:
    return os.path.join(run_dir, CONTROL)


_MAX_CONTROL_BYTES = 1 << 20  # a process's identity or state: a few hundred bytes


def _read_bytes(path: str, limit: int | None = None) -> bytes | None:
    """The file's bytes, None if it does not exist, or TraceError: a file that is
    not a regular one (a FIFO would block the open), too long, or unreadable."""
    try:
        return read_regular(path, limit)
    except TraceError as e:
        raise TraceError(path, f"unreadable ({e.problem})") from None


def _read_json(path: str, limit: int | None = None) -> Any:
    data = _read_bytes(path, limit)
    return None if data is None else loads(data, path, "unreadable")


def _pids(control: str, suffix: str) -> list[int]:
    try:
        names = os.listdir(control)
    except FileNotFoundError:
        return []
    return sorted(
        int(n[: -len(suffix)]) for n in names if re.fullmatch(r"\d+" + re.escape(suffix), n)
    )


def processes(run_dir: str) -> dict[int, dict[str, Any]]:
    """The processes that have initialised CUDA so far, by pid: identity and state.
    A control file that cannot be read, or holds what no process writes, is named
    in the process's "problem" (its identity or state then taken as empty): this
    never raises, so that `skip run` always gets to write run.json."""
    control = control_dir(run_dir)
    out = {}
    for pid in _pids(control, ".json"):
        problems: list[str] = []
        ident = _control_file(os.path.join(control, f"{pid}.json"), _check_identity, problems)
        state = _control_file(os.path.join(control, f"{pid}.state"), _check_state, problems)
        out[pid] = {**ident, "pid": pid, "state": state}
        if problems:
            out[pid]["problem"] = "; ".join(problems)
    return out


def _control_file(path: str, check, problems: list[str]) -> dict[str, Any]:
    try:
        doc = _read_json(path, _MAX_CONTROL_BYTES)
        if doc is None:
            return {}
        why = check(doc)
    except TraceError as e:
        why = e.problem
    if why:
        problems.append(f"{path}: {why}")
        return {}
    return doc


def _check_identity(doc: Any) -> str | None:
    return None if isinstance(doc, dict) else f"not a JSON object ({type(doc).__name__})"


def _check_state(doc: Any) -> str | None:
    """Why the state file is not one a process writes (None: it is)."""
    if not isinstance(doc, dict):
        return f"not a JSON object ({type(doc).__name__})"
    for k in ("state", "error"):
        if doc.get(k) is not None and not isinstance(doc[k], str):
            return f"{k!r} is not text: {doc[k]!r:.40}"
    for k in ("seq", "last_seq", "windows"):
        v = doc.get(k)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
            return f"{k!r} is not a count: {v!r:.40}"
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited: its status is all that is left of it
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def running_pid(run_dir: str) -> int | None:
    """The pid of the `skip run` writing into `run_dir`, if it is still running."""
    try:
        with open(os.path.join(control_dir(run_dir), "run.pid")) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if alive(pid) else None


def _triggers(control: str) -> list[list[str]]:
    """The lines of the trigger file (each a request's fields), or TraceError."""
    path = os.path.join(control, "trigger")
    data = _read_bytes(path)
    try:
        text = (data or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise TraceError(path, "unreadable (not UTF-8)") from None
    return [line.split() for line in text.splitlines(keepends=True) if line.endswith("\n")]


def _requests(lines: list[list[str]]) -> list[dict[str, Any]]:
    """The trigger file's requests (a malformed line is none: no process acts on it)."""
    out = []
    for t in lines:
        if len(t) == 4 and t[0] in ("open", "stop", "end"):
            try:
                seq, t_ns, dur = int(t[1]), int(t[2]), int(t[3])
            except ValueError:
                continue
            out.append({"op": t[0], "seq": seq, "t_unix_ns": t_ns, "duration_s": dur / 1e9})
    return out


def request(run_dir: str, op: str, duration_s: float = 0.0) -> int:
    """Appends an "open" (a window of `duration_s`; 0: until a stop), "stop" or
    "end" (every capture ends now) request to the trigger file and returns its
    sequence number."""
    control = control_dir(run_dir)
    seq = len(_triggers(control)) + 1
    line = f"{op} {seq} {time.time_ns()} {int(duration_s * 1e9)}\n"
    fd = os.open(os.path.join(control, "trigger"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one write: a reader never sees half a line
    finally:
        os.close(fd)
    return seq


def acknowledged(run_dir: str, op: str, seq: int) -> tuple[list[int], list[int]]:
    """(pids that have acted on request `seq`, live pids that have not yet). A
    process acts on "open" by opening the window (or by having it over already,
    or by having failed or exited), on "stop" by having no window open."""
    done, waiting = [], []
    for pid, p in processes(run_dir).items():
        st = p["state"]
        state = st.get("state")
        if op == "end":
            ok = state in ("ended", "exited", "error")
        elif op == "open":
            ok = (state == "open" and st.get("seq", 0) >= seq) or st.get("last_seq", 0) >= seq
            ok = ok or state in ("error", "exited")
        else:
            ok = state != "open" or st.get("seq", 0) > seq
        if ok:
            done.append(pid)
        elif alive(pid):
            waiting.append(pid)
    return done, waiting


def ending(run_dir: str) -> list[int]:
    """Live pids acting on an "end" request: closing their capture and writing
    its dump (state "ending")."""
    return [
        pid
        for pid, p in processes(run_dir).items()
        if p["state"].get("state") == "ending" and alive(pid)
    ]


def _skip_name(p: dict[str, Any], taken: set[str]) -> str:
    for key, stem in (("rank", "rank"), ("local_rank", "local_rank")):
        v = p.get(key)
        if isinstance(v, str) and re.fullmatch(r"\d{1,6}", v):
            name = f"{stem}{int(v)}.skip"
            break
    else:
        name = f"pid{p['pid']}.skip"
    if name in taken:
        name = f"{name[:-5]}-pid{p['pid']}.skip"
    taken.add(name)
    return name


def _convert(run_dir: str, p: dict[str, Any], regions: bool, taken: set[str]) -> dict[str, Any]:
    from skipnative.io.rundump import process_trace, read_dump
    from skipnative.io.skipfile import trace_problem

    control, pid, st = control_dir(run_dir), p["pid"], p["state"]
    dumps = sorted(n for n in os.listdir(control) if re.fullmatch(rf"{pid}\.\d+\.dump", n))
    windows = int(st.get("windows", 0) or 0)
    entry = {k: p.get(k) for k in _IDENTITY}
    entry.update(file=None, windows=len(dumps), launches=0, kernels=0, devices=[], error=None)
    if p.get("problem"):
        entry["error"] = p["problem"]
    elif st.get("error"):
        entry["error"] = st["error"]
    if dumps:
        trace = process_trace([read_dump(os.path.join(control, n)) for n in dumps], regions=regions)
        name = _skip_name(p, taken)
        entry["file"] = name
        trace.meta["run"] = {"pid": pid, "rank": p.get("rank"), "argv": p.get("argv")}
        problem = trace_problem(trace)
        if problem:  # a file no reader would take: this process's error instead
            raise TraceError(dump_paths(run_dir, pid), f"corrupted skip run dump ({problem})")
        trace.save(os.path.join(run_dir, name), overwrite=True)
        entry.update(
            launches=len(trace.launches),
            kernels=int((trace.gpu["kind"] == 0).sum()),
            devices=trace.meta.get("devices", []),
            dropped=losses(trace.meta),
        )
    exited = st.get("state") in ("exited", "ended")
    if st.get("state") == "error" or (entry["error"] and not dumps) or p.get("problem"):
        entry["status"] = "error"
    elif not exited:
        entry["status"] = "incomplete" if dumps else "lost"
        entry["error"] = entry["error"] or _unfinished(pid, st)
    elif windows > len(dumps):
        entry["status"] = "incomplete"
    else:
        entry["status"] = "complete" if dumps else "no window"
    return entry


def dump_paths(run_dir: str, pid: int) -> str:
    """A process's dumps, as an error names them."""
    return os.path.join(control_dir(run_dir), f"{pid}.*.dump")


def _unfinished(pid: int, st: dict[str, Any]) -> str:
    if alive(pid):
        return "still running when skip run finished"
    return _CUT if st.get("state") == "ending" else _LOST


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid`, from /proc."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if len(fields) > 2 and fields[0] != "Z" and fields[2] == str(pgid):
            out.append(int(name))
    return out


def wait_for_processes(run_dir: str, timeout_s: float, pgid: int | None = None) -> list[int]:
    """Waits until no captured process is alive (they write their dumps at exit)
    and, with `pgid`, no process of that group either (one may initialise CUDA
    after the command itself has exited); returns those still alive at the end."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [pid for pid in processes(run_dir) if alive(pid)]
        if pgid is not None:
            left = sorted(set(left) | set(group_members(pgid)))
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


START_JSON = "start.json"  # in the control folder: what run.json needs but the exit status


def unfinished(run_dir: str) -> dict[str, Any] | None:
    """The start of an earlier `skip run` into `run_dir` that ended (killed, a
    closed terminal) before it turned its processes' dumps into files: its
    start.json (or, from a version without one, what is known), else None."""
    control = control_dir(run_dir)
    # a run removes the run.json of the one before when it starts, and writes its
    # own when it is done: one left there says the control folder is no run's
    # unfinished work (a finished run keeps it where a file could not be read)
    if os.path.exists(os.path.join(run_dir, RUN_JSON)) or not _pids(control, ".json"):
        return None
    if running_pid(run_dir) is not None:
        return None
    try:
        start = _read_json(os.path.join(control, START_JSON), _MAX_CONTROL_BYTES)
    except TraceError:
        start = None
    return start if isinstance(start, dict) else {"command": None}


# What a dump that its writer did not write (a header's meta missing a field or
# holding a value no process writes, nesting past the recursion limit) raises
# past read_dump's own checks, in the conversion: never the end of the run.
_DUMP_ERRORS = (
    TraceError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    OverflowError,
    RecursionError,
)


def finish(run_dir: str, info: dict[str, Any]) -> dict[str, Any]:
    """Converts every process's dumps into its .skip, writes run.json, removes the
    control folder (kept when a dump could not be converted) and returns run.json."""
    regions = info.get("mode") == "on-demand"
    taken: set[str] = set()
    procs, problems = [], []
    for pid, p in sorted(processes(run_dir).items(), key=lambda kv: _order(kv[1])):
        if p.get("problem"):
            problems.append(p["problem"])
        try:
            procs.append(_convert(run_dir, p, regions, taken))
        except _DUMP_ERRORS as e:  # one process's damaged dumps: the others are still written
            if not isinstance(e, TraceError):
                e = TraceError(
                    dump_paths(run_dir, pid),
                    f"corrupted skip run dump ({type(e).__name__}: {e})",
                )
            problems.append(str(e))
            procs.append(
                {
                    "pid": pid,
                    "argv": p.get("argv"),
                    "status": "error",
                    "error": str(e),
                    "file": None,
                }
            )
    try:
        triggers, trigger_error = _requests(_triggers(control_dir(run_dir))), None
    except TraceError as e:
        triggers, trigger_error = [], str(e)
        problems.append(trigger_error)
    run = {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        **info,
        "triggers": triggers,
        "files": [p["file"] for p in procs if p.get("file")],
        "processes": procs,
    }
    if trigger_error:
        run["trigger_error"] = trigger_error
    with atomic_output(os.path.join(run_dir, RUN_JSON), overwrite=True) as f:
        f.write(json.dumps(run, indent=1).encode())
    if not problems:
        shutil.rmtree(control_dir(run_dir), ignore_errors=True)
    return run


def _order(p: dict[str, Any]) -> tuple:
    rank = p.get("rank")
    if isinstance(rank, str) and re.fullmatch(r"[0-9]{1,9}", rank):
        return (0, int(rank))
    return (1, p["pid"])


def read_run(path: str) -> dict[str, Any]:
    """run.json of a run folder (or the file itself), checked to be one."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, RUN_JSON)
    run = _read_json(path, MAX_RUN_JSON)
    if run is None:
        raise TraceError(path, "no such file")
    if not isinstance(run, dict) or run.get("format") != RUN_FORMAT:
        raise TraceError(path, "not a skip run folder's run.json")
    problem = run_problem(run)  # as the folder commands read it
    if problem:
        raise TraceError(path, problem)
    if not isinstance(run.get("processes"), list):
        raise TraceError(path, "run.json has no process list")
    return run
