"""The Kineto loader refuses, in one line, an export block (`skip export --perfetto`)
that is not what skipnative writes, and a trace whose times span more than 2^63 ns."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import numpy as np
import pytest

import skipnative
from kineto_gen import kernel, launch, op, write
from load_refusal import load_refused
from skipnative import TraceError
from skipnative.io.perfetto import export_perfetto

NATIVE = Path(skipnative.__file__).parent / "data" / "h100_llama1b_prefill" / "b1.skip"


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> dict:
    """A native capture's export, as a JSON document, with latency and regions."""
    out = tmp_path_factory.mktemp("export") / "n.json"
    export_perfetto(skipnative.load(NATIVE), str(out))
    doc = json.loads(out.read_text())
    assert doc["skipnative"]["latency"] and doc["skipnative"]["region_shards"]
    return doc


def _regions(export) -> list:
    return json.loads("".join(export[k] for k in export["skipnative"]["region_shards"]))


def refused(tmp_path, doc, *fragments) -> str:
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    return load_refused(p, *fragments)


def edited(export, **block) -> dict:
    doc = json.loads(json.dumps(export))
    doc["skipnative"].update(block)
    return doc


def test_the_export_itself_loads(export, tmp_path):
    p = tmp_path / "ok.json"
    p.write_text(json.dumps(export))
    t = skipnative.load(p)
    assert len(t.regions) == len(_regions(export))
    assert (t.gpu["t_queued"] != 0).any()


def test_an_export_with_its_regions_inline_loads(export, tmp_path):
    # as exports were written before region_shards
    doc = edited(export, regions=_regions(export))
    for key in doc["skipnative"].pop("region_shards"):
        del doc[key]
    p = tmp_path / "old.json"
    p.write_text(json.dumps(doc))
    t = skipnative.load(p)
    assert t.name(t.regions["name_id"]) == [r[2] for r in _regions(export)]


@pytest.mark.parametrize(
    "shards,what",
    [
        (5, "not a list of the document's keys"),
        (["no such key"], "not a list of the document's keys"),
        (["skipnative_latency_0"], "region_shards"),
        (["traceName"], "is not a string"),
    ],
)
def test_region_shards_that_are_not_what_an_export_writes(export, tmp_path, shards, what):
    doc = edited(export, region_shards=shards)
    doc["traceName"] = 5
    refused(tmp_path, doc, "skipnative", what)


def test_regions_both_inline_and_in_shards(export, tmp_path):
    refused(tmp_path, edited(export, regions=_regions(export)), "both regions and region_shards")


@pytest.mark.parametrize("value", [5, "k", {"k": 1}, [5], ["no such key"]])
def test_latency_that_is_not_a_list_of_keys(export, tmp_path, value):
    refused(tmp_path, edited(export, latency=value), "skipnative", "latency")


def _shard(raw: bytes) -> str:
    return base64.b64encode(zlib.compress(raw)).decode()


@pytest.mark.parametrize(
    "value",
    [
        _shard(b"\x01" * 15),  # not whole (queued, submitted) pairs
        "not base64!",
        base64.b64encode(b"not zlib").decode(),
        7,
        _shard(b"\x00" * (16 << 20)),  # inflates far beyond the rows it is for
    ],
)
def test_latency_shard_that_is_not_pairs(export, tmp_path, value):
    doc = edited(export, latency=["skipnative_latency_0"])
    doc["skipnative_latency_0"] = value
    refused(tmp_path, doc, "skipnative", "latency")


def test_latency_for_another_number_of_gpu_rows_is_refused_not_dropped(export, tmp_path):
    doc = json.loads(json.dumps(export))
    gpu = [e for e in doc["traceEvents"] if e.get("cat") == "kernel"]
    doc["traceEvents"].remove(gpu[0])
    refused(tmp_path, doc, "latency", "GPU rows")


def test_latency_offset_beyond_64_bits(export, tmp_path):
    doc = edited(export, latency=["skipnative_latency_0"])
    n = len(
        [e for e in doc["traceEvents"] if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")]
    )
    pairs = np.full((n, 2), np.iinfo(np.int64).min, dtype="<i8")
    pairs[0, 0] = np.iinfo(np.int64).max
    doc["skipnative_latency_0"] = _shard(pairs.tobytes())
    refused(tmp_path, doc, "latency")


@pytest.mark.parametrize(
    "regions",
    [
        "not a list",
        [[10**30, 10**30 + 5, "x", "step"]],
        [[-(2**63) - 1, 0, "x", "step"]],
        [[5, 4, "x", "step"]],
        [[1, 2, "x", "no such kind"]],
        [[1, 2, 3, "step"]],
        [[1, 2, "x"]],
        [[True, 2, "x", "step"]],
        [[1.5, 2, "x", "step"]],
        ["row"],
    ],
)
def test_regions_that_are_not_what_an_export_writes(export, tmp_path, regions):
    doc = edited(export, regions=regions)  # inline
    del doc["skipnative"]["region_shards"]
    refused(tmp_path, doc, "skipnative", "regions")
    doc = edited(export, region_shards=["skipnative_regions_0"])  # in a shard
    doc["skipnative_regions_0"] = json.dumps(regions)
    refused(tmp_path, doc, "skipnative", "regions")


@pytest.mark.parametrize("block", ['"a string"', "[1, 2]", "[" * 400 + "]" * 400])
def test_an_export_block_that_is_no_object(export, tmp_path, block):
    p = tmp_path / "bad.json"
    text = json.dumps({k: v for k, v in export.items() if k != "skipnative"})
    p.write_text('{"skipnative": ' + block + ", " + text[1:])
    with pytest.raises(TraceError) as e:
        skipnative.load(p)
    assert str(e.value).startswith(f"{p}: skipnative") and "\n" not in str(e.value)


def test_deeply_nested_metadata_is_one_line(tmp_path):
    deep = "[" * 400 + "]" * 400
    p = tmp_path / "t.json"
    p.write_text(
        '{"deviceProperties": ' + deep + ', "traceEvents": '
        + json.dumps([launch(0, 1, 1), kernel(2, 1, 1)]) + "}"
    )  # fmt: skip
    with pytest.raises(TraceError) as e:
        skipnative.load(p)
    assert str(e.value).startswith(f"{p}: deviceProperties") and "nested" in str(e.value)


def test_a_trace_spanning_more_than_2_63_ns(tmp_path):
    far = 9_000_000_000_000_000  # us: 9e18 ns either side of zero
    events = [op(-far, 20), launch(far - 100, 8, 1), kernel(far - 50, 5, 1)]
    p = write(tmp_path / "span.json", events)
    with pytest.raises(TraceError) as e:
        skipnative.load(p)
    assert str(e.value) == f"{p}: " + str(e.value).split(": ", 1)[1]
    assert "spans more than 2^63 ns" in str(e.value)
    # each half of that span alone is fine
    skipnative.load(write(tmp_path / "half.json", events[1:]))
