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
     "processes": [{"pid", "ppid", "argv", "rank", "local_rank", "world_size",
                    "status": "complete" | "incomplete" | "lost" | "no window" | "error",
                    "file", "windows", "launches", "kernels", "devices", "error"}]}

A process killed before its dump was written (SIGKILL) loses only its own
file: it is listed with status "lost" (or "incomplete" when earlier on-demand
windows were saved) and an error saying so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from typing import Any

from skipnative.errors import TraceError
from skipnative.io.atomic import atomic_output

RUN_FORMAT = "skipnative-run"
RUN_VERSION = 1
CONTROL = ".skiprun"
RUN_JSON = "run.json"
_IDENTITY: tuple[str, ...] = ("pid", "ppid", "argv", "exe", "rank", "local_rank", "world_size")
_IDENTITY += ("cuda_visible_devices", "t_init_unix_ns")
_LOST = "the process ended without writing its capture (killed, e.g. by SIGKILL)"
_CUT = "the process ended while writing its capture (a second signal, or killed)"


def control_dir(run_dir: str) -> str:
    return os.path.join(run_dir, CONTROL)


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise TraceError(path, f"unreadable ({e})") from None


def _pids(control: str, suffix: str) -> list[int]:
    try:
        names = os.listdir(control)
    except FileNotFoundError:
        return []
    return sorted(
        int(n[: -len(suffix)]) for n in names if re.fullmatch(r"\d+" + re.escape(suffix), n)
    )


def processes(run_dir: str) -> dict[int, dict[str, Any]]:
    """The processes that have initialised CUDA so far, by pid: identity and state."""
    control = control_dir(run_dir)
    out = {}
    for pid in _pids(control, ".json"):
        ident = _read_json(os.path.join(control, f"{pid}.json")) or {}
        state = _read_json(os.path.join(control, f"{pid}.state")) or {}
        out[pid] = {**ident, "pid": pid, "state": state}
    return out


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
    try:
        with open(os.path.join(control, "trigger"), encoding="utf-8") as f:
            return [line.split() for line in f if line.endswith("\n")]
    except FileNotFoundError:
        return []


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

    control, pid, st = control_dir(run_dir), p["pid"], p["state"]
    dumps = sorted(n for n in os.listdir(control) if re.fullmatch(rf"{pid}\.\d+\.dump", n))
    windows = int(st.get("windows", 0) or 0)
    entry = {k: p.get(k) for k in _IDENTITY}
    entry.update(file=None, windows=len(dumps), launches=0, kernels=0, devices=[], error=None)
    if st.get("error"):
        entry["error"] = st["error"]
    if dumps:
        trace = process_trace([read_dump(os.path.join(control, n)) for n in dumps], regions=regions)
        name = _skip_name(p, taken)
        entry["file"] = name
        trace.meta["run"] = {"pid": pid, "rank": p.get("rank"), "argv": p.get("argv")}
        trace.save(os.path.join(run_dir, name), overwrite=True)
        entry.update(
            launches=len(trace.launches),
            kernels=int((trace.gpu["kind"] == 0).sum()),
            devices=trace.meta.get("devices", []),
        )
    exited = st.get("state") in ("exited", "ended")
    if st.get("state") == "error" or (entry["error"] and not dumps):
        entry["status"] = "error"
    elif not exited:
        entry["status"] = "incomplete" if dumps else "lost"
        entry["error"] = entry["error"] or _unfinished(pid, st)
    elif windows > len(dumps):
        entry["status"] = "incomplete"
    else:
        entry["status"] = "complete" if dumps else "no window"
    return entry


def _unfinished(pid: int, st: dict[str, Any]) -> str:
    if alive(pid):
        return "still running when skip run finished"
    return _CUT if st.get("state") == "ending" else _LOST


def wait_for_processes(run_dir: str, timeout_s: float) -> None:
    """Waits until no captured process is alive (they write their dumps at exit)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(alive(pid) for pid in processes(run_dir)):
            return
        time.sleep(0.02)


def finish(run_dir: str, info: dict[str, Any]) -> dict[str, Any]:
    """Converts every process's dumps into its .skip, writes run.json, removes the
    control folder (kept when a dump could not be converted) and returns run.json."""
    regions = info.get("mode") == "on-demand"
    taken: set[str] = set()
    procs, problems = [], []
    for pid, p in sorted(processes(run_dir).items(), key=lambda kv: _order(kv[1])):
        try:
            procs.append(_convert(run_dir, p, regions, taken))
        except TraceError as e:
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
    run = {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        **info,
        "triggers": [
            {"op": t[0], "seq": int(t[1]), "t_unix_ns": int(t[2]), "duration_s": int(t[3]) / 1e9}
            for t in _triggers(control_dir(run_dir))
            if len(t) == 4
        ],
        "files": [p["file"] for p in procs if p.get("file")],
        "processes": procs,
    }
    with atomic_output(os.path.join(run_dir, RUN_JSON), overwrite=True) as f:
        f.write(json.dumps(run, indent=1).encode())
    if not problems:
        shutil.rmtree(control_dir(run_dir), ignore_errors=True)
    return run


def _order(p: dict[str, Any]) -> tuple:
    rank = p.get("rank")
    return (0, int(rank)) if isinstance(rank, str) and rank.isdigit() else (1, p["pid"])


def read_run(path: str) -> dict[str, Any]:
    """run.json of a run folder (or the file itself), checked to be one."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, RUN_JSON)
    run = _read_json(path)
    if run is None:
        raise TraceError(path, "no such file")
    if not isinstance(run, dict) or run.get("format") != RUN_FORMAT:
        raise TraceError(path, "not a skip run folder's run.json")
    if run.get("version") != RUN_VERSION:
        raise TraceError(path, f"run.json version {run.get('version')} is not supported")
    if not isinstance(run.get("processes"), list):
        raise TraceError(path, "run.json has no process list")
    return run
