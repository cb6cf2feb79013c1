"""The capture options are defined once (cupti/session.h); every layer agrees with it."""

from __future__ import annotations

import inspect

from skipnative import _native
from skipnative.capturing.session import Capture

PYTHON_ONLY = {"synchronize"}


def _signature_defaults() -> dict:
    params = inspect.signature(Capture.__init__).parameters.values()
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}


def test_capture_signature_is_the_native_option_list():
    native = _native.capture_options()
    python = {k: v for k, v in _signature_defaults().items() if k not in PYTHON_ONLY}
    assert sorted(python) == sorted(native)
    for name, default in native.items():
        py_default = python[name]
        if isinstance(default, list):
            py_default = list(py_default)
        assert py_default == default, name


def test_every_option_is_documented():
    doc = Capture.__doc__ or ""
    for name in [*_native.capture_options(), *PYTHON_ONLY]:
        assert f"``{name}``" in doc, name


def test_native_refuses_an_unknown_option():
    try:
        _native.Session({"launch_activity": True})
    except ValueError as e:
        assert "launch_activity" in str(e)
    else:
        raise AssertionError("an unknown option was accepted")
