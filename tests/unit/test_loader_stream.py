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


@pytest.mark.parametrize("inflater", ["zlib", "isal"])
def test_every_gzip_member_is_read(inflater, monkeypatch, tmp_path):
    # one new member was read per pass: of 3 or more in a chunk, the third on were
    # lost (a valid file refused as truncated JSON, or data after the trace unseen)
    import gzip
    import random
    import zlib

    from skipnative.io import kineto_stream

    mod = zlib if inflater == "zlib" else pytest.importorskip("isal.isal_zlib")
    monkeypatch.setattr(kineto_stream, "_inflate", mod)
    monkeypatch.setattr(kineto_stream, "_INFLATE_ERRORS", (zlib.error, mod.error))
    monkeypatch.setattr(kineto_stream, "CHUNK", 4096)
    rng = random.Random(7)
    data = bytes(rng.getrandbits(8) for _ in range(30_000)) + b"json " * 20_000
    n = len(data)
    layouts = [
        [0, n // 3, 2 * n // 3, n],  # three members
        [0, 0, 10, 10, 5000, n, n],  # empty members, first, between and last
        [*range(0, 3000, 7), n],  # hundreds of members in one chunk
        [0, 1, 4096, 4097, 8191, n],  # members ending at and around chunk ends
    ]
    p = tmp_path / "t.gz"
    for cuts in layouts:
        p.write_bytes(b"".join(gzip.compress(data[a:b]) for a, b in zip(cuts, cuts[1:])))
        assert b"".join(kineto_stream._open_chunks(str(p))) == data, cuts
    p.write_bytes(gzip.compress(data[:100]) + gzip.compress(b"") + gzip.compress(data[100:])[:-9])
    with pytest.raises(TraceError, match="truncated gzip"):
        b"".join(kineto_stream._open_chunks(str(p)))
    for junk in (b"garbage", b"\x1f", b"\x00" * 4096):
        p.write_bytes(gzip.compress(data[:10]) + gzip.compress(data[10:]) + junk)
        with pytest.raises(TraceError, match="corrupt gzip data"):
            b"".join(kineto_stream._open_chunks(str(p)))
    # a trace whose third member holds data after it: refused, not ignored
    doc = b'{"traceEvents": []}'
    p.write_bytes(gzip.compress(doc[:5]) + gzip.compress(doc[5:]) + gzip.compress(b'{"x":1}'))
    with pytest.raises(TraceError, match="trailing data after the trace"):
        skipnative.load(p)
