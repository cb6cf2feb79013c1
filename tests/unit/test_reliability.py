"""Hostile files: fuzzed .skip and Kineto traces, and loaders that execute nothing."""

from __future__ import annotations

import gzip
import json
import random
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import skipnative
from realdata import CUDA, DATA
from skipnative import TraceError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def skip_bytes(tmp_path_factory):
    p = tmp_path_factory.mktemp("s") / "t.skip"
    skipnative.load(DATA / "a100_alexnet_train.json.gz").save(p)
    return p.read_bytes()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.randoms(use_true_random=False))
def test_mutated_skip_files_fail_cleanly(tmp_path, skip_bytes, rnd):
    data = bytearray(skip_bytes)
    for _ in range(rnd.randint(1, 6)):
        i = rnd.randrange(len(data))
        r = rnd.random()
        if r < 0.6:
            data[i] = rnd.randrange(256)
        elif r < 0.8:
            del data[i : i + rnd.randint(1, 64)]
        else:
            data[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 16)))
    p = tmp_path / "m.skip"
    p.write_bytes(bytes(data))
    try:
        t = skipnative.load(p)
    except TraceError as e:
        assert "\n" not in str(e) and str(p) in str(e)
        return
    t.metrics()  # whatever loads must analyse


def _hostile_header(tmp_path, skip_bytes, edit) -> Path:
    hlen = int.from_bytes(skip_bytes[12:16], "little")
    header = json.loads(skip_bytes[16 : 16 + hlen])
    edit(header)
    h = json.dumps(header).encode()
    p = tmp_path / "h.skip"
    p.write_bytes(skip_bytes[:12] + len(h).to_bytes(4, "little") + h + skip_bytes[16 + hlen :])
    return p


@pytest.mark.parametrize(
    "edit",
    [
        lambda h: h["tables"]["gpu"].__setitem__("rows", 10**15),
        lambda h: h["tables"]["gpu"].__setitem__("rows", 2**70),
        lambda h: h["tables"]["gpu"].__setitem__("columns", 5),
        lambda h: h["tables"].__setitem__("launches", []),
        lambda h: h["tables"]["gpu"]["columns"][0].__setitem__("dtype", "O"),
        lambda h: h["tables"]["gpu"]["columns"][0].__setitem__("offset", 1e300),
        lambda h: h.__setitem__("strings", None),
    ],
    ids=[
        "huge-rows",
        "rows-beyond-64-bits",
        "columns-not-list",
        "table-not-object",
        "object-dtype",
        "offset-1e300",
        "no-strings",
    ],
)
def test_hostile_skip_headers(tmp_path, skip_bytes, edit):
    with pytest.raises(TraceError, match="corrupted"):
        skipnative.load(_hostile_header(tmp_path, skip_bytes, edit))


WORKER = textwrap.dedent("""
    import contextlib, io, json, sys
    from skipnative.cli.main import main
    out = []
    for path in sys.argv[1:]:
        err, so = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(so):
            rc = main(["analyze", path, "--json"])
        out.append({"rc": rc, "stderr": err.getvalue(), "stdout": so.getvalue()})
    print(json.dumps(out))
""")


def test_200_mutated_real_traces_through_analyze(tmp_path):
    rnd = random.Random(2024)
    sources = [gzip.decompress(p.read_bytes()) for p in CUDA[:2] + CUDA[3:]]
    paths = []
    for i in range(200):
        src = sources[i % len(sources)]
        data = bytearray(src[:200_000] if i % 2 else src)
        for _ in range(rnd.randint(1, 10)):
            j = rnd.randrange(len(data))
            data[j : j + rnd.randint(0, 3)] = bytes(
                rnd.choice(b'{}[]",:0123456789.eE-\\ \\x00\\xff') for _ in range(rnd.randint(0, 3))
            )
        p = tmp_path / f"m{i}.json"
        p.write_bytes(gzip.compress(bytes(data), 1) if i % 3 == 0 else bytes(data))
        paths.append(str(p))
    r = subprocess.run(
        [sys.executable, "-c", WORKER, *paths], capture_output=True, text=True, timeout=300
    )  # a hang fails here
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads(r.stdout)
    assert len(results) == 200
    clean = 0
    for res, path in zip(results, paths):
        assert "Traceback" not in res["stderr"] and "internal error" not in res["stderr"], res
        if res["rc"] == 0:
            json.loads(res["stdout"])  # exactly one JSON object
        else:
            assert res["rc"] == 1 and res["stdout"] == ""
            line = res["stderr"].strip()
            assert "\n" not in line and path in line
            clean += 1
    assert clean > 100  # the mutations do break most files


def test_loaders_execute_nothing():
    src = "\n".join(p.read_text() for p in (ROOT / "src" / "skipnative").rglob("*.py"))
    for pattern in (
        r"\bimport pickle\b",
        r"\bpickle\.",
        r"(?<![\w.])eval\(",
        r"(?<![\w.])exec\(",
        r"allow_pickle\s*=\s*True",
        r"\bmarshal\.",
        r"\byaml\.load\(",
    ):
        assert not re.search(pattern, src), pattern


JSON_PUNCTUATION = b'{}[]",:0123456789.eE-\\ '


def _mutate(rnd: random.Random, data: bytes) -> bytes:
    """Byte flips, deletions of up to 200 bytes, insertions of JSON punctuation."""
    b = bytearray(data)
    for _ in range(rnd.randint(1, 12)):
        i = rnd.randrange(len(b))
        r = rnd.random()
        if r < 0.5:
            b[i] = rnd.randrange(256)
        elif r < 0.75:
            del b[i : i + rnd.randint(1, 200)]
        else:
            b[i:i] = bytes(
                rnd.choice(b'{}[]",:0123456789.eE-\\ ') for _ in range(rnd.randint(1, 8))
            )
    return bytes(b)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["kineto", "skip"])
def test_long_fuzz_every_input_loads_and_analyses_or_fails_in_one_line(tmp_path, kind):
    """The longer fuzz run: whole real traces and a .skip file,
    mutated; whatever loads must analyse, everything else is one TraceError line
    that names the file."""
    rnd = random.Random(1)
    if kind == "kineto":
        names = ("a100_alexnet_train.json.gz", "sampled_rank0.json.gz")
        seeds = [gzip.decompress((DATA / n).read_bytes()) for n in names]
    else:
        sp = tmp_path / "seed.skip"
        skipnative.load(DATA / "sampled_rank0.json.gz").save(sp)
        seeds = [sp.read_bytes()]
    p = tmp_path / ("input.json" if kind == "kineto" else "input.skip")
    errors = 0
    for _ in range(2000):
        p.write_bytes(_mutate(rnd, rnd.choice(seeds)))
        try:
            skipnative.load(p).metrics()
        except TraceError as e:
            assert "\n" not in str(e) and str(p) in str(e), str(e)
            errors += 1
    assert errors > 0  # the mutations do break files
