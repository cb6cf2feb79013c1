"""Writing a file so that no reader ever sees a partial one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from skipnative.errors import TraceError

_EXISTS = "already exists (pass overwrite=True, or --force, to replace it)"


@contextlib.contextmanager
def atomic_output(path: str, *, overwrite: bool) -> Iterator:
    """Yields a temporary binary file in `path`'s folder; on success it is flushed to
    disk and renamed to `path` (refusing to replace an existing file unless
    `overwrite`); on failure it is removed."""
    if os.path.exists(path) and not overwrite:
        raise TraceError(path, _EXISTS)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".skipnative-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if not overwrite and os.path.exists(path):  # appeared while we wrote
            raise TraceError(path, _EXISTS)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
