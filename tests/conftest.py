"""Tests run from a scratch folder: the subprocesses they start (`python -m
skipnative`, `python -c`) would otherwise import the source tree in the
current folder, which has no compiled module, instead of the installed package."""

from __future__ import annotations

import os

import pytest


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
