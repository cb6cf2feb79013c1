"""The numpy dtypes that view native tables must match the C++ structs byte for byte."""

from __future__ import annotations

from skipnative import _native
from skipnative.capturing import records as _records
from skipnative.io import kineto


def test_session_record_sizes():
    sizes = _native.record_sizes()
    assert sizes["launch"] == _records.LAUNCH_DTYPE.itemsize
    assert sizes["kernel"] == _records.KERNEL_DTYPE.itemsize
    assert sizes["copy"] == _records.COPY_DTYPE.itemsize
    assert sizes["marker"] == _records.MARKER_DTYPE.itemsize


def test_kineto_reader_record_sizes():
    sizes = _native.kineto_record_sizes()
    assert sizes["launch"] == kineto._K_LAUNCH.itemsize
    assert sizes["gpu"] == kineto._K_GPU.itemsize
    assert sizes["op"] == kineto._K_OP.itemsize
    assert sizes["step"] == kineto._K_STEP.itemsize


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
