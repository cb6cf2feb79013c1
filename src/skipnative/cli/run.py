"""`skip run -- CMD`: capture an unmodified program and every CUDA process it starts."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time

from skipnative.cli._common import (
    HOOK_JOIN,
    HOOK_JOIN_HELP,
    LAUNCH_RECORDS,
    LAUNCH_RECORDS_HELP,
    UsageError,
    UserError,
    check_launch_records,
    number,
    out_path,
    with_launch_hooks,
)
from skipnative.cli._run_folder import prepare, warn
from skipnative.io import runfolder

_EPILOG = """\
Every process of CMD that initialises CUDA is captured from its cuInit
(CUDA_INJECTION64_PATH), and writes its own .skip into --out, named by RANK
(or LOCAL_RANK) where the environment gives one, else by pid, plus run.json.
CMD runs in its own process group; SIGINT and SIGTERM (and SIGHUP, unless
skip run started ignoring it, as under nohup) sent to skip run first end every
capture (the files are complete whatever CMD then does with the signal; skip
run waits while a process is still writing its file, and a second signal
meanwhile is passed on at once, losing what is unwritten), then are passed on
to CMD's process group; CMD starts with SIGINT and SIGTERM at their default
action, even where skip run inherited them ignored (as a background job of a
script does SIGINT). A process killed with SIGKILL loses only its own file
(run.json says so). After CMD exits, skip run waits up to --wait-children
seconds for every process left in CMD's process group.

One skip run writes into a folder at a time. Where an earlier one ended before
it finished its folder (killed, its terminal closed), the next one into that
folder first turns the earlier run's captures into files and a run.json
marked "unfinished".

--on-demand records nothing until `skip trigger [--duration S] [OUT]` opens a
window in every process; SIGUSR1 sent to skip run opens one of
--trigger-duration seconds. Each window is a region ("window N") of the
process's capture.

--launch-records hook puts libskipnative_hooks.so first in CMD's LD_PRELOAD
(beside CUDA_INJECTION64_PATH), so every process CMD starts has the hooks
before it loads CUDA; each file's metadata (launch_source) says which source
recorded its launches.

skip run records launches, kernels, copies, syncs and their metrics, not ATen
operators or NVTX ranges: use skipnative.profile() in the program for those.

