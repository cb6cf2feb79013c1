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


def test_the_python_api_names_its_own_argument_not_the_command_line(tmp_path):
    # a library caller can pass overwrite=True; --force is no argument of theirs
    import skipnative
    from kineto_gen import kernel, launch, write
    from skipnative.io.perfetto import export_perfetto

    trace = skipnative.load(write(tmp_path / "t.json", [launch(0, 1, 1), kernel(2, 1, 1)]))
    out = tmp_path / "o.bin"
    out.write_bytes(b"mine")
    for call in (
        lambda: _write(out, overwrite=False),
        lambda: trace.save(str(out)),
        lambda: export_perfetto(trace, str(out)),
    ):
        with pytest.raises(TraceError) as e:
            call()
        assert "already exists" in str(e.value) and "overwrite=True" in str(e.value)
        assert "--force" not in str(e.value)
    assert out.read_bytes() == b"mine"


def test_a_folder_is_never_offered_a_replacement(tmp_path):
    # overwrite would not replace it either: it is refused as what it is
    folder = tmp_path / "dir.skip"
    folder.mkdir()
    for overwrite in (False, True):
        with pytest.raises(TraceError, match="not a regular file") as e:
            _write(folder, overwrite=overwrite)
        assert "overwrite" not in str(e.value) and "--force" not in str(e.value)
    assert folder.is_dir()
