"""The numpy dtypes that view native tables must match the C++ structs byte for byte."""

from __future__ import annotations

import numpy as np

from skipnative import _native
from skipnative.capturing import records as _records
from skipnative.io import kineto

# What the Python side reads from each native table: name -> (kind, bytes, shape).
# Order and offsets come from the C++ structs; this is what _capture.py relies on.
SESSION_FIELDS = {
    "launches": {
        "t_begin": ("u", 8, ()),
        "t_end": ("u", 8, ()),
        "correlation": ("u", 4, ()),
        "tid": ("u", 4, ()),
        "cbid": ("u", 2, ()),
        "domain": ("u", 1, ()),
        "kind": ("u", 1, ()),
    },
    "kernels": {
        "t_start": ("u", 8, ()),
        "t_end": ("u", 8, ()),
        "t_queued": ("u", 8, ()),
        "t_submitted": ("u", 8, ()),
        "graph_node_id": ("u", 8, ()),
        "correlation": ("u", 4, ()),
        "name_id": ("u", 4, ()),
        "device": ("u", 4, ()),
        "stream": ("u", 4, ()),
        "graph_id": ("u", 4, ()),
        "grid": ("i", 4, (3,)),
        "block": ("i", 4, (3,)),
    },
    "copies": {
        "t_start": ("u", 8, ()),
        "t_end": ("u", 8, ()),
        "bytes": ("u", 8, ()),
        "graph_node_id": ("u", 8, ()),
        "correlation": ("u", 4, ()),
        "device": ("u", 4, ()),
        "stream": ("u", 4, ()),
        "graph_id": ("u", 4, ()),
        "is_set": ("u", 1, ()),
        "copy_kind": ("u", 1, ()),
    },
    "markers": {"t": ("u", 8, ()), "name_id": ("u", 4, ()), "tid": ("u", 4, ())},
    "events": {
        "sync_id": ("u", 8, ()),
        "correlation": ("u", 4, ()),
        "context": ("u", 4, ()),
        "stream": ("u", 4, ()),
        "event_id": ("u", 4, ()),
        "device": ("u", 4, ()),
        "kind": ("u", 1, ()),
    },
}


def test_session_record_dtypes_fields_offsets_and_types():
    dtypes = _native.record_dtypes()
    sizes = _native.record_sizes()
    assert set(dtypes) == set(SESSION_FIELDS) == set(sizes)
    for table, expected in SESSION_FIELDS.items():
        dt = dtypes[table]
        assert dt.itemsize == sizes[table], table
        fields = {n: dt.fields[n] for n in dt.names if not n.startswith("_")}
        assert list(fields) == list(expected), table
        end = 0
        for name, (ftype, offset) in fields.items():
            base = ftype.base if ftype.subdtype else ftype
            kind, size, shape = expected[name]
            assert (base.kind, base.itemsize, ftype.shape) == (kind, size, shape), (table, name)
            assert base.byteorder in ("=", "<", "|") and np.little_endian
            assert offset >= end and offset % base.itemsize == 0, (table, name)  # no overlap
            end = offset + ftype.itemsize
        assert end <= dt.itemsize


# What the Kineto conversion reads from each reader table: name -> (kind, bytes, shape).
KINETO_FIELDS = {
    "launch": {f: ("i", 8, ()) for f in ("ts", "dur", "correlation", "pid", "tid")}
    | {"name_id": ("i", 4, ()), "cbid": ("i", 4, ())},
    "gpu": {f: ("i", 8, ()) for f in ("ts", "dur", "correlation", "device", "stream", "bytes")}
    | {
        "name_id": ("i", 4, ()),
        "kind": ("i", 4, ()),
        "grid": ("i", 4, (3,)),
        "block": ("i", 4, (3,)),
    },
    "op": {f: ("i", 8, ()) for f in ("ts", "dur", "pid", "tid", "external_id", "parent", "top")}
    | {"name_id": ("i", 4, ()), "depth": ("i", 4, ())},
    "step": {f: ("i", 8, ()) for f in ("ts", "dur", "pid", "tid")} | {"name_id": ("i", 4, ())},
    "wait": {
        f: ("i", 8, ())
        for f in ("correlation", "record_correlation", "device", "stream", "on_stream")
    },
}


def test_kineto_reader_dtypes_fields_and_sizes():
    """The reader's dtypes come from its C++ structs (one definition); the fields the
    conversion reads are there with their types, and the rows are the structs' size."""
    dtypes = kineto.record_dtypes()
    sizes = _native.kineto_record_sizes()
    assert set(dtypes) == set(KINETO_FIELDS) == set(sizes)
    for table, expected in KINETO_FIELDS.items():
        dt = dtypes[table]
        assert dt.itemsize == sizes[table], table
        for name, (kind, size, shape) in expected.items():
            ftype = dt.fields[name][0]
            base = ftype.base if ftype.subdtype else ftype
            assert (base.kind, base.itemsize, ftype.shape) == (kind, size, shape), (table, name)


def test_api_kinds_cover_the_table():
    kinds = {k for _d, _c, k, _n in _native.api_table()}
    assert kinds <= set(range(len(_records.API_KINDS)))
    names = [n for _d, _c, _k, n in _native.api_table()]
    assert len(names) == len(set(names))
    assert {
        "cudaLaunchKernel",
        "cuLaunchKernel",
        "cudaGraphLaunch",
        "cudaStreamSynchronize",
    } <= set(names)


def test_native_api_table_agrees_with_the_call_kind_table():
    """One table of call kinds: every call the native capture names has the kind
    trace.CALL_KINDS gives it."""
    from skipnative.trace import API_KINDS, call_kind

    for _d, _c, kind, name in _native.api_table():
        if kind != API_KINDS.index("other"):
            assert call_kind(name) == kind, (name, API_KINDS[kind], API_KINDS[call_kind(name)])
