"""Input that never ends, and files that are no regular files, are refused at
once: never a hang."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import threading

import pytest

import skipnative
from skipnative import TraceError
from skipnative.io.kineto_stream import _feed_pipelined


def run_skip(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "skipnative", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,  # a hang fails the test instead of blocking the run
    )


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_endless_zeros_are_invalid_json_at_byte_0():
    r = run_skip("analyze", "/dev/zero", timeout=30)
    lines = r.stderr.strip().splitlines()
    assert r.returncode not in (0, 70) and len(lines) == 1, r.stderr
    assert lines[0].startswith("skip: error: /dev/zero: ") and "invalid JSON at byte 0" in lines[0]


def test_a_failed_parse_stops_an_endless_producer():
    class Refuses:
        def feed(self, chunk):
            raise ValueError("refused")

    consumed = itertools.count()
    endless = (b"x" for _ in consumed)
    out: list = []

    def go():
        try:
            _feed_pipelined(Refuses(), endless)
        except ValueError as e:
            out.append(e)

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "the producer was drained for ever"
    assert out and str(out[0]) == "refused"
    assert next(consumed) < 100  # the producer stopped soon after, not at some limit


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_fifo_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "t.json"
    os.mkfifo(fifo)
    r = run_skip("analyze", str(fifo), timeout=30)  # opening it would wait for a writer
    lines = r.stderr.strip().splitlines()
    assert r.returncode not in (0, 70) and len(lines) == 1, r.stderr
    assert lines[0] == f"skip: error: {fifo}: is a FIFO (named pipe), not a trace file"
    from skipnative.io.kineto import load_kineto
    from skipnative.io.skipfile import load as load_skip

    for load in (load_kineto, load_skip):  # the readers' own entry points too
        with pytest.raises(TraceError, match="FIFO"):
            load(str(fifo))


def test_a_socket_is_refused(tmp_path):
    path = tmp_path / "s.json"
    if len(str(path)) > 100:
        pytest.skip("socket path too long")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(path))
        with pytest.raises(TraceError) as e:
            skipnative.load(path)
        assert str(e.value) == f"{path}: is a socket, not a trace file"
    finally:
        s.close()
