"""Settings for the whole test run.

Tests run from a scratch folder: the subprocesses they start (`python -m
skipnative`, `python -c`) would otherwise import the source tree in the
current folder instead of the installed package.

The native tier (tests/native) loads the CUPTI and CUDA test doubles at
collection time, and a process keeps the first libcupti and libcuda it loads.
On a machine with a CUDA GPU the GPU tier (tests/gpu) must meet the real
ones, so when both tiers are in one run the GPU tier is not collected here and
runs in a pytest process of its own (tests/test_tiers.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tiers import TESTS, gpu_tier_apart


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path == TESTS / "gpu" and gpu_tier_apart(config):
        return True
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # a tests/gpu path named on the command line is collected whatever ignore_collect says
    if not gpu_tier_apart(config):
        return
    gpu = TESTS / "gpu"
    apart = [i for i in items if gpu in Path(str(i.path)).parents]
    if apart:
        config.hook.pytest_deselected(items=apart)
        items[:] = [i for i in items if i not in apart]


@pytest.fixture(autouse=True, scope="session")
def _scratch_cwd(tmp_path_factory):
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(old)


try:
    from hypothesis import settings

    # CI runs the same examples every time (a failure there is reproducible);
    # local runs keep drawing new ones.
    settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI"):
        settings.load_profile("ci")
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    pass
