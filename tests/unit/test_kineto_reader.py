"""The streaming reader: chunking never changes the result; mutated input fails cleanly."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import skipnative
from skipnative import TraceError, _native
from skipnative.io.kineto import _to_trace, record_dtypes

DATA = Path(__file__).resolve().parents[1] / "data" / "kineto"
SMALL = gzip.decompress((DATA / "a100_alexnet_train.json.gz").read_bytes())


def read_in_chunks(data: bytes, cuts: list[int]):
    r = _native.KinetoReader()
    prev = 0
    for c in sorted(set(cuts)):
        r.feed(data[prev:c])
        prev = c
    r.feed(data[prev:])
    r.finish()
    return _to_trace("mem", r)


WHOLE = read_in_chunks(SMALL, [])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=0, max_value=len(SMALL)), max_size=30))
def test_chunk_boundaries_do_not_matter(cuts):
    t = read_in_chunks(SMALL, cuts)
    for name in ("launches", "gpu", "ops", "regions"):
        assert np.array_equal(getattr(t, name), getattr(WHOLE, name)), name
    assert t.strings == WHOLE.strings


def test_one_byte_chunks():
    t = read_in_chunks(SMALL, list(range(0, 60000)))
    assert np.array_equal(t.gpu, WHOLE.gpu) and np.array_equal(t.ops, WHOLE.ops)


def test_nesting_of_real_ops():
    t = skipnative.load(DATA / "a100_alexnet_train.json.gz")
    ops = t.ops
    assert (ops["depth"] == 0).sum() > 0
    child = ops[ops["parent"] >= 0]
    parent = ops[child["parent"]]
    assert (parent["t_begin"] <= child["t_begin"]).all()
    assert (child["t_end"] <= parent["t_end"]).all()
    assert (parent["depth"] + 1 == child["depth"]).all()
    assert (ops["depth"][ops["top"]] == 0).all()


@settings(max_examples=150, deadline=None)
@given(st.randoms(use_true_random=False))
def test_mutated_traces_load_or_fail_cleanly(rnd: random.Random):
    data = bytearray(SMALL[:20000] + b"]}")
    for _ in range(rnd.randint(1, 8)):
        op = rnd.random()
        i = rnd.randrange(len(data))
        if op < 0.4:
            data[i] = rnd.randrange(256)
        elif op < 0.7:
            del data[i : i + rnd.randint(1, 50)]
        else:
            data[i:i] = bytes(
                rnd.choice(b'{}[],:"\\0123456789.e-') for _ in range(rnd.randint(1, 5))
            )
    r = _native.KinetoReader()
    try:
        r.feed(bytes(data))
        r.finish()
    except _native.TraceReadError as e:
        assert "\n" not in str(e) and str(e)
        return
    _to_trace("mem", r)  # a mutation that stays valid JSON must still convert


def test_load_errors_are_trace_errors(tmp_path):
    p = tmp_path / "x.json"
    p.write_bytes(SMALL[:5000])
    try:
        skipnative.load(p)
    except TraceError as e:
        assert str(p) in str(e) and "truncated" in str(e)
    else:
        raise AssertionError("a truncated trace loaded")


def _doc(*events: str) -> bytes:
    return ('{"traceEvents": [' + ",".join(events) + "]}").encode()


def _read(data: bytes):
    r = _native.KinetoReader()
    r.feed(data)
    r.finish()
    return r


def test_huge_timestamp_is_an_error_not_a_wrap():
    # 2**128 / 1000: once read as 544 ns through an unbounded 128-bit multiply
    ev = (
        '{"ph": "X", "cat": "kernel", "name": "k",'
        ' "ts": 340282366920938463463374607431768212, "dur": 1}'
    )
    with pytest.raises(_native.TraceReadError, match=r"traceEvents\[1\].*'ts'.*64-bit nanoseconds"):
        _read(_doc('{"ph": "i"}', ev))


@pytest.mark.parametrize("num", ["0123", "-01", "00"])
def test_leading_zeros_are_refused(num):
    ev = '{"ph": "X", "cat": "cpu_op", "name": "x", "ts": ' + num + ', "dur": 1}'
    with pytest.raises(_native.TraceReadError, match="leading zero"):
        _read(_doc(ev))


@pytest.mark.parametrize("num", ["0123", "-01", "1.", "-", "1e", "1.5e+", ".5", "+1", "1.e3"])
@pytest.mark.parametrize("cut", [False, True])
def test_bad_numbers_in_values_no_metric_uses_are_refused(num, cut):
    """A number the reader skips (no metric uses "Input Dims") is checked as
    strictly as one it reads, also when a chunk ends inside it."""
    ev = (
        '{"ph": "X", "cat": "cpu_op", "name": "x", "ts": 1, "dur": 1,'
        ' "args": {"Input Dims": [[2, ' + num + "]]}}"
    )
    doc = _doc(ev)
    r = _native.KinetoReader()
    with pytest.raises(_native.TraceReadError, match=r"invalid JSON|bad number|leading zero"):
        at = doc.index(num.encode()) + 1 if cut else len(doc)
        r.feed(doc[:at])
        r.feed(doc[at:])
        r.finish()
    good = _read(_doc(ev.replace(num, "1.5e+3")))
    assert _to_trace("mem", good).ops["t_begin"][0] == 1000


def test_string_args_no_metric_uses_are_accepted():
    call = (
        '{"ph": "X", "cat": "cuda_runtime", "name": "hipMemcpyAsync", "pid": 1, "tid": 2,'
        ' "ts": 5, "dur": 1, "args": {"correlation": 3, "stream": "0x0", "bytes": "128"}}'
    )
    r = _read(_doc(call))
    launches = r.launches().view(record_dtypes()["launch"])
    assert len(launches) == 1 and launches[0]["correlation"] == 3


def test_string_stream_of_a_kernel_names_the_event_and_field():
    ev = '{"ph": "X", "cat": "kernel", "name": "k", "ts": 5, "dur": 1, "args": {"stream": "0x0"}}'
    with pytest.raises(_native.TraceReadError, match=r"traceEvents\[0\].*'args.stream' is not"):
        _read(_doc(ev))


def test_rocm_trace_reads():
    t = skipnative.load(DATA / "mi250_rocm_minitoy_train.json.gz")
    names = {t.strings[i] for i in t.launches["name_id"]}
    assert "hipLaunchKernel" in names and "hipMemcpyWithStream" in names
    assert len(t.gpu[t.gpu["kind"] == 0]) == 14
    # every kernel has its launch: joined by correlation within the process
    assert set(t.gpu["correlation"]) <= set(t.launches["correlation"])


def _nesting(ops: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int]]:
    """(parent, depth, top) of each (pid, tid, ts, dur) op by the reader's rule,
    written out plainly: per thread in start order (longer first, then row), an op
    is a child of the innermost open op that contains it."""
    order = sorted(range(len(ops)), key=lambda k: (ops[k][0], ops[k][1], ops[k][2], -ops[k][3], k))
    out: list[tuple[int, int, int]] = [(-1, 0, k) for k in range(len(ops))]
    stack: list[int] = []
    thread = None
    for k in order:
        pid, tid, ts, dur = ops[k]
        if (pid, tid) != thread:
            stack, thread = [], (pid, tid)
        while stack and not (ops[stack[-1]][2] <= ts and ts + dur <= sum(ops[stack[-1]][2:])):
            stack.pop()
        out[k] = (stack[-1] if stack else -1, len(stack), stack[0] if stack else k)
        stack.append(k)
    return out


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(min_value=1, max_value=60))
def test_nesting_in_any_written_order(rnd, n):
    """Ops of several threads, nested, written in start order or shuffled: parent,
    depth and top by the rule, whatever the order of the file."""
    ops = []
    for _ in range(n):
        ts = rnd.randrange(0, 50)
        ops.append((rnd.choice([1, 2]), rnd.choice([7, 8, 9]), ts, rnd.randrange(0, 30)))
    if rnd.random() < 0.5:
        ops.sort(key=lambda o: (o[2], -o[3]))
    events = ", ".join(
        f'{{"ph": "X", "cat": "cpu_op", "name": "op{k}", "pid": {p}, "tid": {t}, '
        f'"ts": {ts}, "dur": {d}}}'
        for k, (p, t, ts, d) in enumerate(ops)
    )
    r = _native.KinetoReader()
    r.feed(f'{{"traceEvents": [{events}]}}'.encode())
    r.finish()
    rows = r.ops().view(record_dtypes()["op"])
    got = [(int(o["parent"]), int(o["depth"]), int(o["top"])) for o in rows]
    assert got == _nesting(ops)


def test_old_format_trace_reads():
    t = skipnative.load(DATA / "old_format_inference_rank1.json.gz")
    assert len(t.gpu[t.gpu["kind"] == 0]) == 4
    assert set(t.gpu["correlation"]) <= set(t.launches["correlation"])


@pytest.mark.parametrize("inflater", ["zlib", "isal"])
def test_gzip_reads_alike_with_either_inflater(inflater, monkeypatch, tmp_path):
    import zlib

    from skipnative.io import kineto_stream

    mod = zlib if inflater == "zlib" else pytest.importorskip("isal.isal_zlib")
    monkeypatch.setattr(kineto_stream, "_inflate", mod)
    monkeypatch.setattr(kineto_stream, "_INFLATE_ERRORS", (zlib.error, mod.error))
    monkeypatch.setattr(kineto_stream, "CHUNK", 1 << 16)  # many chunks, and two gzip members
    p = tmp_path / "t.json.gz"
    p.write_bytes(gzip.compress(SMALL[:30000]) + gzip.compress(SMALL[30000:]))
    t = skipnative.load(p)
    for name in ("launches", "gpu", "ops", "regions"):
        assert np.array_equal(getattr(t, name), getattr(WHOLE, name)), name
    p.write_bytes(gzip.compress(SMALL)[:-5000])
    with pytest.raises(TraceError, match="gzip"):
        skipnative.load(p)


def test_base_time_that_would_wrap_is_an_error(tmp_path):
    ev = '{"ph": "X", "cat": "cpu_op", "name": "x", "ts": 9000000000000000, "dur": 1}'
    p = tmp_path / "t.json"
    p.write_bytes(_doc(ev)[:-1] + b', "baseTimeNanoseconds": 9000000000000000000}')
    with pytest.raises(TraceError, match=r"baseTimeNanoseconds.*64-bit"):
        skipnative.load(p)
    p.write_bytes(_doc(ev)[:-1] + b', "baseTimeNanoseconds": 1000}')
    assert skipnative.load(p).ops["t_begin"][0] == 9000000000000000 * 1000 + 1000


def test_copy_rows_narrows_as_numpy_and_refuses_fields_outside_a_row():
    src = np.array([(2**40 + 7, -3, 300), (-(2**35) - 1, 5, -1)], dtype="<i8,<i4,<i2")
    raw = src.view(np.uint8).reshape(-1)
    dst = np.zeros(2, dtype="<i4,u1,<i8")
    # f0 <- src f0 (narrowed), f1 <- src f2 (narrowed), f2 <- src f1 + src f0 + 10
    plan = [(0, 4, 0, 8, -1, 0), (4, 1, 12, 2, -1, 0), (5, 8, 8, 4, 0, 10)]
    _native.copy_rows(raw, src.itemsize, dst, plan)
    assert list(dst["f0"]) == list(src["f0"].astype("<i4"))
    assert list(dst["f1"]) == list(src["f2"].astype("u1"))
    assert list(dst["f2"]) == list(src["f1"].astype("<i8") + src["f0"] + 10)
    with pytest.raises(ValueError, match="outside"):
        _native.copy_rows(raw, src.itemsize, dst, [(10, 8, 0, 8, -1, 0)])
    with pytest.raises(ValueError, match="outside"):
        _native.copy_rows(raw, src.itemsize, dst, [(0, 4, 0, 3, -1, 0)])
    with pytest.raises(ValueError, match="lengths"):
        _native.copy_rows(raw[:-1], src.itemsize, dst, plan)


@pytest.mark.parametrize("base", [b"1.5e18", b'"abc"', b"true", b"null", b"[1]"])
def test_base_time_that_is_not_an_integer_is_an_error(tmp_path, base):
    """It was taken as 0 without a word, so every time lost its offset."""
    ev = '{"ph": "X", "cat": "cpu_op", "name": "x", "ts": 1, "dur": 1}'
    p = tmp_path / "b.json"
    p.write_bytes(_doc(ev)[:-1] + b', "baseTimeNanoseconds": ' + base + b"}")
    with pytest.raises(TraceError, match=r"baseTimeNanoseconds is .*not an integer") as e:
        skipnative.load(p)
    assert str(p) in str(e.value)
