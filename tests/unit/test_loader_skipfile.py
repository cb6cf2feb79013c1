"""The .skip loader refuses, in one line, what no capture can hold: kinds beyond
their tables, metadata of the wrong type, ends before begins, times that do not
fit 64-bit nanoseconds, ops that do not nest, deeply nested JSON."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import skipnative
from load_refusal import load_refused
from skipnative import TraceError
from skipnative.io import skipfile
from skipnative.trace import API_KINDS, GPU_KINDS, REGION_KINDS

ROOT = Path(__file__).resolve().parents[2]
NATIVE = ROOT / "src" / "skipnative" / "data" / "h100_llama1b_prefill" / "b1.skip"
KINETO = ROOT / "tests" / "data" / "kineto" / "v100_ns_resolution_rank0.json.gz"
BIG = 2**63


@pytest.fixture(scope="module")
def native():
    return skipnative.load(NATIVE)


@pytest.fixture(scope="module")
def kineto():
    return skipnative.load(KINETO)


def refused(trace, tmp_path, *fragments) -> str:
    p = tmp_path / "bad.skip"
    skipfile.save(trace, str(p), overwrite=True)  # save writes what it is given
    return load_refused(p, *fragments, after=": corrupted .skip file: ")


def copy(t):
    return skipnative.Trace(
        launches=t.launches.copy(),
        gpu=t.gpu.copy(),
        ops=t.ops.copy(),
        regions=t.regions.copy(),
        strings=list(t.strings),
        meta=json.loads(json.dumps(t.meta)),
    )


def test_the_unchanged_traces_still_load(native, kineto, tmp_path):
    for t in (native, kineto):
        p = tmp_path / "ok.skip"
        skipfile.save(copy(t), str(p), overwrite=True)
        back = skipnative.load(p)
        assert np.array_equal(back.gpu, t.gpu) and np.array_equal(back.ops, t.ops)
    assert len(kineto.ops) and (kineto.ops["parent"] >= 0).any()  # the op checks are exercised


@pytest.mark.parametrize(
    ("table", "kinds"), [("gpu", GPU_KINDS), ("regions", REGION_KINDS), ("launches", API_KINDS)]
)
def test_kind_beyond_its_table(native, tmp_path, table, kinds):
    t = copy(native)
    getattr(t, table)["kind"][-1] = len(kinds)
    refused(t, tmp_path, f"{table}.kind")
    getattr(t, table)["kind"][-1] = len(kinds) - 1  # the last valid kind loads
    p = tmp_path / "ok.skip"
    skipfile.save(t, str(p))
    skipnative.load(p)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("clock_realtime_offset_ns", "abc"),
        ("clock_realtime_offset_ns", True),
        ("clock_realtime_offset_ns", 1.5),
        ("clock_realtime_offset_ns", BIG),
        ("pid", "abc"),
        ("rank", "x"),
        ("rank", [1]),
        ("rank", "99999999999999999999999"),  # a rank: digits, at most 2**31 - 1
        ("rank", 2**31),
        ("rank", "\u00b2"),  # str.isdigit() takes it, int() does not
        ("events", "many"),
        ("t_start_ns", None),
        ("t_stop_ns", "1"),
        ("devices", 5),
        ("devices", {"id": 0}),
        # its losses, which a count of another type left unsaid
        ("dropped", [3]),
        ("dropped", {"gpu_rows": "abc"}),
        ("dropped", {"gpu_rows": -1}),
        ("dropped", {"cupti": 1.5}),
        ("dropped", {"cupti": True}),
    ],
)
def test_metadata_of_the_wrong_type(native, tmp_path, key, value):
    t = copy(native)
    t.meta[key] = value
    refused(t, tmp_path, key)


def test_metadata_not_an_object(native, tmp_path):
    t = copy(native)
    t.meta = ["not", "an", "object"]  # type: ignore[assignment]
    refused(t, tmp_path, "meta")


@pytest.mark.parametrize(
    ("table", "begin", "end"),
    [
        ("launches", "t_begin", "t_end"),
        ("gpu", "t_start", "t_end"),
        ("regions", "t_begin", "t_end"),
    ],
)
def test_end_before_begin(native, tmp_path, table, begin, end):
    t = copy(native)
    rows = getattr(t, table)
    rows[end][0] = rows[begin][0] - 1
    refused(t, tmp_path, table, "ends before")


def test_op_end_before_begin(kineto, tmp_path):
    t = copy(kineto)
    t.ops["t_end"][3] = t.ops["t_begin"][3] - 1
    refused(t, tmp_path, "ops", "ends before")


@pytest.mark.parametrize("col", ["t_begin", "t_end"])
def test_negative_times_in_a_native_capture(native, tmp_path, col):
    t = copy(native)
    t.launches[col][0] = -5
    t.launches["t_begin"][0] = min(t.launches["t_begin"][0], t.launches["t_end"][0])
    refused(t, tmp_path, "negative")


def test_a_trace_spanning_more_than_2_63_ns(kineto, tmp_path):
    t = copy(kineto)
    t.ops["t_begin"][0] = -(2**62) - 1
    t.ops["t_end"][0] = t.ops["t_begin"][0]
    t.gpu["t_end"][-1] = 2**62 + 1
    refused(t, tmp_path, "spans more than 2^63 ns")


def test_a_queued_time_far_from_its_start_counts_in_the_span(native, tmp_path):
    t = copy(native)
    t.gpu["t_queued"][0] = -(2**63) + 1  # any non-zero queued time is a time
    refused(t, tmp_path)


def test_realtime_offset_that_pushes_times_beyond_64_bits(native, tmp_path):
    t = copy(native)
    t.meta["clock_realtime_offset_ns"] = BIG - 1 - int(t.gpu["t_start"].min())
    refused(t, tmp_path, "clock_realtime_offset_ns")


@pytest.mark.parametrize(
    ("field", "value"), [("parent", 10**9), ("parent", -2), ("top", -1), ("depth", -1)]
)
def test_ops_that_do_not_nest(kineto, tmp_path, field, value):
    t = copy(kineto)
    t.ops[field][int(np.flatnonzero(t.ops["parent"] >= 0)[0])] = value
    refused(t, tmp_path, "ops")


def test_an_op_that_is_its_own_parent(kineto, tmp_path):
    t = copy(kineto)
    i = int(np.flatnonzero(t.ops["parent"] >= 0)[0])
    t.ops["parent"][i] = i  # a cycle: attribution would walk it for ever
    refused(t, tmp_path, "ops")


def _rewrite(path: Path, edit) -> None:
    """The .skip at path, rewritten: edit(header dict, payload) returns the new
    (header bytes, payload)."""
    data = path.read_bytes()
    magic, version, hlen = struct.unpack_from("<8sII", data)
    hbytes, payload = edit(json.loads(data[16 : 16 + hlen]), data[16 + hlen :])
    path.write_bytes(struct.pack("<8sII", magic, version, len(hbytes)) + hbytes + payload)


def _refused_as_nested(path: Path, part: str) -> None:
    with pytest.raises(TraceError) as e:
        skipnative.load(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: corrupted .skip file: {part}: "), msg
    assert "nested" in msg and "\n" not in msg


def test_deeply_nested_strings(native, tmp_path):
    p = tmp_path / "deep.skip"
    skipfile.save(native, str(p))

    def edit(header, payload):
        blob = zlib.compress(b"[" * 100_000 + b"]" * 100_000)
        header["strings"].update(offset=len(payload), nbytes=len(blob), crc32=zlib.crc32(blob))
        return json.dumps(header).encode(), payload + blob

    _rewrite(p, edit)
    _refused_as_nested(p, "strings")


def test_deeply_nested_header(native, tmp_path):
    p = tmp_path / "deep.skip"
    skipfile.save(native, str(p))
    _rewrite(p, lambda h, payload: (b'{"meta": ' + b"[" * 10**5 + b"]" * 10**5 + b"}", payload))
    _refused_as_nested(p, "header")


def test_export_of_a_bad_kind_is_one_line_not_an_internal_error(native, tmp_path):
    t = copy(native)
    t.gpu["kind"][0] = 7
    p = tmp_path / "k.skip"
    skipfile.save(t, str(p))
    out = tmp_path / "o.json"
    argv = [sys.executable, "-m", "skipnative", "export", "--perfetto", str(out), str(p)]
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode not in (0, 70), r.stderr
    assert r.stderr.strip().startswith(f"skip: error: {p}: corrupted .skip file: ")
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_a_non_finite_number_in_the_header_is_refused(native, tmp_path):
    # Infinity in meta.dropped made analyze, compare and report fail in int() (losses)
    p = tmp_path / "inf.skip"
    skipfile.save(native, str(p))

    def edit(header, payload):
        header["meta"]["dropped"] = {"gpu_rows": float("inf")}
        return json.dumps(header).encode(), payload

    _rewrite(p, edit)
    load_refused(p, "meta.dropped.gpu_rows is Infinity", after=": corrupted .skip file: header: ")
    for cmd in (["analyze", p], ["compare", p, p], ["kernels", p]):
        r = subprocess.run(
            [sys.executable, "-m", "skipnative", *map(str, cmd)], capture_output=True, text=True
        )
        assert r.returncode == 1, (cmd, r.stderr)
        assert r.stderr.strip() == f"skip: error: {p}: corrupted .skip file: header: " + (
            "meta.dropped.gpu_rows is Infinity, which is not a JSON number"
        ), r.stderr


def _edited(native, tmp_path, edit) -> Path:
    p = tmp_path / "edited.skip"
    skipfile.save(native, str(p), overwrite=True)
    _rewrite(p, edit)
    return p


def test_the_files_this_version_writes_and_the_bundled_ones_pass_the_checks(native, tmp_path):
    p = _edited(native, tmp_path, lambda h, payload: (json.dumps(h).encode(), payload))
    skipnative.load(p)
    for f in sorted(NATIVE.parent.glob("*.skip")):
        skipnative.load(f)


@pytest.mark.parametrize("extra", [b"\0", b"x" * 4096])
def test_bytes_after_the_payload_are_refused(native, tmp_path, extra):
    # they were read past without a word: a file spliced or appended to
    p = _edited(native, tmp_path, lambda h, payload: (json.dumps(h).encode(), payload + extra))
    load_refused(p, f"{len(extra):,} bytes after", after=": corrupted .skip file: ")


@pytest.mark.parametrize("version", [99, 0, "1", 1.0, None, True])
def test_a_header_format_version_not_the_files_is_refused(native, tmp_path, version):
    def edit(h, payload):
        h["format_version"] = version
        return json.dumps(h).encode(), payload

    load_refused(
        _edited(native, tmp_path, edit), "format_version", after=": corrupted .skip file: "
    )


def test_a_header_format_version_of_nan_is_refused(native, tmp_path):
    def edit(h, payload):
        h["format_version"] = float("nan")
        return json.dumps(h).encode(), payload

    load_refused(_edited(native, tmp_path, edit), "format_version is NaN")


@pytest.mark.parametrize("delta", [-1, 1, 10**6])
def test_a_strings_count_that_does_not_match_is_refused(native, tmp_path, delta):
    def edit(h, payload):
        h["strings"]["count"] += delta
        return json.dumps(h).encode(), payload

    load_refused(_edited(native, tmp_path, edit), "strings count", after=": corrupted .skip file: ")


def test_lone_surrogates_read_as_replacement_characters(native, tmp_path):
    # JSON lets "\ud800" through; kept, it was a UnicodeEncodeError in every
    # writer (analyze, kernels, --csv, export --skip; --parquet a decode error)
    p = tmp_path / "s.skip"
    skipfile.save(native, str(p))
    k = int(native.gpu["name_id"][np.argmax(native.gpu["t_end"] - native.gpu["t_start"])])

    def edit(header, payload):
        at = header["strings"]["offset"]
        strings = json.loads(zlib.decompress(payload[at : at + header["strings"]["nbytes"]]))
        strings[k] = "\ud800k"
        blob = zlib.compress(json.dumps(strings).encode())
        header["strings"].update(offset=len(payload), nbytes=len(blob), crc32=zlib.crc32(blob))
        header["meta"]["\udc00note"] = "\udfffm"
        return json.dumps(header).encode(), payload + blob

    _rewrite(p, edit)
    t = skipnative.load(p)
    bad = "\ufffd" * 3  # as the Kineto reader reads the escape in an event name
    assert t.strings[k] == bad + "k" and t.meta[bad + "note"] == bad + "m"
    out = tmp_path / "out"
    for argv in (
        ["analyze", p],
        ["kernels", p],
        ["kernels", "--csv", out.with_suffix(".csv"), p],
        ["export", "--skip", out.with_suffix(".skip"), p],
        *([["kernels", "--parquet", out.with_suffix(".pq"), p]] * _has("pyarrow")),
    ):
        r = subprocess.run(
            [sys.executable, "-m", "skipnative", *map(str, argv)], capture_output=True, text=True
        )
        assert r.returncode == 0, (argv, r.stderr)
    assert bad + "k" in out.with_suffix(".csv").read_text(encoding="utf-8")
    assert skipnative.load(out.with_suffix(".skip")).strings[k] == bad + "k"


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