Exit status: CMD's own where it failed (128 + N where signal N ended it), as a
shell gives it; else 1 where skip run could not capture (no process
initialised CUDA, a capture failed), 0 where no window opened (said as "no
window"); 2 for a command line it refuses.
"""


# Seconds (--delay, --duration, --trigger-duration, --wait-children): up to about
# 116 days, so that every time computed from them fits the int64 ns of the
# trigger file and the captured processes' window.
_SECONDS = number(float, 0, 1e7)


def _size(lo: int):
    """A capture option's count or byte size: from the least skipnative.capture()
    takes (csrc/bindings/register_session.cpp: activity_buffer_bytes >= 4096,
    max_activity_buffers >= 1, the other sizes >= 0, as size_t) up to 1e18, within
    the 19 digits the captured processes read (csrc/cupti/metadata.cpp)."""
    return number(int, lo, 10**18)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="capture an unmodified program and every CUDA process it starts",
        description=__doc__,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--out", type=out_path, default="skip-run", help="run folder (default ./skip-run)"
    )
    p.add_argument("--force", action="store_true", help="reuse a run folder that holds a run")
    p.add_argument(
        "--delay", type=_SECONDS, default=0.0, metavar="S", help="start capturing S s in"
    )
    p.add_argument(
        "--duration", type=_SECONDS, default=0.0, metavar="S", help="capture S s (0: all)"
    )
    p.add_argument("--on-demand", action="store_true", help="record only in triggered windows")
    p.add_argument(
        "--trigger-duration",
        type=_SECONDS,
        default=None,
        metavar="S",
        help="window length opened by SIGUSR1 (default 2 s; 0: until skip trigger --stop)",
    )
    p.add_argument(
        "--wait-children",
        type=_SECONDS,
        default=30.0,
        metavar="S",
        help="after CMD exits, wait up to S s for the processes left in its process group",
    )
    c = p.add_argument_group("capture options (as skipnative.capture())")
    c.add_argument(
        "--clock", default="auto", choices=["auto", "tsc", "cntvct", "monotonic_raw", "library"]
    )
    c.add_argument("--latency-timestamps", action="store_true", help="CUPTI queued/submitted times")
    c.add_argument("--no-memcpy", action="store_true")
    c.add_argument("--no-memset", action="store_true")
    c.add_argument(
        "--launch-records", choices=LAUNCH_RECORDS, default="callbacks", help=LAUNCH_RECORDS_HELP
    )
    c.add_argument("--hook-join", choices=HOOK_JOIN, default="external", help=HOOK_JOIN_HELP)
    c.add_argument("--activity-buffer-bytes", type=number(int, 4096, 1 << 30), default=4 << 20)
    c.add_argument("--max-activity-buffers", type=_size(1), default=64)
    c.add_argument("--max-launch-bytes", type=_size(0), default=512 << 20)
    c.add_argument("--max-gpu-records", type=_size(0), default=64 << 20)
    c.add_argument("--device-buffer-bytes", type=_size(0), default=0)
    c.add_argument("--hw-trace", action="store_true", help="Blackwell hardware event timestamps")
    c.add_argument(
        "--stream-waits",
        action="store_true",
        help="which event record each cudaStreamWaitEvent waits on (for skip whatif)",
    )
    c.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]")
    p.set_defaults(run=run)


def _options(args) -> dict[str, object]:
    from skipnative.capturing.loader import wheel_cupti_dirs

    check_launch_records(args)
    return {
        "clock": args.clock,
        "latency_timestamps": args.latency_timestamps,
        "memcpy": not args.no_memcpy,
        "memset": not args.no_memset,
        "launch_records": args.launch_records,
        "hook_join": args.hook_join,
        "activity_buffer_bytes": args.activity_buffer_bytes,
        "max_activity_buffers": args.max_activity_buffers,
        "max_launch_bytes": args.max_launch_bytes,
        "max_gpu_records": args.max_gpu_records,
        "device_buffer_bytes": args.device_buffer_bytes,
        "hw_trace": args.hw_trace,
        "stream_waits": args.stream_waits,
        "wheel_dirs": ":".join(wheel_cupti_dirs()),
    }


def _encode(options: dict[str, object]) -> str:
    def v(x: object) -> str:
        return str(int(x)) if isinstance(x, bool) else str(x)

    for k, x in options.items():
        if ";" in v(x):
            raise UsageError(f"{k}: a ';' cannot be passed to the captured processes")
    return ";".join(f"{k}={v(x)}" for k, x in options.items())


def _command(cmd: list[str]) -> list[str]:
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise UsageError("no command given: skip run [options] -- CMD [ARGS...]")
    exe = cmd[0]
    if os.sep in exe:
        if not os.path.exists(exe):
            raise UserError(f"{exe}: no such file")
        if not os.path.isfile(exe):
            raise UserError(f"{exe}: not a file")
        if not os.access(exe, os.X_OK):
            raise UserError(f"{exe}: not executable (no execute permission)")
    elif shutil.which(exe) is None:
        raise UserError(f"{exe}: command not found")
    return cmd


def _injection_library() -> str:
    from skipnative.capturing.session import native_library

    return native_library("libskipnative_inject.so")


def _window(args) -> tuple[str, str]:
    if args.trigger_duration is not None and not args.on_demand:
        raise UsageError("--trigger-duration is the length of an --on-demand run's SIGUSR1 window")
    if args.on_demand:
        if args.delay or args.duration:
            raise UsageError("--on-demand windows come from skip trigger; drop --delay/--duration")
        return "on-demand", "on-demand"
    if not args.delay and not args.duration:
        return "whole", "whole"
    t_open = time.time_ns() + int(args.delay * 1e9)
    t_close = t_open + int(args.duration * 1e9) if args.duration else 0
    return "scheduled", f"at {t_open} {t_close}"


def _end_captures(out: str, timeout_s: float = 10.0) -> None:
    """Asks every process to end its capture and waits until each has: up to
    `timeout_s` for them to start, then for as long as one is still writing its
    file (a big capture, a loaded machine). The signal passed on after this may
    end a process past its exit handlers (Python re-raises an uncaught
    KeyboardInterrupt as SIGINT), so a capture cut short here would be lost."""
    seq = runfolder.request(out, "end")
    deadline = time.monotonic() + timeout_s
    while runfolder.acknowledged(out, "end", seq)[1]:
        if time.monotonic() >= deadline and not runfolder.ending(out):
            return
        time.sleep(0.01)


_FORWARDED = (signal.SIGINT, signal.SIGTERM)


def _child_setup(mask: set[signal.Signals]) -> None:
    """In CMD before exec: its own process group, and the signals skip run passes
    on at their default action. skip run acts on them whatever it inherited, so
    CMD must too: an ignored signal stays ignored across exec (a background job
    of a non-interactive shell starts with SIGINT ignored), and CMD would then
    never see the signal skip run passes on, running on with its captures ended.
    SIGHUP keeps what skip run inherited: under nohup, CMD ignores it too. The
    signal mask is skip run's from before it blocked the signals it handles while
    CMD starts (a blocked signal stays blocked across exec)."""
    os.setpgrp()
    for s in _FORWARDED:
        signal.signal(s, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _launch(cmd: list[str], env: dict[str, str], args, out: str, info: dict) -> tuple[int, dict]:
    """Runs CMD in its own process group, passing SIGINT/SIGTERM (and SIGHUP,
    unless skip run was started ignoring it) on; waits for CMD and the processes
    it started, then finishes the run folder; returns (exit code, run.json)."""
    forwarded: list[int] = []
    finishing = False
    handled = list(_FORWARDED)
    if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN:  # not under nohup
        handled.append(signal.SIGHUP)
    # Blocked from before CMD starts until the handlers are in place: one arriving
    # in between took its default action (SIGINT: a KeyboardInterrupt) and ended
    # skip run alone, CMD running on in its own process group with no run.json
    # to come (SIGUSR1 too, which ends a process by default). Now it waits, and
    # is handled as any later one.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [*handled, signal.SIGUSR1])
    try:
        try:
            child = subprocess.Popen(
                cmd, env=env, start_new_session=False, preexec_fn=lambda: _child_setup(mask)
            )
        except OSError as e:
            raise UserError(f"{cmd[0]}: cannot start: {e.strerror or e}") from None
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise

    # The handlers run inside child.wait(): an exception out of one would end
    # skip run there, leaving CMD running and run.json unwritten. Each says what
    # failed in a line and lets skip run go on. Once every process has ended, a
    # signal waits for the folder to be finished: ending skip run then would
    # leave the captures in the control folder, unlisted.
    def forward(sig, _frame) -> None:
        if finishing:
            return
        first = not forwarded
        forwarded.append(sig)
        if first:  # first end every capture, whatever CMD does with the signal;
            try:  # a second signal meanwhile is passed on at once
                _end_captures(out)
            except Exception as e:
                warn(f"{signal.Signals(sig).name}: could not end the captures first ({e})")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, sig)

    def trigger(_sig, _frame) -> None:
        if not args.on_demand:
            return
        try:
            runfolder.request(
                out, "open", 2.0 if args.trigger_duration is None else args.trigger_duration
            )
        except Exception as e:
            warn(f"SIGUSR1: no window opened ({e})")

    old = {s: signal.signal(s, forward) for s in handled}
    old[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, trigger)
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # one that came meanwhile: handled now
        code = child.wait()
        left = runfolder.wait_for_processes(out, args.wait_children, pgid=child.pid)
        finishing = True
        code = 128 - code if code < 0 else code
        info.update(
            t_end_unix_ns=time.time_ns(),
            exit_code=code,
            signal=signal.Signals(forwarded[0]).name if forwarded else None,
        )
        if left:
            info["still_running"] = left
        return code, runfolder.finish(out, info)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run(args) -> int:
    cmd = _command(args.cmd)
    mode, window = _window(args)
    options = _options(args)
    lib = _injection_library()
    current = os.environ.get("CUDA_INJECTION64_PATH")
    if current and os.path.realpath(current) != os.path.realpath(lib):
        raise UserError(f"CUDA_INJECTION64_PATH is already set ({current}): another profiler?")
    env = with_launch_hooks(os.environ) if args.launch_records == "hook" else dict(os.environ)
    out = os.path.abspath(args.out)
    info = {
        "command": cmd,
        "cwd": os.getcwd(),
        "mode": mode,
        "delay_s": args.delay,
        "duration_s": args.duration,
        "options": {k: v for k, v in options.items() if k != "wheel_dirs"},
        "t_start_unix_ns": time.time_ns(),
    }
    lock = prepare(out, args.force, info)
    try:
        env.update(
            CUDA_INJECTION64_PATH=lib,
            SKIPNATIVE_RUN_DIR=runfolder.control_dir(out),
            SKIPNATIVE_RUN_OPTIONS=_encode(options),
            SKIPNATIVE_RUN_WINDOW=window,
        )
        code, result = _launch(cmd, env, args, out, info)
    finally:
        os.close(lock)
    return _report(out, result, code, args.wait_children)


def _report(out: str, run: dict, code: int, waited_s: float) -> int:
    """The files written on stdout, then the problems on stderr: the last line
    of the two says what went wrong, where anything did. A reader of stdout that
    has gone (`skip run ... | head`) changes neither the problems said nor the
    exit status."""
    from skipnative.trace import loss_warning

    procs = run["processes"]
    errors, warnings, lines = [], [], []
    for p in procs:
        who = f"pid {p['pid']}" + (f" (rank {p['rank']})" if p.get("rank") is not None else "")
        if p.get("file"):
            lines.append(
                f"{os.path.join(out, p['file'])}: {who}, {p['launches']} launches, "
                f"{p['kernels']} kernels, {p['windows']} window(s), {p['status']}"
            )
        if p.get("dropped"):
            warnings.append(f"{p.get('file') or who}: {loss_warning(p['dropped'])}")
        if p.get("error"):
            errors.append(f"{who}: {p['error']}")
        elif not p.get("file"):
            lines.append(f"{who}: {p['status']}, nothing recorded")
    if run.get("still_running"):
        left = run["still_running"]
        warnings.append(
            f"{len(left)} process(es) of the command still running after --wait-children "
            f"{waited_s:g} s (pid {', '.join(map(str, left[:5]))}"
            f"{', ...' if len(left) > 5 else ''}): not waited for, not in this run"
        )
    if not procs:
        errors.append(
            f"no process of the command initialised CUDA, so nothing was captured "
            f"({_no_gpu_reason()})"
        )
    lines.append(
        f"{os.path.join(out, runfolder.RUN_JSON)}: {len(procs)} process(es), "
        f"{len(run['files'])} file(s)"
    )
    try:
        print("\n".join(lines), flush=True)
    except BrokenPipeError:  # no reader: the rest goes nowhere, quietly
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    for w in warnings:
        print(f"skip: warning: {w}", file=sys.stderr)
    for e in errors:
        print(f"skip: error: {e}", file=sys.stderr)
    if code != 0:
        return code
    return 1 if errors else 0


def _no_gpu_reason() -> str:
    from skipnative.capturing.loader import native

    mod, why = native()
    if mod is None:
        return why
    ok, why, count = mod.probe_driver()
    return f"{count} CUDA device(s) here" if ok else f"here: {why}"
