"""The one check of a refused trace, shared by the loader and bad-input tests:
skipnative.load raises a TraceError whose message is one line, begins with the
file's path (and `after`, such as ": corrupted .skip file: ") and holds every
fragment given."""

from __future__ import annotations

import os

import pytest

import skipnative
from skipnative import TraceError


def load_refused(path: str | os.PathLike, *fragments: str, after: str = ": ") -> str:
    """The message of the TraceError that loading `path` raises, checked."""
    with pytest.raises(TraceError) as e:
        skipnative.load(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}{after}"), msg
    assert "\n" not in msg, msg
    for f in fragments:
        assert f in msg, msg
    return msg
