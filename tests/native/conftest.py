"""The native session driven through the CUPTI test double.

The double must be loaded before the process loads any other libcupti (the
loader keeps the first one), so it is loaded at collection time.
"""

from __future__ import annotations

import os

import pytest

from skipnative.testing import SimulatedGpu, library_path


def _load_double():
    # Load now, with no wheel folders: on a machine with the nvidia-cuda-cupti
    # wheel installed, the loader would otherwise prefer the real libcupti. The
    # variable is set only while loading, so that subprocesses of other tests
    # (which must see this machine as it is) do not inherit it.
    from skipnative import _native

    old = os.environ.get("SKIPNATIVE_CUPTI_LIBRARY")
    os.environ["SKIPNATIVE_CUPTI_LIBRARY"] = library_path()
    try:
        return _native.load_cupti([])
    finally:
        if old is None:
            del os.environ["SKIPNATIVE_CUPTI_LIBRARY"]
        else:
            os.environ["SKIPNATIVE_CUPTI_LIBRARY"] = old


_LOADED = _load_double()


@pytest.fixture
def gpu() -> SimulatedGpu:
    info = _LOADED
    if not (info["loaded"] and info["test_double"]):
        pytest.fail(
            f"the CUPTI test double was not loaded ({info}); run tests/native in a "
            "process that loads no other libcupti first"
        )
    g = SimulatedGpu(info["path"])
    g.reset()
    g.configure(launch_cost_ns=2000, submit_latency_ns=1000)
    yield g
    g.hold_subscriber(False)
