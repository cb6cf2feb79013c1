"""The native session driven through the CUPTI test double.

SKIPNATIVE_CUPTI_LIBRARY must point at the double before the process loads any
libcupti (the loader keeps the first one), so it is set at collection time.
"""

from __future__ import annotations

import os

import pytest

from skipnative.testing import SimulatedGpu, library_path

os.environ.setdefault("SKIPNATIVE_CUPTI_LIBRARY", library_path())


def _load_double():
    # Load now, with no wheel folders: on a machine with the nvidia-cuda-cupti
    # wheel installed, the loader would otherwise prefer the real libcupti.
    from skipnative import _native

    return _native.load_cupti([])


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
