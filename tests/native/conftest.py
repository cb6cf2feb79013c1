"""The native session driven through the CUPTI test double.

The double must be loaded before the process loads any other libcupti (the
loader keeps the first one), so it is loaded at collection time.
"""

from __future__ import annotations

import pytest

from skipnative.testing import SimulatedGpu, load_cupti_double

# Loaded now: the loader keeps the first libcupti, and must not find a real one first.
_LOADED = load_cupti_double()


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
