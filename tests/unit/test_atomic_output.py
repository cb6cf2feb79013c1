"""Outputs replaced only when asked, and only files: --force never turns a FIFO,
a device or a folder into a regular file, and writes through a link."""

from __future__ import annotations

import os

import pytest

from skipnative import TraceError
from skipnative.io.atomic import atomic_output


def _write(path, data=b"new", overwrite=True):
    with atomic_output(str(path), overwrite=overwrite) as f:
        f.write(data)


def test_a_fifo_or_a_folder_is_refused_even_with_force(tmp_path):
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    with pytest.raises(TraceError, match="not a regular file"):
        _write(fifo)
    assert not fifo.is_file() and fifo.exists()  # still the FIFO
    folder = tmp_path / "dir.json"
    folder.mkdir()
    with pytest.raises(TraceError, match="not a regular file"):
        _write(folder)
    assert folder.is_dir()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".skipnative")] == []


def test_a_link_is_written_through(tmp_path):
    real = tmp_path / "real.json"
    real.write_bytes(b"old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with pytest.raises(TraceError, match="already exists"):
        _write(link, overwrite=False)
    _write(link)
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_a_file_is_replaced_only_when_asked(tmp_path):
    out = tmp_path / "o.json"
    _write(out, b"one", overwrite=False)
    with pytest.raises(TraceError, match="already exists"):
        _write(out, b"two", overwrite=False)
    _write(out, b"two")
    assert out.read_bytes() == b"two"
